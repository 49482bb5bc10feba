"""The supervised inference worker's restart and fallback policy.

:class:`WorkerPolicy` holds the timeouts, the failure limit and the backoff; :class:`FailureWindow`
counts failures (time passed in) and says when to give up; :func:`give_up_reason` says why, and
:func:`take_over` opens the in-process CPU backend that runs the rest of the run, the failed frame first.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgepose.errors import BackendUnavailableError, EdgePoseError
from edgepose.inference.backends import Backend

#: The worker's logger: its messages keep the name they had before it was split into modules.
log = logging.getLogger("edgepose.inference.worker")

#: Opens the in-process CPU backend the worker falls back to.
FallbackFactory = Callable[[], Backend]


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


def give_up_reason(window: FailureWindow, delegate: str, reason: str) -> str:
    """Say why the worker gives up: how often it failed (in a row, or within the window) and the last failure."""
    in_window, in_a_row = len(window.times), window.in_a_row
    how = (
        f"{in_a_row} times in a row" if in_a_row >= in_window else f"{in_window} times in {window.policy.window_s:g} s"
    )
    return f"the {delegate} inference worker failed {how}; last: {reason}"


def tensor_signature(backend: Backend) -> list[tuple[tuple[int, ...], str]]:
    """Return the shapes and dtypes of a backend's inputs and outputs, to compare two backends' tensors."""
    return [(tuple(int(d) for d in t["shape"]), np.dtype(t["dtype"]).str) for t in (*backend.inputs, *backend.outputs)]


def take_over(
    make_fallback: FallbackFactory | None, reason: str, worker: Backend, shared_in: list[np.ndarray]
) -> Backend:
    """Open the in-process backend that takes over from ``worker`` and give it the frame that failed.

    Args:
        make_fallback: Opens the in-process backend (``None``: there is no fallback).
        reason: Why the worker gave up (:func:`give_up_reason`).
        worker: The failing worker, whose tensors the fallback must match.
        shared_in: The worker's inputs (with batch dimension), holding the frame that failed.

    Raises:
        BackendUnavailableError: There is no fallback, it could not be opened, or its tensors differ.
    """
    if make_fallback is None:
        log.error("%s; no CPU fallback", reason)
        raise BackendUnavailableError(f"{reason}; no CPU fallback")
    try:
        backend = make_fallback()
    except EdgePoseError as exc:
        log.error("%s; the CPU fallback failed too: %s", reason, exc)
        raise BackendUnavailableError(f"{reason}; the CPU fallback failed too: {exc}") from exc
    if tensor_signature(backend) != tensor_signature(worker):
        problem = f"the CPU model {backend.info.model} has other tensors than {worker.info.model}"
        log.error("%s; %s", reason, problem)
        raise BackendUnavailableError(f"{reason}; {problem}, so it cannot take over")
    for index, shared in enumerate(shared_in):
        dst = backend.input_tensor(index)
        np.copyto(dst, shared[0])  # the frame that failed runs in-process
        del dst
    log.warning(
        "%s; falling back to in-process %s (%s) for the rest of the run",
        reason, backend.info.delegate, backend.info.model,
    )  # fmt: skip
    return backend
