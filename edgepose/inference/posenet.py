"""PoseNet multi-pose pre- and post-processing as pure functions over numpy arrays.

The prepared PoseNet model (see :mod:`.posenet_prepare`) outputs three uint8 maps on a grid of
``stride``-pixel cells: keypoint heatmaps (logits, 17 channels), short-range offsets (17 y then 17 x, in
input pixels) and mid-range displacements along the 16 edges of the skeleton tree (16 forward y, 16
forward x, 16 backward y, 16 backward x, in input pixels). :func:`decode_poses` turns them into people
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
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edgepose.errors import ModelError
from edgepose.pose import KEYPOINT_INDEX

if TYPE_CHECKING:
    from edgepose.inference.backends import Backend

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

#: The three outputs of a prepared PoseNet model, by their channel count.
OUTPUT_CHANNELS: dict[str, int] = {"heatmaps": NUM_KEYPOINTS, "short": 2 * NUM_KEYPOINTS, "mid": 4 * NUM_EDGES}


@dataclass(frozen=True)
class DecoderParams:
    """The multi-pose decoder's settings (the defaults are those stored in Coral's decoder operator).

    Attributes:
        max_people: At most this many poses.
        score_threshold: Minimum keypoint score of a root candidate and minimum pose score.
        nms_radius: Keypoints of two poses closer than this (input pixels) count as the same.
        stride: Input pixels per cell of the output grid.
        local_max_radius: No cell within this many cells (same keypoint) may beat a root candidate.
        refine_steps: Short-range refinements after each mid-range displacement.
    """

    max_people: int = 20
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


@dataclass(frozen=True)
class Letterbox:
    """Where the frame sits in the model input: scaled by ``scale_x``/``scale_y``, offset by ``left``/``top``."""

    left: int
    top: int
    scale_x: float
    scale_y: float


def check_model(backend: Backend) -> None:
    """Check that an opened model is a prepared PoseNet: one uint8 image input, the decoder's three maps out.

    Raises:
        ModelError: It is some other model (or Coral's file before preparation); the message says what to use.
    """
    model = backend.info.model
    hint = "use --model posenet (edgepose models fetch posenet prepares it)"
    shape = backend.input_shape(0)
    if len(backend.inputs) != 1 or len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
        raise ModelError(
            f"{model} takes {len(backend.inputs)} input(s) of shape {shape}; PoseNet takes one image ({hint})"
        )
    if np.dtype(backend.inputs[0]["dtype"]) != np.uint8:
        raise ModelError(
            f"{model} takes {np.dtype(backend.inputs[0]['dtype']).name} input; edgepose needs uint8 ({hint})"
        )
    shapes = [tuple(int(d) for d in out["shape"]) for out in backend.outputs]
    channels = sorted(s[-1] for s in shapes if len(s) == 4)
    grids = {s[1:3] for s in shapes if len(s) == 4}
    if len(shapes) != 3 or channels != sorted(OUTPUT_CHANNELS.values()) or len(grids) != 1:
        raise ModelError(
            f"{model} outputs {shapes}; a prepared PoseNet outputs heatmaps, short and mid offsets "
            f"[1, H, W, 17/34/64] ({hint})"
        )
    (grid,) = grids
    strides = {(size - 1) / max(1, cells - 1) for size, cells in zip(shape[1:3], grid, strict=True)}
    if len(strides) != 1 or not next(iter(strides)).is_integer() or min(grid) < 2:
        raise ModelError(f"{model}: output grid {grid} does not fit input {shape[1:3]} at a whole stride ({hint})")


def model_stride(backend: Backend) -> int:
    """Return the input pixels per output cell of a checked PoseNet model (16 for Coral's)."""
    height = backend.input_shape(0)[1]
    grid = int(next(out["shape"][1] for out in backend.outputs))
    return (height - 1) // (grid - 1)


def output_order(backend: Backend) -> tuple[int, int, int]:
    """Return the output indices of the heatmaps, short offsets and mid offsets of a checked PoseNet model."""
    by_channels = {int(out["shape"][-1]): i for i, out in enumerate(backend.outputs)}
    return (
        by_channels[OUTPUT_CHANNELS["heatmaps"]],
        by_channels[OUTPUT_CHANNELS["short"]],
        by_channels[OUTPUT_CHANNELS["mid"]],
    )


def letterbox_for(width: int, height: int, input_width: int, input_height: int) -> Letterbox:
    """Fit a ``width``×``height`` frame into the model input keeping its aspect ratio, centred.

    For Coral's 640×480 test image in the 641×481 input the frame fills the input (the plain resize
    Coral's reference used); other shapes get black bands instead of being stretched.
    """
    scale = min(input_width / width, input_height / height)
    new_width = min(input_width, max(1, round(width * scale)))
    new_height = min(input_height, max(1, round(height * scale)))
    return Letterbox(
        (input_width - new_width) // 2, (input_height - new_height) // 2, new_width / width, new_height / height
    )


def preprocess_into(frame_bgr: np.ndarray, box: Letterbox, dst: np.ndarray) -> None:
    """Resize a BGR frame into the model input as RGB, inside black bands (see :func:`letterbox_for`).

    Args:
        frame_bgr: ``(H, W, 3)`` uint8 BGR.
        box: Where the frame goes in the input.
        dst: The model input, ``(input_height, input_width, 3)`` uint8 (the interpreter's tensor).
    """
    height, width = frame_bgr.shape[:2]
    new_width, new_height = round(width * box.scale_x), round(height * box.scale_y)
    shrinking = new_width < width or new_height < height
    resized = cv2.resize(
        frame_bgr, (new_width, new_height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )
    bottom, right = box.top + new_height, box.left + new_width
    dst[: box.top] = 0
    dst[bottom:] = 0
    dst[box.top : bottom, : box.left] = 0
    dst[box.top : bottom, right:] = 0
    dst[box.top : bottom, box.left : right] = resized[:, :, ::-1]


def to_source(keypoints: np.ndarray, box: Letterbox) -> np.ndarray:
    """Map ``(N, 3)`` keypoints from model-input pixels to source pixels (scores unchanged).

    Pixel centres are aligned the way ``cv2.resize`` aligns them.
    """
    out = keypoints.astype(np.float32, copy=True)
    out[:, 0] = (keypoints[:, 0] - box.left + 0.5) / box.scale_x - 0.5
    out[:, 1] = (keypoints[:, 1] - box.top + 0.5) / box.scale_y - 0.5
    return out


def dequantize(raw: np.ndarray, quantization: tuple[float, int]) -> np.ndarray:
    """Return ``(raw - zero_point) * scale`` as float32, without the batch dimension.

    A float output (scale 0) is returned as it is.
    """
    scale, zero_point = float(quantization[0]), int(quantization[1])
    values = raw[0] if raw.ndim == 4 else raw
    if scale == 0.0:
        return values.astype(np.float32)
    result: np.ndarray = (values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
    return result


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
