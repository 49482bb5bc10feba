"""A supervised inference worker: the interpreter runs in a child process, so a crash kills only the child.

libedgetpu can abort the whole process mid-run (a USB reset, a driver mismatch: SIGABRT, SIGSEGV) or
hang in ``invoke``. :class:`WorkerBackend` has :class:`~edgepose.inference.backends.Backend`'s surface
and runs the model in :mod:`.worker_child`, fed through shared memory: an anonymous ``memfd`` the
child inherits by descriptor (nothing named in ``/dev/shm`` that a killed service could leak), with one
line per request and reply on the child's stdin/stdout. When the child dies or does not answer within
the invoke timeout, it is killed, restarted after a bounded backoff, and **the same frame is run again**
(its input is still in shared memory): no frame is skipped. After ``max_failures`` failures within
``window_s`` (or that many in a row), the worker falls back to an in-process CPU backend for the rest of
the run and says why at WARNING; without a fallback (the EdgeTPU asked for explicitly) it raises
:class:`~edgepose.errors.BackendUnavailableError` with the reason instead. Restarts, failures and the
fallback reason are attributes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import mmap
import os
import select
import signal
import subprocess
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from edgepose.errors import BackendUnavailableError, EdgePoseError, ModelError
from edgepose.inference.backends import Backend
from edgepose.inference.interpreters import DelegateAbsentError
from edgepose.pose import BackendInfo

log = logging.getLogger(__name__)

#: Start-up errors reported by the child, by kind.
_START_ERRORS: dict[str, type[EdgePoseError]] = {
    "absent": DelegateAbsentError,
    "unavailable": BackendUnavailableError,
    "model": ModelError,
}


@dataclass(frozen=True)
class WorkerPolicy:
    """How the worker is supervised.

    Attributes:
        invoke_timeout_s: A child that has not answered an invoke after this long is killed (hung).
        start_timeout_s: Time allowed for a child to load the delegate and the model.
        max_failures: Failures within ``window_s`` (or in a row) after which the worker falls back to the CPU.
        window_s: The failure window, in seconds.
        backoff_s: Wait before the first restart; doubled for each failure in a row.
        backoff_max_s: The longest wait before a restart.
    """

    invoke_timeout_s: float = 5.0
    start_timeout_s: float = 15.0
    max_failures: int = 5
    window_s: float = 600.0
    backoff_s: float = 0.5
    backoff_max_s: float = 2.0


@dataclass(frozen=True)
class WorkerSpec:
    """The interpreter the child runs.

    Attributes:
        runtime: Runtime import name (``ai_edge_litert``, ``tflite_runtime``).
        model: Model file.
        delegate: ``edgetpu`` in production; ``xnnpack`` or ``cpu`` where no EdgeTPU exists (tests, benchmarks).
        threads: CPU threads (ignored for the EdgeTPU).
        library: The libedgetpu to load.
        test_abort_at: Test-only fault injection: request numbers (every invoke request sent, retries
            included, counted from 1 across restarts) on which the child calls ``os.abort()``.
        test_hang_at: Test-only: request numbers on which the child hangs forever.
    """

    runtime: str
    model: Path
    delegate: str = "edgetpu"
    threads: int = 1
    library: str = "libedgetpu.so.1"
    test_abort_at: frozenset[int] = field(default_factory=frozenset)
    test_hang_at: frozenset[int] = field(default_factory=frozenset)

    def command(self, fd: int) -> list[str]:
        """Return the child's command line, with the shared-memory descriptor ``fd``."""
        cmd = [
            sys.executable, "-m", "edgepose.inference.worker_child", "--fd", str(fd), "--runtime", self.runtime,
            "--model", str(self.model), "--delegate", self.delegate, "--threads", str(self.threads),
            "--library", self.library,
        ]  # fmt: skip
        for flag, seqs in (("--test-abort-at", self.test_abort_at), ("--test-hang-at", self.test_hang_at)):
            if seqs:
                cmd += [flag, ",".join(str(s) for s in sorted(seqs))]
        return cmd


