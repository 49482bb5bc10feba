"""The evidence of a body: whether a pose is a person, from its confident keypoints and the shape they make.

A pose's *mean* score is a weak signal (MoveNet gives 0.10–0.28 on empty walls, plants and pets); the
keypoints it is sure of, and whether they make a skeleton, separate a person from an empty scene. The
keypoints scoring at least ``keypoint_score`` are *seen*; the *joined* ones are the largest group of seen
keypoints connected along :data:`~edgepose.pose.SKELETON_EDGES`. A pose is

- **a body** (it counts towards entering, and may start a track) when it scores at least ``enter_score``,
  at least ``enter_keypoints`` keypoints are joined, the joined group holds a torso (a shoulder and a
  hip), the group's box is at least ``min_size`` of the frame's shorter side, and no bone of the group is
  longer than :data:`MAX_BONE_PER_TORSO` times the torso (a skeleton, not keypoints scattered over a
  texture);
- **seen** (it keeps a present person present, and may continue a track) when it scores at least
  ``leave_score`` and at least ``leave_keypoints`` keypoints are joined. This looser rule is the
  hysteresis: a person half hidden behind furniture, or lying where the model is less sure of them, stays;
- neither otherwise (it counts towards leaving).

"Seen" depends on the scores alone, so the keypoints' smoothing never changes it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edgepose.config import BodyConfig
from edgepose.pose import KEYPOINT_INDEX, SKELETON_EDGES

#: No bone of a body is longer than this many times its torso (the longest shoulder–hip distance seen).
MAX_BONE_PER_TORSO = 3.0
_SHOULDERS = (KEYPOINT_INDEX["left_shoulder"], KEYPOINT_INDEX["right_shoulder"])
_HIPS = (KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"])


class Evidence(NamedTuple):
    """What one pose shows: a body (enter), seen (stay), and how many keypoints are joined."""

    body: bool
    seen: bool
    joined: int


NOTHING = Evidence(False, False, 0)


def joined_group(keypoints: np.ndarray, min_score: float) -> list[int]:
    """Return the indices of the largest group of seen keypoints connected along the skeleton."""
    seen = keypoints[:, 2] >= min_score
    parent = list(range(len(keypoints)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in SKELETON_EDGES:
        if seen[a] and seen[b]:
            parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in np.flatnonzero(seen).tolist():
        groups.setdefault(root(i), []).append(i)
    return max(groups.values(), key=len, default=[])


def _skeleton(keypoints: np.ndarray, group: list[int], shorter_side: float, min_size: float) -> bool:
    """Whether the joined group has a torso, the size of a body and a skeleton's proportions."""
    members = set(group)
    shoulders = [i for i in _SHOULDERS if i in members]
    hips = [i for i in _HIPS if i in members]
    if not shoulders or not hips:
        return False
    xy = keypoints[:, :2].astype(np.float64)
    torso = max(float(np.hypot(*(xy[s] - xy[h]))) for s in shoulders for h in hips)
    points = xy[group]
    if float((points.max(axis=0) - points.min(axis=0)).max()) < min_size * shorter_side or torso <= 0.0:
        return False
    ends = np.array([(a, b) for a, b in SKELETON_EDGES if a in members and b in members])
    bones = xy[ends[:, 0]] - xy[ends[:, 1]]  # one hypot per bone, as a vector: the same values, one call
    return float(np.hypot(bones[:, 0], bones[:, 1]).max()) <= MAX_BONE_PER_TORSO * torso


def evidence(keypoints: np.ndarray, score: float, width: int, height: int, config: BodyConfig) -> Evidence:
    """Return what a pose (``(17, 3)`` keypoints in pixels, its score) shows in a ``width`` × ``height`` frame."""
    group = joined_group(keypoints, config.keypoint_score)
    joined = len(group)
    leave_at = min(config.leave_keypoints, config.enter_keypoints)
    seen = score >= min(config.leave_score, config.enter_score) and joined >= leave_at
    body = (
        seen
        and score >= config.enter_score
        and joined >= config.enter_keypoints
        and _skeleton(keypoints, group, float(min(width, height)), config.min_size)
    )
    return Evidence(body, seen, joined)
