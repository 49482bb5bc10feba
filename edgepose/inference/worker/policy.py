"""The supervised inference worker's restart and fallback policy.

:class:`WorkerPolicy` holds the timeouts, the failure limit, the backoff and the recovery budget;
:class:`FailureWindow` counts failures (time passed in) and says when to give up; :func:`give_up_reason`
says why, and :func:`take_over` opens the in-process CPU backend that runs the rest of the run, the failed
frame first.

The recovery budget keeps a wedged Coral inside the service's limits: one frame's recovery (the hang that
starts it, the backoffs, the restarts and their waits) is cut off after ``recovery_s`` and the worker falls
back, well before systemd's ``WatchdogSec=`` (no frame, no ping) would kill the service; every wait also
ends when the run's stop event is set, well within ``TimeoutStopSec=``. tests/test_worker.py holds these
numbers against systemd/edgepose.service.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepose.errors import BackendUnavailableError, EdgePoseError
from edgepose.inference.runtime.backend import Backend

log = logging.getLogger(__name__)

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
        recovery_s: The longest one frame may spend failing and restarting, from the start of its first
            request: every wait is cut to what is left, and the worker gives up (falls back) when it is used.
    """

    invoke_timeout_s: float = 5.0
    start_timeout_s: float = 15.0
    max_failures: int = 5
    window_s: float = 600.0
    backoff_s: float = 0.5
    backoff_max_s: float = 2.0
    recovery_s: float = 15.0

    def worst_case_s(self) -> float:
        """Return the longest one invoke can take before the worker gives up on its child, however it fails.

        Without the budget that is the first hung invoke plus, for each further failure in a row, its
        backoff, a start that answers just before its timeout and a hung invoke again; the budget cuts it.
        """
        unbounded = self.invoke_timeout_s + sum(
            min(self.backoff_max_s, self.backoff_s * 2.0**step) + self.start_timeout_s + self.invoke_timeout_s
            for step in range(self.max_failures - 1)
        )
        return min(self.recovery_s, unbounded)


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


def give_up_reason(window: FailureWindow, delegate: str, reason: str, out_of_time: bool = False) -> str:
    """Say why the worker gives up: how often it failed (in a row, within the window, or out of time), and last how.

    ``out_of_time``: the frame's recovery budget (``recovery_s``) is used.
    """
    in_window, in_a_row = len(window.times), window.in_a_row
    if out_of_time:
        how = f"{in_a_row} times in a row and did not recover within {window.policy.recovery_s:g} s"
    elif in_a_row >= in_window:
        how = f"{in_a_row} times in a row"
    else:
        how = f"{in_window} times in {window.policy.window_s:g} s"
    return f"the {delegate} inference worker failed {how}; last: {reason}"


#: One tensor as :func:`tensor_signature` compares it: shape, dtype, (scale, zero point), per-channel scales
#: and zero points.
TensorSignature = tuple[tuple[int, ...], str, tuple[float, int], tuple[float, ...], tuple[int, ...]]


def tensor_signature(backend: Backend) -> list[TensorSignature]:
    """Return the shapes, dtypes and quantisation of a backend's inputs and outputs, to compare two backends.

    A model with other quantisation parameters reads the same bytes as other numbers: the estimators
    (PoseNet's dequantisation) took theirs from the first backend, so such a fallback must not take over.
    """
    return [_tensor_signature(t) for t in (*backend.inputs, *backend.outputs)]


def _tensor_signature(detail: dict[str, Any]) -> TensorSignature:
    scale, zero_point = detail.get("quantization") or (0.0, 0)
    params = detail.get("quantization_parameters") or {}
    return (
        tuple(int(d) for d in detail["shape"]),
        np.dtype(detail["dtype"]).str,
        (float(scale), int(zero_point)),
        tuple(float(s) for s in params.get("scales", ())),
        tuple(int(z) for z in params.get("zero_points", ())),
    )


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
