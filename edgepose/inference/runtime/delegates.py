"""Interpreter backends: delegate selection and the only module that loads libedgetpu.

Runtimes are found by :mod:`.runtimes`; delegates are chosen from an explicit table.
``auto`` tries the EdgeTPU (with the ``_edgetpu`` model variant), then XNNPACK, then plain
CPU kernels, and logs why each step fell back. Loading libedgetpu can crash the process
outright when it does not match the runtime (google-coral/edgetpu#812), so it is first
tried in a child process (:mod:`.edgetpu_probe`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.errors import BackendUnavailableError, ModelError
from edgepose.inference.edgetpu_probe import ABSENT_EXIT, REASON_PREFIX
from edgepose.inference.interpreters import (
    DelegateAbsentError,
    load_edgetpu_delegate,
    make_interpreter,
    read_model,
)
from edgepose.inference.runtimes import RUNTIMES, Runtime, find_runtime, tflite_numpy_problem
from edgepose.models import ModelFiles
from edgepose.pose import BackendInfo

log = logging.getLogger(__name__)

DELEGATES = ("auto", "edgetpu", "xnnpack", "cpu")
DEFAULT_EDGETPU_LIBRARY = "libedgetpu.so.1"
EDGETPU_PROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class BackendRequest:
    """What the user asked for.

    Attributes:
        runtime: ``auto`` or a key of :data:`RUNTIMES`.
        delegate: One of :data:`DELEGATES`.
        threads: CPU threads for XNNPACK/CPU kernels.
        edgetpu_library: Shared library name or path passed to ``load_delegate``.
        edgetpu_probe: Try the EdgeTPU delegate in a child process first.
        edgetpu_worker: Run the EdgeTPU delegate in a supervised child process
            (:mod:`.worker`), restarted when libedgetpu crashes or hangs, with a CPU fallback.
        stop: The run's stop event: the supervised worker ends its recovery (waits, restarts) once it is set.
    """

    runtime: str = "auto"
    delegate: str = "auto"
    threads: int = 1
    edgetpu_library: str = DEFAULT_EDGETPU_LIBRARY
    edgetpu_probe: bool = True
    edgetpu_worker: bool = True
    stop: threading.Event | None = field(default=None, compare=False, repr=False)


#: Checks that an opened model is what the caller's model family expects; raises :class:`ModelError`.
ModelCheck = Callable[["Backend"], None]


class Backend:
    """A ready interpreter: views of its inputs, ``invoke``, copies of its outputs.

    Which tensors a model must have is the model family's business (see ``check`` in :func:`open_backend`).
    """

    #: Whether the interpreter runs in a supervised child process (:class:`.worker.WorkerBackend`).
    supervised = False
    #: Children restarted after a failure (a supervised backend's count; always 0 in-process).
    restarts = 0
    #: Why a supervised backend gave up its child and runs in-process, or ``None``.
    fallback_reason: str | None = None

    def __init__(self, interpreter: Any, info: BackendInfo) -> None:
        self._interpreter = interpreter
        self.info = info
        #: The interpreter's input and output details (name, index, shape, dtype, quantization), in order.
        self.inputs: list[dict[str, Any]] = list(interpreter.get_input_details())
        self.outputs: list[dict[str, Any]] = list(interpreter.get_output_details())

    def input_shape(self, index: int = 0) -> tuple[int, ...]:
        """Return the shape of input ``index``, batch dimension included."""
        return tuple(int(d) for d in self.inputs[index]["shape"])

    @property
    def input_size(self) -> int:
        """Return the height of the first input: the model's square input side for MoveNet."""
        return self.input_shape(0)[1]

    def input_tensor(self, index: int = 0) -> np.ndarray:
        """Return a writable view of input ``index`` without its batch dimension.

        Drop the reference before calling :meth:`invoke`: the interpreter refuses to run while
        views of its buffers are alive.
        """
        view: np.ndarray = self._interpreter.tensor(int(self.inputs[index]["index"]))()[0]
        return view

    def invoke(self) -> None:
        """Run the model once on the current input tensors."""
        self._interpreter.invoke()

    def output(self, index: int = 0) -> np.ndarray:
        """Return a copy of output ``index``."""
        result: np.ndarray = self._interpreter.get_tensor(int(self.outputs[index]["index"]))
        return result

    def close(self) -> None:
        """Release the interpreter (a worker backend also stops its child process)."""
        self._interpreter = None


