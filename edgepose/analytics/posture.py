"""Posture: ``standing``, ``sitting``, ``lying`` or ``unknown``, from the torso's tilt and the legs' geometry.

Each frame *votes* from the seen keypoints (score >= ``keypoint_score``):

- no torso seen (a shoulder and a hip): ``unknown``;
- torso tilt (hip→shoulder from straight up) at least ``lying_deg`` (``fall_lying_deg``, 60°): ``lying``;
- torso tilt below ``upright_below_deg`` (``fall_down_deg``, 45°): the legs decide, on each side whose
  hip and knee are seen. *Sitting* (or squatting): the thigh is at least :data:`THIGH_SITTING_DEG` from
  straight down, or the knee angle (hip–knee–ankle, when the ankle is seen) is at most
  :data:`KNEE_SITTING_DEG`, or the thigh looks shorter than :data:`THIGH_SHORT` torso lengths (a thigh
  pointing at the camera, seen from the front). *Standing*: none of those, the thigh within
  :data:`THIGH_STANDING_DEG` of straight down and the knee (when seen) at least
  :data:`KNEE_STANDING_DEG`. Both sides must agree; no leg seen is ``unknown``;
- anything else (a torso between upright and lying, legs between the two rules): no vote.

The posture changes once the same vote has held for ``hold_s`` (frames with no vote neither break nor
count); it starts ``unknown``.
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.analytics.geometry import SIDES, angle_at, centre, joint, tilt_from_down
from edgepose.config import PostureConfig

STANDING, SITTING, LYING, UNKNOWN = "standing", "sitting", "lying", "unknown"
#: The postures, in the order the docs list them.
POSTURES = (STANDING, SITTING, LYING, UNKNOWN)
THIGH_SITTING_DEG = 50.0
THIGH_STANDING_DEG = 30.0
KNEE_SITTING_DEG = 120.0
KNEE_STANDING_DEG = 150.0
THIGH_SHORT = 0.45


def _leg(keypoints: np.ndarray, side: str, torso: float, min_score: float) -> str | None:
    """Vote of one leg: ``sitting``, ``standing``, ``""`` (between) or ``None`` (hip or knee unseen)."""
    hip = joint(keypoints, f"{side}_hip", min_score)
    knee = joint(keypoints, f"{side}_knee", min_score)
    if hip is None or knee is None:
        return None
    ankle = joint(keypoints, f"{side}_ankle", min_score)
    thigh = tilt_from_down(hip, knee)
    knee_angle = angle_at(hip, knee, ankle) if ankle is not None else None
    short = float(np.hypot(*(knee - hip))) < THIGH_SHORT * torso
    if (
        thigh is None
        or short
        or thigh >= THIGH_SITTING_DEG
        or (knee_angle is not None and knee_angle <= KNEE_SITTING_DEG)
    ):
        return SITTING
    if thigh <= THIGH_STANDING_DEG and (knee_angle is None or knee_angle >= KNEE_STANDING_DEG):
        return STANDING
    return ""


def vote(keypoints: np.ndarray, config: PostureConfig) -> str | None:
    """Return one frame's vote from ``(17, 3)`` keypoints: a posture, or ``None`` for no vote."""
    shoulder = centre(keypoints, "shoulder", config.keypoint_score)
    hip = centre(keypoints, "hip", config.keypoint_score)
    tilt = tilt_from_down(shoulder, hip) if shoulder is not None and hip is not None else None
    if shoulder is None or hip is None or tilt is None:
        return UNKNOWN
    if tilt >= config.lying_deg:
        return LYING
    if tilt >= config.upright_below_deg:
        return None
    torso = math.hypot(*(hip - shoulder))
    legs = {v for side in SIDES if (v := _leg(keypoints, side, torso, config.keypoint_score)) is not None}
    if not legs:
        return UNKNOWN
    return legs.pop() if len(legs) == 1 and "" not in legs else None


class Posture:
    """One person's posture with hysteresis; feed it every frame they are seen in.

    Attributes:
        posture: One of :data:`POSTURES`.
    """

    def __init__(self, config: PostureConfig) -> None:
        self.config = config
        self.posture = UNKNOWN
        self._candidate: str | None = None
        self._since = 0.0

    def update(self, ts: float, keypoints: np.ndarray | None) -> str:
        """Advance to a frame at ``ts`` with this person's keypoints (``None``: not seen); return the posture."""
        now = vote(keypoints, self.config) if keypoints is not None else None
        if now is None:
            return self.posture
        if now == self.posture:
            self._candidate = None
            return self.posture
        if now != self._candidate:
            self._candidate, self._since = now, ts
        if ts - self._since >= self.config.hold_s:
            self.posture, self._candidate = now, None
        return self.posture
