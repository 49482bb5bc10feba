"""A supervised inference worker: the interpreter runs in a child process, so a crash kills only the child.

libedgetpu can abort the whole process mid-run (a USB reset, a driver mismatch: SIGABRT, SIGSEGV) or
hang in ``invoke``. :class:`WorkerBackend` has :class:`~edgepose.inference.runtime.backend.Backend`'s surface
and runs the model in :mod:`.child`, fed through shared memory: an anonymous ``memfd`` the
child inherits by descriptor (nothing named in ``/dev/shm`` that a killed service could leak), with one
line per request and reply on the child's stdin/stdout. When the child dies or does not answer within
the invoke timeout, it is killed, restarted after a bounded backoff, and **the same frame is run again**
(its input is still in shared memory): no frame is skipped. After ``max_failures`` failures within
``window_s`` (or that many in a row), or when one frame's recovery has used the policy's ``recovery_s``,
the worker falls back to an in-process CPU backend for the rest of the run and says why at WARNING;
without a fallback (the EdgeTPU asked for explicitly) it raises
:class:`~edgepose.errors.BackendUnavailableError` with the reason instead. Restarts, failures and the
fallback reason are attributes; :attr:`~WorkerBackend.info` becomes the fallback's. When the run's stop
event is set, a wait for the child or a backoff ends within ``STOP_POLL_S`` and ``invoke`` raises
:class:`~edgepose.errors.BackendUnavailableError` (the loop ends on it, as it is stopping).

This module is the :class:`Backend`-compatible façade; the parts live next to it:
:mod:`.shm` (the memfd and the tensor layout in it), :mod:`.process` (the child process
handle: spawn, request/reply, kill/reap) and :mod:`.policy` (restart and fallback policy).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from edgepose.errors import BackendUnavailableError, EdgePoseError
from edgepose.inference.runtime.backend import Backend
from edgepose.inference.worker.policy import (
    FailureWindow,
    FallbackFactory,
    WorkerPolicy,
    give_up_reason,
    take_over,
)
from edgepose.inference.worker.process import WorkerChild, WorkerFailure, WorkerSpec
from edgepose.inference.worker.shm import WorkerResources, create_memfd, details_from_json, layout_of
from edgepose.pose import BackendInfo

log = logging.getLogger(__name__)


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
        stop: threading.Event | None = None,
    ) -> None:
        """Start the child and wait until its model is loaded.

        Args:
            spec: What the child runs.
            info: What :attr:`info` reports while the child runs.
            fallback: Opens the in-process backend used after repeated failures (``None``: no fallback,
                the last failure is raised instead).
            policy: Timeouts, failure limit and backoff.
            clock: Monotonic seconds, for the failure window (the recovery budget is real time).
            stop: The run's stop event: once set, the recovery of a failing frame ends at once.

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
        self._stop = stop if stop is not None else threading.Event()
        self._deadline = 0.0  # the end of the current frame's recovery budget
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
        self._res = WorkerResources(create_memfd())
        self._finalizer = weakref.finalize(self, self._res.release)
        try:
            hello = self._start()
        except WorkerFailure as exc:
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
        self._deadline = time.monotonic() + self.policy.recovery_s
        while self._fallback is None:
            self._requests += 1
            try:
                self._invoke_in_child(self._requests)
            except WorkerFailure as exc:
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

    def _left(self, timeout: float) -> float:
        """Return ``timeout`` cut to what is left of the frame's recovery budget."""
        return max(0.0, min(timeout, self._deadline - time.monotonic()))

    def _start(self, timeout: float | None = None) -> dict[str, Any]:
        """Start a child and map the shared memory; return its hello (raises WorkerFailure or EdgePoseError)."""
        if self._res.child is not None:
            self._res.child.kill()
        child = self._res.child = WorkerChild(self.spec, self._res.fd)
        hello = child.hello(self.policy.start_timeout_s if timeout is None else timeout, self._stop)
        layout = layout_of(hello)
        if not self._layout:
            self._layout = layout
            self._shared_in, self._shared_out = self._res.map(hello)
        elif layout != self._layout:
            child.kill()
            raise WorkerFailure("came back with different tensors")
        return hello

    def _invoke_in_child(self, seq: int) -> None:
        child = self._res.child
        if child is None or child.proc.returncode is not None:
            self.restarts += 1
            try:
                self._start(self._left(self.policy.start_timeout_s))
            except EdgePoseError as exc:
                raise WorkerFailure(f"could not restart: {exc}") from None
            child = self._res.child
            assert child is not None
        child.invoke(seq, self._left(self.policy.invoke_timeout_s), self._stop)

    def _failed(self, reason: str) -> None:
        """Count a failure; wait before the restart, or fall back to the CPU when there were too many."""
        if self._closed:  # close() from another thread ended the child: not a failure to recover from
            raise BackendUnavailableError("the inference worker is closed")
        if self._res.child is not None:
            self._res.child.kill()
        if self._stop.is_set():  # the run is stopping: no restart, and this frame is not finished
            self._stopping(reason)
        self.failures += 1
        self.last_failure = reason
        give_up = self._window.record(self._clock())
        delay = self._window.backoff()
        out_of_time = time.monotonic() + delay >= self._deadline
        what = f"the {self.spec.delegate} inference worker {reason}"
        if not (give_up or out_of_time):
            log.warning("%s; restarting it in %.2g s and re-running the frame (failure %d)", what, delay, self.failures)
            if self._stop.wait(delay):
                self._stopping(reason)
            return
        self.fallback_reason = give_up_reason(self._window, self.spec.delegate, reason, out_of_time and not give_up)

        self._fall_back()

    def _stopping(self, reason: str) -> NoReturn:
        """Give up the frame because the run is stopping (raises)."""
        log.info("the %s inference worker %s; not restarting it: the run is stopping", self.spec.delegate, reason)
        raise BackendUnavailableError("the run is stopping: the inference worker's recovery was cut short")

    def _fall_back(self) -> None:
        assert self.fallback_reason is not None
        backend = take_over(self._make_fallback, self.fallback_reason, self, self._shared_in)
        self._fallback = backend
        self.info = backend.info
        self._shared_in = []
        self._shared_out = []
        self._res.release()
