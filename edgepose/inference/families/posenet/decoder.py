"""PoseNet's multi-pose decoder: the dequantised maps to people, as pure functions over numpy arrays.

The prepared PoseNet model (see :mod:`.prepare`) outputs three uint8 maps on a grid of
``stride``-pixel cells: keypoint heatmaps (logits, 17 channels), short-range offsets (17 y then 17 x, in
input pixels) and mid-range displacements along the 16 edges of the skeleton tree (16 forward y, 16
forward x, 16 backward y, 16 backward x, in input pixels), dequantised by :mod:`.model`.
:func:`decode_poses` turns them into people
with the greedy bottom-up decoder of PersonLab (Papandreou et al., 2018) as published with PoseNet:

1. Root candidates: heatmap cells whose score reaches ``score_threshold`` and that no cell within
   ``local_max_radius`` of the same keypoint beats, refined by their short-range offset, best first.
2. A candidate within ``nms_radius`` input pixels of the same keypoint of a pose already found is skipped.
3. Otherwise a pose grows from it along the tree, best-scoring keypoint first, in both directions:
   follow the edge's mid-range displacement, then refine ``refine_steps`` times by the target
   keypoint's short-range offset. Maps are sampled bilinearly; keypoint scores are the sigmoid of the
   heatmap at the keypoint.
4. A pose is kept when the mean of its 17 keypoint scores reaches ``score_threshold``. Finally each
   pose is rescored without the keypoints lying within ``nms_radius`` of the same keypoint of a
   better pose (soft keypoint NMS), and poses are returned best first.

All of this works in grid units (input pixels / stride); results are in input pixels.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from edgepose.config.schema import ModelConfig
from edgepose.pose import KEYPOINT_INDEX

NUM_KEYPOINTS = 17

#: The skeleton tree PoseNet's mid-range displacements follow (parent, child), in the model's edge order.
TREE_EDGES: tuple[tuple[int, int], ...] = tuple(
    (KEYPOINT_INDEX[parent], KEYPOINT_INDEX[child])
    for parent, child in (
        ("nose", "left_eye"), ("left_eye", "left_ear"), ("nose", "right_eye"), ("right_eye", "right_ear"),
        ("nose", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("left_shoulder", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
        ("nose", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
        ("right_shoulder", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    )
)  # fmt: skip
NUM_EDGES = len(TREE_EDGES)


@dataclass(frozen=True)
class DecoderParams:
    """The multi-pose decoder's settings (the defaults are those stored in Coral's decoder operator).

    Attributes:
        max_people: At most this many poses (default ``[model] max_people``'s, Coral's too).
        score_threshold: Minimum keypoint score of a root candidate and minimum pose score.
        nms_radius: Keypoints of two poses closer than this (input pixels) count as the same.
        stride: Input pixels per cell of the output grid.
        local_max_radius: No cell within this many cells (same keypoint) may beat a root candidate.
        refine_steps: Short-range refinements after each mid-range displacement.
    """

    max_people: int = ModelConfig.max_people
    score_threshold: float = 0.2
    nms_radius: float = 10.0
    stride: int = 16
    local_max_radius: int = 1
    refine_steps: int = 5


@dataclass(frozen=True)
class DecodedPose:
    """One pose in model-input pixels: ``(17, 3)`` x, y, score and the pose score."""

    keypoints: np.ndarray
    score: float


def logit(probability: float) -> float:
    """Return the log-odds of a probability in (0, 1)."""
    return math.log(probability / (1.0 - probability))


def root_candidates(heatmaps: np.ndarray, min_logit: float, radius: int) -> np.ndarray:
    """Find the heatmap cells that can start a pose.

    Args:
        heatmaps: ``(H, W, 17)`` logits.
        min_logit: A candidate scores at least this.
        radius: A candidate is not beaten by any cell within this many cells (same keypoint); ties
            do not disqualify.

    Returns:
        ``(N, 3)`` int array of (y, x, keypoint) rows, highest score first (ties by position).
    """
    height, width, _ = heatmaps.shape
    padded = np.pad(heatmaps, ((radius, radius), (radius, radius), (0, 0)), constant_values=-np.inf)
    neighbourhood = heatmaps.copy()
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            np.maximum(neighbourhood, padded[dy : dy + height, dx : dx + width], out=neighbourhood)
    ys, xs, ks = np.nonzero((heatmaps >= min_logit) & (heatmaps >= neighbourhood))
    order = np.lexsort((ks, xs, ys, -heatmaps[ys, xs, ks]))
    return np.stack([ys[order], xs[order], ks[order]], axis=1)


def _flat(values: np.ndarray) -> memoryview:
    """Return a flat float32 view whose items index as plain Python floats."""
    return np.ascontiguousarray(values, dtype=np.float32).ravel().data


class _Maps:
    """The three maps in grid units, sampled bilinearly with plain Python floats (fast for single points)."""

    def __init__(self, heatmaps: np.ndarray, short: np.ndarray, mid: np.ndarray, stride: int) -> None:
        self.height, self.width = heatmaps.shape[:2]
        self.heat = _flat(heatmaps)
        self.short = _flat(short / np.float32(stride))
        self.mid = _flat(mid / np.float32(stride))

    def _pair(self, data: memoryview, channels: int, y: float, x: float, c1: int, c2: int) -> tuple[float, float]:
        """Bilinear values of channels ``c1`` and ``c2`` of ``data`` (``channels`` per cell) at an on-grid (y, x)."""
        y0, x0 = int(y), int(x)  # floor: points are kept on the grid (see clamp)
        fy, fx = y - y0, x - x0
        a = (y0 * self.width + x0) * channels
        b = a + channels if x0 + 1 < self.width else a
        c = a + self.width * channels if y0 + 1 < self.height else a
        d = c + (b - a)
        wa, wb, wc, wd = (1.0 - fy) * (1.0 - fx), (1.0 - fy) * fx, fy * (1.0 - fx), fy * fx
        return (
            wa * data[a + c1] + wb * data[b + c1] + wc * data[c + c1] + wd * data[d + c1],
            wa * data[a + c2] + wb * data[b + c2] + wc * data[c + c2] + wd * data[d + c2],
        )

    def clamp(self, y: float, x: float) -> tuple[float, float]:
        """Keep a point on the grid."""
        return min(max(y, 0.0), self.height - 1.0), min(max(x, 0.0), self.width - 1.0)

    def score(self, y: float, x: float, keypoint: int) -> float:
        """Heatmap logit of ``keypoint`` at (y, x)."""
        return self._pair(self.heat, NUM_KEYPOINTS, y, x, keypoint, keypoint)[0]

    def refine(self, y: float, x: float, keypoint: int) -> tuple[float, float]:
        """Move (y, x) by ``keypoint``'s short-range offset there."""
        dy, dx = self._pair(self.short, 2 * NUM_KEYPOINTS, y, x, keypoint, NUM_KEYPOINTS + keypoint)
        return self.clamp(y + dy, x + dx)

    def displace(self, y: float, x: float, edge: int, backward: bool) -> tuple[float, float]:
        """Move (y, x) along tree edge ``edge`` by its mid-range displacement (child→parent if ``backward``)."""
        base = 2 * NUM_EDGES if backward else 0
        dy, dx = self._pair(self.mid, 4 * NUM_EDGES, y, x, base + edge, base + NUM_EDGES + edge)
        return self.clamp(y + dy, x + dx)