class FailureWindow:
    """Counts failures in a sliding window (time is passed in) and gives the backoff before a restart."""

    def __init__(self, policy: WorkerPolicy) -> None:
        self.policy = policy
        self.times: deque[float] = deque()
        #: Failures since the last successful invoke.
        self.in_a_row = 0

    def record(self, now: float) -> bool:
        """Record a failure at ``now``; return whether it is time to give up on the worker."""
        self.times.append(now)
        while self.times and self.times[0] <= now - self.policy.window_s:
            self.times.popleft()
        self.in_a_row += 1
        return len(self.times) >= self.policy.max_failures or self.in_a_row >= self.policy.max_failures

    def succeeded(self) -> None:
        """Record a successful invoke: the backoff starts again from its first step."""
        self.in_a_row = 0

    def backoff(self) -> float:
        """Return the wait before the next restart: doubling per failure in a row, bounded."""
        steps = max(0, self.in_a_row - 1)
        return float(min(self.policy.backoff_max_s, self.policy.backoff_s * 2.0 ** min(steps, 32)))


class _Failure(Exception):
    """The child died, hung or failed; the message says how."""


def details_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """Rebuild an interpreter tensor detail (numpy shapes and dtype) from the child's JSON."""
    params = data["quantization_parameters"]
    return {
        "name": data["name"],
        "index": data["index"],
        "shape": np.array(data["shape"], dtype=np.int32),
        "shape_signature": np.array(data["shape_signature"], dtype=np.int32),
        "dtype": np.dtype(data["dtype"]).type,
        "quantization": (data["quantization"][0], data["quantization"][1]),
        "quantization_parameters": {
            "scales": np.array(params["scales"], dtype=np.float32),
            "zero_points": np.array(params["zero_points"], dtype=np.int32),
            "quantized_dimension": params["quantized_dimension"],
        },
        "sparsity_parameters": {},
    }


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class _Child:
    """One child process and its line-based pipes."""

    def __init__(self, spec: WorkerSpec, fd: int) -> None:
        self.proc = subprocess.Popen(
            spec.command(fd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(fd,), bufsize=0
        )
        self._pending = b""
        assert self.proc.stdout is not None
        self._poller = select.poll()  # not select(): a long-running service may hold descriptors above 1023
        self._poller.register(self.proc.stdout.fileno(), select.POLLIN)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, line: str) -> None:
        stdin: IO[bytes] | None = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(line.encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise _Failure(self.died()) from None

    def read_line(self, timeout: float, waiting_for: str) -> str:
        """Return the child's next line; raise :class:`_Failure` if it dies or stays silent for ``timeout`` s."""
        stdout = self.proc.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise _Failure(f"hung: no answer to {waiting_for} within {timeout:g} s (killed)")
            try:
                ready = self._poller.poll(max(1, math.ceil(remaining * 1e3)))
                chunk = os.read(stdout.fileno(), 65536) if ready else None
            except (OSError, ValueError):  # the pipe was closed under us (close() from another thread)
                raise _Failure(self.died()) from None
            if chunk is None:
                continue
            if not chunk:
                raise _Failure(self.died())
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode(errors="replace")

    def died(self) -> str:
        """Reap the dead (or dying) child and say how it ended."""
        try:
            code = self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        return _exit_reason(code)

    def kill(self) -> None:
        """Kill and reap the child, and close its pipes."""
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait()
        self._close_pipes()

    def stop(self, grace_s: float = 2.0) -> None:
        """Ask the child to exit (end of its stdin), kill it if it does not, reap it."""
        self._close_pipes()
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class _Resources:
    """What must be released however the worker ends: the child, the mapping and the descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.child: _Child | None = None
        self.shared: mmap.mmap | None = None

    def release(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None
        if self.shared is not None:
            with contextlib.suppress(BufferError):  # a caller still holds a view: it goes when the view does
                self.shared.close()
            self.shared = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


#: Opens the in-process CPU backend the worker falls back to.
FallbackFactory = Callable[[], Backend]


class WorkerBackend(Backend):
    """A :class:`Backend` whose interpreter runs in a supervised child process.

    Attributes:
        restarts: Children started after the first (each after a failure).
        failures: Failures seen (deaths, hangs, invoke errors, failed restarts).
        last_failure: What the last failure was, or ``None``.
        fallback_reason: Why the worker gave up and inference runs in-process, or ``None``.
    """

    supervised = True

    def __init__(
        self,
        spec: WorkerSpec,
        info: BackendInfo,
        fallback: FallbackFactory | None = None,
        policy: WorkerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start the child and wait until its model is loaded.

        Args:
            spec: What the child runs.
            info: What :attr:`info` reports while the child runs.
            fallback: Opens the in-process backend used after repeated failures (``None``: no fallback,
                the last failure is raised instead).
            policy: Timeouts, failure limit and backoff.
            clock: Monotonic seconds, for the failure window.

        Raises:
            DelegateAbsentError: The child found no delegate library.
            BackendUnavailableError: The child could not start (crash, hang, broken delegate).
            ModelError: The child could not load the model.
        """
        self.spec = spec
        self.info = info
        self.policy = policy or WorkerPolicy()
        self._interpreter = None
        self._make_fallback = fallback
        self._fallback: Backend | None = None
        self._clock = clock
        self._window = FailureWindow(self.policy)
        self._requests = 0
        self._layout: dict[str, Any] = {}
        self._shared_in: list[np.ndarray] = []
        self._shared_out: list[np.ndarray] = []
        self._closed = False
        self.restarts = 0
        self.failures = 0
        self.last_failure: str | None = None
        self.fallback_reason: str | None = None
        if not hasattr(os, "memfd_create"):  # pragma: no cover - Linux has it
            raise BackendUnavailableError("the inference worker needs Linux (memfd_create); set edgetpu_worker = false")
        self._res = _Resources(os.memfd_create("edgepose-worker", os.MFD_CLOEXEC))
        self._finalizer = weakref.finalize(self, self._res.release)
        try:
            hello = self._start()
        except _Failure as exc:
            self.close()
            raise BackendUnavailableError(f"the {spec.delegate} worker could not start: {exc}") from None
        except EdgePoseError:
            self.close()
            raise
        self.inputs = [details_from_json(d) for d in hello["inputs"]]
        self.outputs = [details_from_json(d) for d in hello["outputs"]]

    # -- the Backend surface -------------------------------------------------------------------

    def input_tensor(self, index: int = 0) -> np.ndarray:
        """Return a writable view of input ``index`` (in shared memory) without its batch dimension."""
        if self._fallback is not None:
            return self._fallback.input_tensor(index)
        view: np.ndarray = self._shared_in[index][0]
        return view

    def output(self, index: int = 0) -> np.ndarray:
        """Return a copy of output ``index``."""
        if self._fallback is not None:
            return self._fallback.output(index)
        result: np.ndarray = self._shared_out[index].copy()
        return result

    def invoke(self) -> None:
        """Run the model on the current inputs in the child; restart it and re-run the frame if it fails.

        Raises:
            BackendUnavailableError: The worker gave up and no CPU fallback could be opened.
        """
        if self._closed:
            raise BackendUnavailableError("the inference worker is closed")
        while self._fallback is None:
            self._requests += 1
            try:
                self._invoke_in_child(self._requests)
            except _Failure as exc:
                self._failed(str(exc))
                continue
            self._window.succeeded()
            return
        self._fallback.invoke()

    def close(self) -> None:
        """Stop the child and release the shared memory (idempotent)."""
        self._closed = True
        self._shared_in = []
        self._shared_out = []
        self._finalizer()
        if self._fallback is not None:
            self._fallback.close()

    # -- supervision -----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The running child's process id, or ``None``."""
        child = self._res.child
        return child.pid if child is not None and child.proc.returncode is None else None

    @property
    def requests(self) -> int:
        """Invoke requests sent to children so far, re-runs after a failure included."""
        return self._requests

    @property
    def in_process(self) -> bool:
        """Whether inference has fallen back to an in-process backend."""
        return self._fallback is not None

    def _start(self) -> dict[str, Any]:
        """Start a child and map the shared memory; return its hello (raises _Failure or EdgePoseError)."""
        if self._res.child is not None:
            self._res.child.kill()
        child = self._res.child = _Child(self.spec, self._res.fd)
        line = child.read_line(self.policy.start_timeout_s, "start-up")
        kind, _, rest = line.partition(" ")
        if kind == "X":
            child.died()
            error, _, reason = rest.partition(" ")
            raise _START_ERRORS.get(error, BackendUnavailableError)(reason)
        if kind != "R":
            child.kill()
            raise _Failure(f"sent {line[:80]!r} instead of its tensor details")
        hello: dict[str, Any] = json.loads(rest)
        layout = {k: hello[k] for k in ("inputs", "outputs", "input_offsets", "output_offsets", "size")}
        if not self._layout:
            self._layout = layout
            self._map(hello)
        elif layout != self._layout:
            child.kill()
            raise _Failure("came back with different tensors")
        return hello

    def _map(self, hello: dict[str, Any]) -> None:
        shared = self._res.shared = mmap.mmap(self._res.fd, max(1, int(hello["size"])))

        def views(details: list[dict[str, Any]], offsets: list[int]) -> list[np.ndarray]:
            return [
                np.ndarray(tuple(d["shape"]), dtype=np.dtype(d["dtype"]), buffer=shared, offset=off)
                for d, off in zip(details, offsets, strict=True)
            ]

        self._shared_in = views(hello["inputs"], hello["input_offsets"])
        self._shared_out = views(hello["outputs"], hello["output_offsets"])

    def _invoke_in_child(self, seq: int) -> None:
        child = self._res.child
        if child is None or child.proc.returncode is not None:
            self.restarts += 1
            try:
                self._start()
            except EdgePoseError as exc:
                raise _Failure(f"could not restart: {exc}") from None
            child = self._res.child
            assert child is not None
        child.send(f"I {seq}")
        line = child.read_line(self.policy.invoke_timeout_s, f"invoke {seq}")
        kind, _, rest = line.partition(" ")
        if kind == "D" and rest == str(seq):
            return
        child.kill()
        if kind == "E":
            raise _Failure(f"failed to invoke: {rest.partition(' ')[2]}")
        raise _Failure(f"answered {line[:80]!r} to invoke {seq}")

    def _failed(self, reason: str) -> None:
        """Count a failure; wait before the restart, or fall back to the CPU when there were too many."""
        if self._closed:  # close() from another thread ended the child: not a failure to recover from
            raise BackendUnavailableError("the inference worker is closed")
        self.failures += 1
        self.last_failure = reason
        if self._res.child is not None:
            self._res.child.kill()
        give_up = self._window.record(self._clock())
        what = f"the {self.spec.delegate} inference worker {reason}"
        if not give_up:
            delay = self._window.backoff()
            log.warning("%s; restarting it in %.2g s and re-running the frame (failure %d)", what, delay, self.failures)
            time.sleep(delay)
            return
        in_window, in_a_row = len(self._window.times), self._window.in_a_row
        how = (
            f"{in_a_row} times in a row"
            if in_a_row >= in_window
            else f"{in_window} times in {self.policy.window_s:g} s"
        )
        self.fallback_reason = f"the {self.spec.delegate} inference worker failed {how}; last: {reason}"

        self._fall_back()

    def _fall_back(self) -> None:
        assert self.fallback_reason is not None
        if self._make_fallback is None:
            log.error("%s; no CPU fallback", self.fallback_reason)
            raise BackendUnavailableError(f"{self.fallback_reason}; no CPU fallback")
        try:
            backend = self._make_fallback()
        except EdgePoseError as exc:
            log.error("%s; the CPU fallback failed too: %s", self.fallback_reason, exc)
            raise BackendUnavailableError(f"{self.fallback_reason}; the CPU fallback failed too: {exc}") from exc
        if _signature(backend) != _signature(self):
            problem = f"the CPU model {backend.info.model} has other tensors than {self.info.model}"
            log.error("%s; %s", self.fallback_reason, problem)
            raise BackendUnavailableError(f"{self.fallback_reason}; {problem}, so it cannot take over")
        for index, shared in enumerate(self._shared_in):
            dst = backend.input_tensor(index)
            np.copyto(dst, shared[0])  # the frame that failed runs in-process
            del dst
        log.warning(
            "%s; falling back to in-process %s (%s) for the rest of the run",
            self.fallback_reason, backend.info.delegate, backend.info.model,
        )  # fmt: skip
        self._fallback = backend
        self.info = backend.info
        self._shared_in = []
        self._shared_out = []
        self._res.release()


def _signature(backend: Backend) -> list[tuple[tuple[int, ...], str]]:
    return [(tuple(int(d) for d in t["shape"]), np.dtype(t["dtype"]).str) for t in (*backend.inputs, *backend.outputs)]
