"""Temporal smoothing of the keypoints: a One-Euro filter (the crop region's low-pass is in :mod:`edgepose.filters`).

The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a first-order low-pass whose cutoff
rises with the speed of the signal: slow movements are smoothed hard (little jitter), fast ones
pass with little lag. The algorithm follows MediaPipe's and TensorFlow.js's implementation, with
the sampling rate taken from the frames' timestamps, not a fixed rate, and with coordinates
normalised to the frame (x / width, y / height) so the parameters do not depend on resolution.

The defaults (:class:`~edgepose.config.SmoothingConfig`) are MoveNet's JavaScript settings. They follow
movement closely (a walking person is not dragged behind), but at 30 fps they take little off the jitter
of a still person: the minimum cutoff alone caps the reduction of white jitter at
2.2× there, and beta opens the filter further for jitter of a pixel or two. :data:`STEADY` (0.2 Hz,
22, 0.5 Hz) cuts such jitter 3–4× for scenes that are mostly still, at the price of lagging the first
half second of a movement; see docs/analytics.md, "Smoothing".
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.config import SmoothingConfig

#: ``(min_cutoff, beta, d_cutoff)`` for mostly still scenes: 3–4× less jitter, more lag when movement starts.
STEADY = (0.2, 22.0, 0.5)


def _alpha(cutoff: np.ndarray | float, dt: np.ndarray | float) -> np.ndarray:
    """Smoothing factor of a first-order low-pass with this cutoff (Hz) for a sample period ``dt``."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return np.asarray(1.0 / (1.0 + tau / dt))


class OneEuroFilter:
    """A One-Euro filter over an array of values, each element filtered on its own.

    Args:
        min_cutoff: Cutoff (Hz) at rest.
        beta: Speed coefficient of the cutoff.
        d_cutoff: Cutoff (Hz) of the speed estimate.
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self._value: np.ndarray | None = None
        self._raw = np.zeros(0)
        self._speed = np.zeros(0)
        self._ts = np.zeros(0)
        self._seen = np.zeros(0, dtype=bool)

    def reset(self) -> None:
        """Forget the past: the next value passes unchanged."""
        self._value = None

    def __call__(self, values: np.ndarray, ts: float, valid: np.ndarray | None = None) -> np.ndarray:
        """Filter one sample taken at time ``ts`` (seconds) and return the filtered values.

        Args:
            values: The sample.
            ts: Its time in seconds.
            valid: Which elements to filter (default all). The others pass through unchanged and leave
                their filter as it was, so an element that is briefly unreliable does not pollute it.

        An element sampled no later than its previous sample (a repeated frame) keeps its current output.
        """
        raw = np.asarray(values, dtype=np.float64)
        use = np.ones(raw.shape, dtype=bool) if valid is None else np.broadcast_to(valid, raw.shape)
        if self._value is None or self._value.shape != raw.shape:
            self._value, self._raw = np.array(raw), np.array(raw)
            self._speed, self._ts, self._seen = np.zeros_like(raw), np.full(raw.shape, ts), np.array(use)
            return np.array(raw)
        first = use & ~self._seen  # first reliable sample of an element: start from it
        dt = ts - self._ts
        step = use & self._seen & (dt > 0.0)
        safe_dt = np.where(step, dt, 1.0)
        speed = (raw - self._raw) / safe_dt
        speed_now = self._speed + _alpha(self.d_cutoff, safe_dt) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(speed_now)
        value_now = self._value + _alpha(cutoff, safe_dt) * (raw - self._value)
        self._speed = np.where(step, speed_now, np.where(first, 0.0, self._speed))
        self._value = np.where(step, value_now, np.where(first, raw, self._value))
        self._raw = np.where(step | first, raw, self._raw)
        self._ts = np.where(step | first, ts, self._ts)
        self._seen |= use
        return np.where(use, self._value, raw)


class KeypointSmoother:
    """One-Euro filtering of a pose's keypoints, per keypoint and axis, in frame-normalised coordinates.

    Scores pass unchanged. A keypoint scoring below ``lost_score`` passes unfiltered and does not
    update its filter (the model's guesses for unseen joints jump about). The filter resets when the
    pose is lost (pose score below ``lost_score``), after a gap longer than ``max_gap_s`` and when the
    frame size changes.
    """

    def __init__(self, config: SmoothingConfig) -> None:
        self.config = config
        self._filter = OneEuroFilter(config.min_cutoff, config.beta, config.d_cutoff)
        self._size = (0, 0)
        self._ts: float | None = None
        self.resets = 0

    def reset(self) -> None:
        """Forget the tracked person."""
        if self._ts is not None:
            self.resets += 1
        self._filter.reset()
        self._ts = None

    def __call__(self, keypoints: np.ndarray, score: float, width: int, height: int, ts: float) -> np.ndarray:
        """Return smoothed ``(17, 3)`` keypoints (x, y in source pixels, score) for a frame at ``ts``."""
        lost = score < self.config.lost_score
        gap = self._ts is not None and ts - self._ts > self.config.max_gap_s
        if lost or gap or self._size != (width, height):
            self.reset()
        self._size = (width, height)
        if lost:
            return keypoints
        scale = np.array([max(width, 1), max(height, 1)], dtype=np.float64)
        seen = (keypoints[:, 2] >= self.config.lost_score)[:, None]
        xy = self._filter(keypoints[:, :2] / scale, ts, seen) * scale
        self._ts = ts
        out = np.array(keypoints)
        out[:, :2] = xy
        return out