#: For each keypoint: (neighbour, edge, backward) for every tree edge touching it.
_NEIGHBOURS: tuple[tuple[tuple[int, int, bool], ...], ...] = tuple(
    tuple((child, e, False) for e, (parent, child) in enumerate(TREE_EDGES) if parent == k)
    + tuple((parent, e, True) for e, (parent, child) in enumerate(TREE_EDGES) if child == k)
    for k in range(NUM_KEYPOINTS)
)


def _grow_pose(maps: _Maps, root_y: float, root_x: float, root_id: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pose from a root keypoint, best-scoring keypoint first.

    Returns:
        ``(17, 2)`` y, x in grid units and ``(17,)`` logits.
    """
    points = np.zeros((NUM_KEYPOINTS, 2), dtype=np.float64)
    logits = np.full(NUM_KEYPOINTS, -np.inf, dtype=np.float64)
    done = [False] * NUM_KEYPOINTS
    queue = [(-maps.score(root_y, root_x, root_id), 0, root_id, root_y, root_x)]
    pushed = 1
    while queue:
        negative, _, keypoint, y, x = heapq.heappop(queue)
        if done[keypoint]:
            continue
        done[keypoint] = True
        points[keypoint] = (y, x)
        logits[keypoint] = -negative
        for target, edge, backward in _NEIGHBOURS[keypoint]:
            if done[target]:
                continue
            ty, tx = maps.displace(y, x, edge, backward)
            for _ in range(steps):
                ty, tx = maps.refine(ty, tx, target)
            heapq.heappush(queue, (-maps.score(ty, tx, target), pushed, target, ty, tx))
            pushed += 1
    return points, logits


def _sigmoid(values: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-values))
    return result


def decode_poses(
    heatmaps: np.ndarray, short_offsets: np.ndarray, mid_offsets: np.ndarray, params: DecoderParams
) -> list[DecodedPose]:
    """Decode every person from PoseNet's dequantised maps.

    Args:
        heatmaps: ``(H, W, 17)`` keypoint logits.
        short_offsets: ``(H, W, 34)``: 17 y then 17 x offsets, input pixels.
        mid_offsets: ``(H, W, 64)``: forward y, forward x, backward y, backward x displacements of the
            16 tree edges, input pixels.
        params: Thresholds, radii and limits.

    Returns:
        Up to ``params.max_people`` poses in model-input pixels, best first.
    """
    maps = _Maps(heatmaps, short_offsets, mid_offsets, params.stride)
    radius_sq = (params.nms_radius / params.stride) ** 2
    min_logit = logit(params.score_threshold)
    points: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for y, x, keypoint in root_candidates(heatmaps, min_logit, params.local_max_radius).tolist():
        if len(points) >= params.max_people:
            break
        ry, rx = maps.refine(float(y), float(x), keypoint)
        if any(((pose[keypoint] - (ry, rx)) ** 2).sum() <= radius_sq for pose in points):
            continue
        pose_points, pose_logits = _grow_pose(maps, ry, rx, keypoint, params.refine_steps)
        keypoint_scores = _sigmoid(pose_logits)
        if keypoint_scores.mean() >= params.score_threshold:
            points.append(pose_points)
            scores.append(keypoint_scores)
    return rescore(points, scores, radius_sq, params)


def rescore(
    points: list[np.ndarray], scores: list[np.ndarray], radius_sq: float, params: DecoderParams
) -> list[DecodedPose]:
    """Soft keypoint NMS and the final order: a keypoint near the same keypoint of a better pose does not count.

    Args:
        points: Per pose, ``(17, 2)`` y, x in grid units.
        scores: Per pose, ``(17,)`` keypoint scores (probabilities).
        radius_sq: The squared NMS radius in grid units.
        params: ``score_threshold`` (poses rescored below it are dropped) and ``stride``.

    Returns:
        The poses in model-input pixels, best first; a pose's score is the sum of its keypoint scores
        that no better pose shares, over 17.
    """
    first = sorted(range(len(points)), key=lambda i: -float(scores[i].mean()))
    final: dict[int, float] = {}
    for rank, i in enumerate(first):
        occluded = np.zeros(NUM_KEYPOINTS, dtype=bool)
        for j in first[:rank]:
            occluded |= ((points[i] - points[j]) ** 2).sum(axis=1) <= radius_sq
        final[i] = float(scores[i][~occluded].sum() / NUM_KEYPOINTS)
    poses = []
    for i in sorted(final, key=lambda i: -final[i]):
        if final[i] < params.score_threshold:
            break
        keypoints = np.empty((NUM_KEYPOINTS, 3), dtype=np.float32)
        keypoints[:, 0] = points[i][:, 1] * params.stride
        keypoints[:, 1] = points[i][:, 0] * params.stride
        keypoints[:, 2] = scores[i]
        poses.append(DecodedPose(keypoints, final[i]))
    return poses
