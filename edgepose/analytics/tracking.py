"""Tracking: which pose of this frame is which person, by keypoint similarity with a motion prediction.

Each track remembers its person's last keypoints and the speed of their centre (the mean of the
keypoints seen in two frames running, smoothed: half the old speed, half the new). Its *prediction* for
a frame moves the last keypoints on at that speed, for at most ``lost_s`` of the time since the track's
last pose (after that it stays put). A pose and a track are compared by an OKS-like *similarity*, the
mean over the keypoints seen in both of ``exp(-d² / (2 s² k²))``, where ``d`` is the distance from the
prediction, ``s²`` the area of the box around the track's seen keypoints and ``k`` twice COCO's
per-keypoint sigma (a wrist may stray further than an eye); fewer than :data:`MIN_COMMON` keypoints seen
in both make it 0. A track not matched for a while is trusted less: its similarity is multiplied by
``exp(-age / lost_s)``, the age since its last pose capped at ``lost_s`` (so a person hidden behind another
does not take the other's pose where their paths cross). Then, greedily, the most similar pair of a free
track and a free pose is matched, again and again, down to :data:`MIN_SIMILARITY`. A frame with a single
pose and a single track pairs them whatever their similarity (MoveNet's single pose is its one track).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: COCO's per-keypoint sigmas, in :data:`~edgepose.pose.KEYPOINT_NAMES` order.
COCO_SIGMAS = np.array([0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
                        0.107, 0.107, 0.087, 0.087, 0.089, 0.089])  # fmt: skip
#: Least similarity of a match.
MIN_SIMILARITY = 0.1
#: Least keypoints seen in both a pose and a track to compare them.
MIN_COMMON = 3


class Motion:
    """A track's last keypoints and the speed of its centre, for the prediction.

    Args:
        keypoints: The first pose's ``(17, 3)`` keypoints.
        ts: Its time.
        min_score: Keypoints scoring below this are not used.
        lost_s: The prediction moves on for at most this long.
    """

    def __init__(self, keypoints: np.ndarray, ts: float, min_score: float, lost_s: float) -> None:
        self.keypoints = np.array(keypoints, dtype=np.float64)
        self.ts = ts
        self.min_score = min_score
        self.lost_s = lost_s
        self.velocity = np.zeros(2)

    def predict(self, ts: float) -> np.ndarray:
        """Return the keypoints expected at ``ts`` (scores as last seen)."""
        out = np.array(self.keypoints)
        out[:, :2] += self.velocity * self.age(ts)
        return out

    def age(self, ts: float) -> float:
        """Return the seconds since the last pose, capped at ``lost_s``."""
        return min(max(ts - self.ts, 0.0), self.lost_s)

    def trust(self, ts: float) -> float:
        """Return the weight of this track's similarities at ``ts``: 1 just seen, ``1/e`` after ``lost_s``."""
        return math.exp(-self.age(ts) / self.lost_s)

    def observe(self, keypoints: np.ndarray, ts: float) -> None:
        """Take the track's pose at ``ts``: the new keypoints and the centre's speed."""
        new = np.asarray(keypoints, dtype=np.float64)
        dt = ts - self.ts
        common = (self.keypoints[:, 2] >= self.min_score) & (new[:, 2] >= self.min_score)
        if dt > self.lost_s:
            self.velocity = np.zeros(2)
        elif dt > 0 and common.any():
            speed = (new[common, :2].mean(axis=0) - self.keypoints[common, :2].mean(axis=0)) / dt
            self.velocity = 0.5 * self.velocity + 0.5 * speed
        self.keypoints, self.ts = new, ts

    def stop(self) -> None:
        """Forget the speed (the picture changed: a new opening of the source)."""
        self.velocity = np.zeros(2)


def similarity(predicted: np.ndarray, keypoints: np.ndarray, min_score: float) -> float:
    """Return the OKS-like similarity in [0, 1] of a track's prediction and a pose (see the module docstring)."""
    common = (predicted[:, 2] >= min_score) & (keypoints[:, 2] >= min_score)
    if int(common.sum()) < MIN_COMMON:
        return 0.0
    seen = predicted[predicted[:, 2] >= min_score, :2]
    extent = seen.max(axis=0) - seen.min(axis=0)
    area = max(float(extent[0] * extent[1]), 1.0)
    d2 = ((predicted[common, :2] - keypoints[common, :2]) ** 2).sum(axis=1)
    k2 = (2.0 * COCO_SIGMAS[common]) ** 2
    return float(np.exp(-d2 / (2.0 * area * k2)).mean())


def match(
    tracks: Sequence[tuple[np.ndarray, float]], poses: Sequence[np.ndarray], usable: Sequence[bool], min_score: float
) -> dict[int, int]:
    """Match poses to tracks; return ``{pose index: track index}``.

    Args:
        tracks: Each track's predicted ``(17, 3)`` keypoints and its trust (:meth:`Motion.trust`).
        poses: This frame's poses' ``(17, 3)`` keypoints.
        usable: Which poses may continue a track (those *seen*, :mod:`edgepose.analytics.body`).
        min_score: Keypoints scoring below this are not compared.
    """
    if len(poses) == 1 and len(tracks) == 1:
        return {0: 0} if usable[0] else {}
    pairs = sorted(
        ((trust * similarity(p, k, min_score), -t, -i) for t, (p, trust) in enumerate(tracks)
         for i, k in enumerate(poses) if usable[i]),
        reverse=True,
    )  # fmt: skip
    out: dict[int, int] = {}
    taken: set[int] = set()
    for value, t, i in pairs:
        if value < MIN_SIMILARITY:
            break
        if -i not in out and -t not in taken:
            out[-i] = -t
            taken.add(-t)
    return out
