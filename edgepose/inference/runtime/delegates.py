"""Delegate selection: open a model's :class:`~.backend.Backend` on the delegate asked for, or walk ``auto``'s chain.

``auto`` tries the EdgeTPU (with the ``_edgetpu`` model variant), then XNNPACK, then plain CPU kernels,
and logs why each step fell back. Loading libedgetpu can crash the process outright when it does not
match the runtime (google-coral/edgetpu#812), so it is first tried in a child process
(:mod:`.edgetpu_probe`), and by default run in the supervised worker (:mod:`edgepose.inference.worker`).
Runtimes are found by :mod:`.runtimes`; delegates are chosen from an explicit table (:data:`OPENERS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from edgepose.config.choices import DELEGATES
from edgepose.errors import BackendUnavailableError, ModelError
from edgepose.inference.runtime.backend import Backend, BackendRequest, ModelCheck
from edgepose.inference.runtime.edgetpu_probe import check_edgetpu_in_child
from edgepose.inference.runtime.interpreters import (
    DelegateAbsentError,
    load_edgetpu_delegate,
    make_interpreter,
    read_model,
)
from edgepose.inference.runtime.runtimes import Runtime, find_runtime
from edgepose.inference.worker.facade import WorkerBackend
from edgepose.inference.worker.process import WorkerSpec
from edgepose.manifest import ModelFiles
from edgepose.pose import BackendInfo

log = logging.getLogger(__name__)


def _open_edgetpu(runtime: Runtime, files: ModelFiles, request: BackendRequest) -> Backend:
    if files.edgetpu_path is None or not files.edgetpu_path.is_file():
        where = files.edgetpu_path or f"an _edgetpu variant of {files.name}"
        raise DelegateAbsentError(f"no EdgeTPU model: {where} is missing (run: edgepose models fetch)")
    read_model(files.edgetpu_path)
    if request.edgetpu_probe:
        check_edgetpu_in_child(runtime, request.edgetpu_library, files.edgetpu_path)
    info = BackendInfo(runtime.name, "edgetpu", 1, files.edgetpu_path.name)
    if request.edgetpu_worker:
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


def open_cpu_backend(files: ModelFiles, request: BackendRequest, check: ModelCheck | None = None) -> Backend:
    """Open a model that never runs on the EdgeTPU: ``auto`` means XNNPACK, else the plain CPU kernels.

    The caller refuses ``--delegate edgetpu`` first (with its family's reason).
    """
    if request.delegate != "auto":
        return open_backend(files, request, check=check)
    try:
        return open_backend(files, replace(request, delegate="xnnpack"), check=check)
    except BackendUnavailableError as exc:
        log.warning("delegate xnnpack unavailable, falling back to cpu: %s", exc)
        return open_backend(files, replace(request, delegate="cpu"), check=check)


def _log_choice(backend: Backend, runtime: Runtime) -> None:
    info = backend.info
    log.info(
        "running %s on %s %s, delegate %s, %d thread(s)%s",
        info.model, runtime.name, runtime.version, info.delegate, info.threads,
        " in a supervised worker process" if backend.supervised else "",
    )  # fmt: skip
