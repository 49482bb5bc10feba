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

import functools
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


def joined_group(keypoints: np.ndarray, min_score: float) -> tuple[int, ...]:
    """Return the indices of the largest group of seen keypoints connected along the skeleton."""
    seen = np.flatnonzero(keypoints[:, 2] >= min_score).tolist()
    return _largest_group(len(keypoints), sum(1 << i for i in seen))


@functools.lru_cache(maxsize=4096)
def _largest_group(count: int, seen_mask: int) -> tuple[int, ...]:
    """Return the largest connected group of the keypoints whose bits are set (the first on a tie), per pattern.

    A person shows only a few patterns of seen keypoints from frame to frame, so the union-find over the
    skeleton runs once per pattern.
    """
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen = [bool(seen_mask >> i & 1) for i in range(count)]
    for a, b in SKELETON_EDGES:
        if seen[a] and seen[b]:
            parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(count):
        if seen[i]:
            groups.setdefault(root(i), []).append(i)
    largest: list[int] = max(groups.values(), key=len, default=[])
    return tuple(largest)


class _GroupParts(NamedTuple):
    """What a joined group's skeleton test needs, by index: its shoulders, its hips and its bones' ends."""

    shoulders: list[int]
    hips: list[int]
    bone_a: list[int]
    bone_b: list[int]


@functools.lru_cache(maxsize=4096)
def _parts(group: tuple[int, ...]) -> _GroupParts:
    """Return the shoulders, hips and bones of a joined group (kept per group: the patterns repeat)."""
    members = set(group)
    ends = [(a, b) for a, b in SKELETON_EDGES if a in members and b in members]
    return _GroupParts([i for i in _SHOULDERS if i in members], [i for i in _HIPS if i in members],
                  [a for a, _ in ends], [b for _, b in ends])  # fmt: skip


def _skeleton(keypoints: np.ndarray, group: tuple[int, ...], shorter_side: float, min_size: float) -> bool:
    """Whether the joined group has a torso, the size of a body and a skeleton's proportions."""
    parts = _parts(group)
    if not parts.shoulders or not parts.hips:
        return False
    xy = keypoints[:, :2].astype(np.float64)
    across = xy[parts.shoulders][:, None, :] - xy[parts.hips][None, :, :]
    torso = float(np.hypot(across[..., 0], across[..., 1]).max())
    points = xy[list(group)]
    if float((points.max(axis=0) - points.min(axis=0)).max()) < min_size * shorter_side or torso <= 0.0:
        return False
    bones = xy[parts.bone_a] - xy[parts.bone_b]  # one hypot per bone, as a vector
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
