"""Body geometry from keypoints: joint angles, segment directions and centres of confident joints.

Every function takes ``(17, 3)`` keypoints (x, y in pixels, y down; score) and a minimum score, and
returns ``None`` when a joint it needs scores below it, so callers only ever use what the model saw.
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.pose import KEYPOINT_INDEX

SIDES = ("left", "right")


def joint(keypoints: np.ndarray, name: str, min_score: float) -> np.ndarray | None:
    """Return the ``(x, y)`` of a keypoint scoring at least ``min_score``, else ``None``."""
    row = keypoints[KEYPOINT_INDEX[name]]
    return row[:2].astype(np.float64) if row[2] >= min_score else None


def centre(keypoints: np.ndarray, part: str, min_score: float) -> np.ndarray | None:
    """Return the mean position of the confident left/right ``part`` (e.g. ``"hip"``), else ``None``."""
    found = [p for side in SIDES if (p := joint(keypoints, f"{side}_{part}", min_score)) is not None]
    if len(found) < 2:  # the mean of one point, or of none; (a + b) / 2 is what np.mean computes, bit for bit
        return found[0] if found else None
    mean: np.ndarray = (found[0] + found[1]) / 2.0
    return mean


def angle_at(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float | None:
    """Return the angle ABC in degrees (180 = straight), or ``None`` when a segment has no length."""
    u, v = a - b, c - b
    nu, nv = float(np.hypot(*u)), float(np.hypot(*v))
    if nu < 1e-6 or nv < 1e-6:
        return None
    cos = float(np.dot(u, v)) / (nu * nv)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def side_angles(keypoints: np.ndarray, joints: tuple[str, str, str], min_score: float) -> list[float]:
    """Return the angle at the middle joint on each side where all three joints are confident.

    Args:
        keypoints: ``(17, 3)`` keypoints.
        joints: Part names without side, e.g. ``("hip", "knee", "ankle")``.
        min_score: Minimum keypoint score.
    """
    out = []
    for side in SIDES:
        points = [joint(keypoints, f"{side}_{part}", min_score) for part in joints]
        a, b, c = points
        if a is not None and b is not None and c is not None:
            value = angle_at(a, b, c)
            if value is not None:
                out.append(value)
    return out


def tilt_from_down(start: np.ndarray, end: np.ndarray) -> float | None:
    """Return the angle in degrees between the segment start→end and straight down (0 = hanging)."""
    d = end - start
    if float(np.hypot(*d)) < 1e-6:
        return None
    return math.degrees(math.atan2(abs(float(d[0])), float(d[1])))