def probe_edgetpu(runtime: Runtime, library: str, model: Path) -> str | None:
    """Try the EdgeTPU delegate in a child process, where a crash cannot take us down.

    Returns:
        ``None`` when the delegate loaded and the model ran once, else the reason it did not.
    """
    try:
        check_edgetpu_in_child(runtime, library, model)
    except BackendUnavailableError as exc:
        return str(exc)
    return None


def check_edgetpu_in_child(runtime: Runtime, library: str, model: Path) -> None:
    """Load the delegate and run the model once in a child process.

    Raises:
        DelegateAbsentError: The library is not installed.
        BackendUnavailableError: It crashed, hung or failed otherwise; the message says why.
    """
    cmd = [
        sys.executable, "-m", "edgepose.inference.edgetpu_probe",
        "--runtime", runtime.name, "--library", library, "--model", str(model),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=EDGETPU_PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise BackendUnavailableError(
            f"the EdgeTPU probe hung for {EDGETPU_PROBE_TIMEOUT_S:.0f} s (is the Coral plugged in and powered?)"
        ) from None
    if proc.returncode == 0:
        return
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        raise BackendUnavailableError(
            f"{library} crashed the process ({sig}) under {runtime.name} {runtime.version}: the library does not "
            "match this runtime (google-coral/edgetpu#812); install a libedgetpu built for this TF version "
            "(see edgepose doctor)"
        )
    reasons = [ln[len(REASON_PREFIX) :] for ln in proc.stderr.splitlines() if ln.startswith(REASON_PREFIX)]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    reason = (reasons or lines or [f"the EdgeTPU probe exited with status {proc.returncode}"])[-1]
    raise (DelegateAbsentError if proc.returncode == ABSENT_EXIT else BackendUnavailableError)(reason)


def _open_edgetpu(runtime: Runtime, files: ModelFiles, request: BackendRequest) -> Backend:
    if files.edgetpu_path is None or not files.edgetpu_path.is_file():
        where = files.edgetpu_path or f"an _edgetpu variant of {files.name}"
        raise DelegateAbsentError(f"no EdgeTPU model: {where} is missing (run: edgepose models fetch)")
    read_model(files.edgetpu_path)
    if request.edgetpu_probe:
        check_edgetpu_in_child(runtime, request.edgetpu_library, files.edgetpu_path)
    info = BackendInfo(runtime.name, "edgetpu", 1, files.edgetpu_path.name)
    if request.edgetpu_worker:
        from edgepose.inference.worker import WorkerBackend, WorkerSpec  # imports this module

        spec = WorkerSpec(runtime.name, files.edgetpu_path, "edgetpu", 1, request.edgetpu_library)
        # ``--delegate edgetpu`` makes the EdgeTPU mandatory: a worker that keeps failing ends the run
        # (exit 1, systemd restarts the service) instead of carrying on on the CPU.
        if request.delegate == "edgetpu":
            return WorkerBackend(spec, info, stop=request.stop)
        return WorkerBackend(
            spec, info, fallback=lambda: _open_cpu_fallback(runtime, files, request), stop=request.stop
        )
    delegate = load_edgetpu_delegate(runtime, request.edgetpu_library)
    interpreter = make_interpreter(runtime, files.edgetpu_path, "edgetpu", 1, delegate)
    return Backend(interpreter, info)


def _open_cpu_fallback(runtime: Runtime, files: ModelFiles, request: BackendRequest) -> Backend:
    """Open the in-process backend a failing EdgeTPU worker hands over to: XNNPACK, else CPU kernels."""
    try:
        return OPENERS["xnnpack"](runtime, files, request)
    except BackendUnavailableError as exc:
        log.warning("delegate xnnpack unavailable for the fallback, using cpu: %s", exc)
        return OPENERS["cpu"](runtime, files, request)


def _cpu_model(files: ModelFiles) -> Path:
    if files.cpu_path is None:
        assert files.edgetpu_path is not None
        raise ModelError(
            f"{files.edgetpu_path.name} is compiled for the Coral EdgeTPU and cannot run on the CPU; use the CPU "
            "model (--model lightning) or --delegate edgetpu with a Coral attached"
        )
    read_model(files.cpu_path)
    return files.cpu_path


def _open_cpu(kind: str) -> Callable[[Runtime, ModelFiles, BackendRequest], Backend]:
    def opener(runtime: Runtime, files: ModelFiles, request: BackendRequest) -> Backend:
        path = _cpu_model(files)
        interpreter = make_interpreter(runtime, path, kind, request.threads)
        return Backend(interpreter, BackendInfo(runtime.name, kind, request.threads, path.name))

    return opener


#: How each delegate is opened, in ``auto``'s order of preference.
OPENERS: dict[str, Callable[[Runtime, ModelFiles, BackendRequest], Backend]] = {
    "edgetpu": _open_edgetpu,
    "xnnpack": _open_cpu("xnnpack"),
    "cpu": _open_cpu("cpu"),
}


def open_backend(files: ModelFiles, request: BackendRequest, check: ModelCheck | None = None) -> Backend:
    """Open the requested delegate, or walk ``auto``'s chain, logging every fallback.

    Args:
        files: The model's CPU file and EdgeTPU twin.
        request: Runtime, delegate and threads asked for.
        check: The model family's check of the opened model's tensors (e.g. MoveNet's single
            ``[1, 1, 17, 3]`` output); a wrong model fails here, before any frame is read.

    Raises:
        ModelError: The model is missing, corrupt, of the wrong shape or for the wrong delegate.
        BackendUnavailableError: The runtime or the explicitly requested delegate is unavailable.
    """
    runtime = find_runtime(request.runtime)
    if request.delegate not in DELEGATES:
        raise BackendUnavailableError(f"unknown delegate {request.delegate!r}; choose one of {', '.join(DELEGATES)}")

    def opened(name: str) -> Backend:
        backend = OPENERS[name](runtime, files, request)
        if check is not None:
            try:
                check(backend)
            except BaseException:
                backend.close()
                raise
        return backend

    if request.delegate != "auto":
        backend = opened(request.delegate)
        _log_choice(backend, runtime)
        return backend
    chain = list(OPENERS)
    for position, name in enumerate(chain):
        try:
            backend = opened(name)
        except BackendUnavailableError as exc:
            if position == len(chain) - 1:
                raise
            level = logging.INFO if isinstance(exc, DelegateAbsentError) else logging.WARNING
            log.log(level, "delegate %s unavailable, falling back to %s: %s", name, chain[position + 1], exc)
            continue
        except ModelError as exc:
            if name != "edgetpu":
                raise
            log.warning("delegate edgetpu unavailable, falling back to %s: %s", chain[position + 1], exc)
            continue
        _log_choice(backend, runtime)
        return backend
    raise AssertionError("unreachable")  # pragma: no cover


def _log_choice(backend: Backend, runtime: Runtime) -> None:
    info = backend.info
    log.info(
        "running %s on %s %s, delegate %s, %d thread(s)%s",
        info.model, runtime.name, runtime.version, info.delegate, info.threads,
        " in a supervised worker process" if backend.supervised else "",
    )  # fmt: skip


def default_threads() -> int:
    """Return all cores, at most 4 (a Pi 4/5 has 4; more threads than cores hurts)."""
    return max(1, min(4, os.cpu_count() or 1))


__all__ = [
    "RUNTIMES", "Backend", "BackendRequest", "DelegateAbsentError", "ModelFiles", "Runtime",
    "default_threads", "find_runtime", "open_backend", "probe_edgetpu", "tflite_numpy_problem",
]  # fmt: skip
