"""BlazePose's person detector (``pose_detection.tflite``) as pure functions over numpy arrays.

The parameters are those of MediaPipe's ``pose_detection_cpu.pbtxt``: a 224×224 letterboxed input in
[-1, 1]; 2254 SSD anchors over strides 8, 16, 32, 32, 32 (two per cell, fixed size); per anchor a box
and 4 keypoints as offsets in input pixels (x before y); a score logit, clipped to ±100 and squashed
with a sigmoid; weighted non-maximum suppression at IoU 0.3. Of the 4 keypoints the first two align
the full body: 0 is the mid-hip centre, 1 encodes the body's size and rotation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgepose.errors import ModelError
from edgepose.inference.families.blazepose.roi import RotatedRoi, roi_from_alignment

if TYPE_CHECKING:
    from edgepose.inference.runtime.backend import Backend

#: The detector's input side in pixels.
DETECTOR_SIZE = 224
#: Values per anchor: box (x, y, w, h) then 4 keypoints (x, y).
NUM_COORDS = 12
NUM_KEYPOINTS = 4
#: MediaPipe's ``min_detection_confidence`` default (the Python solution overrides the graph's 0.2 with it).
MIN_DETECTION_SCORE = 0.5
#: Boxes overlapping the best one by more than this IoU are merged into it.
NMS_IOU = 0.3
#: Logits are clipped to ± this before the sigmoid.
SCORE_CLIP = 100.0


@dataclass(frozen=True)
class AnchorOptions:
    """The options of MediaPipe's ``SsdAnchorsCalculator`` that this family uses."""

    input_size: int
    min_scale: float
    max_scale: float
    strides: tuple[int, ...]
    aspect_ratios: tuple[float, ...] = (1.0,)
    anchor_offset: float = 0.5
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True


#: ``pose_detection_cpu.pbtxt``'s anchors.
POSE_DETECTOR_ANCHORS = AnchorOptions(
    input_size=DETECTOR_SIZE, min_scale=0.1484375, max_scale=0.75, strides=(8, 16, 32, 32, 32)
)


def _scale(options: AnchorOptions, index: int) -> float:
    count = len(options.strides)
    if count == 1:
        return (options.min_scale + options.max_scale) / 2.0
    return options.min_scale + (options.max_scale - options.min_scale) * index / (count - 1.0)


def ssd_anchors(options: AnchorOptions = POSE_DETECTOR_ANCHORS) -> np.ndarray:
    """Generate SSD anchors the way MediaPipe's ``SsdAnchorsCalculator`` does.

    Consecutive layers with the same stride share one grid; each cell gets one anchor per aspect ratio
    and layer, plus one interpolated-scale anchor per layer.

    Returns:
        ``(N, 4)`` float32: x centre, y centre, width, height, normalised to the input.
    """
    rows: list[np.ndarray] = []
    layer = 0
    strides = options.strides
    while layer < len(strides):
        sizes: list[tuple[float, float]] = []
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            scale = _scale(options, last)
            for ratio in options.aspect_ratios:
                sizes.append((scale * math.sqrt(ratio), scale / math.sqrt(ratio)))
            if options.interpolated_scale_aspect_ratio > 0.0:
                following = 1.0 if last == len(strides) - 1 else _scale(options, last + 1)
                mean = math.sqrt(scale * following)
                ratio = options.interpolated_scale_aspect_ratio
                sizes.append((mean * math.sqrt(ratio), mean / math.sqrt(ratio)))
            last += 1
        cells = math.ceil(options.input_size / strides[layer])
        grid = (np.arange(cells, dtype=np.float64) + options.anchor_offset) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        per_cell = len(sizes)
        layer_rows = np.empty((cells, cells, per_cell, 4), dtype=np.float64)
        layer_rows[..., 0] = xs[..., None]
        layer_rows[..., 1] = ys[..., None]
        if options.fixed_anchor_size:
            layer_rows[..., 2:] = 1.0
        else:
            layer_rows[..., 2] = np.array([w for w, _ in sizes])
            layer_rows[..., 3] = np.array([h for _, h in sizes])
        rows.append(layer_rows.reshape(-1, 4))
        layer = last
    return np.concatenate(rows).astype(np.float32)


@dataclass(frozen=True)
class Detection:
    """One detected person, normalised to the detector's (letterboxed) input.

    Attributes:
        score: Sigmoid of the logit, 0..1.
        box: ``(x0, y0, x1, y1)`` of the detector's box (around the face).
        keypoints: ``(4, 2)`` x, y: mid-hip, full-body size/rotation, mid-shoulder, upper-body size/rotation.
    """

    score: float
    box: tuple[float, float, float, float]
    keypoints: np.ndarray


def decode_detections(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    min_score: float = MIN_DETECTION_SCORE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode the anchors whose score passes ``min_score``.

    Args:
        raw_boxes: ``[1, N, 12]`` regressors in input pixels relative to each anchor.
        raw_scores: ``[1, N, 1]`` logits.
        anchors: ``(N, 4)`` from :func:`ssd_anchors`.
        min_score: Lowest score kept.

    Returns:
        ``scores (M,)``, ``boxes (M, 4)`` as x0, y0, x1, y1 and ``keypoints (M, 4, 2)``, all normalised to
        the input, in anchor order.
    """
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores >= min_score)
    raw = raw_boxes.reshape(-1, NUM_COORDS)[keep].astype(np.float64)
    anchor = anchors[keep].astype(np.float64)
    ax, ay, aw, ah = anchor[:, 0:1], anchor[:, 1:2], anchor[:, 2:3], anchor[:, 3:4]
    size = float(DETECTOR_SIZE)
    cx = raw[:, 0:1] / size * aw + ax
    cy = raw[:, 1:2] / size * ah + ay
    w = raw[:, 2:3] / size * aw
    h = raw[:, 3:4] / size * ah
    boxes = np.hstack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    points = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2)
    keypoints = np.empty_like(points)
    keypoints[..., 0] = points[..., 0] / size * aw + ax
    keypoints[..., 1] = points[..., 1] / size * ah + ay
    return scores[keep], boxes, keypoints


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0.0, None) * np.clip(y1 - y0, 0.0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0.0, inter / np.where(union > 0.0, union, 1.0), 0.0)


def weighted_nms(
    scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, iou_threshold: float = NMS_IOU
) -> list[Detection]:
    """MediaPipe's weighted non-maximum suppression.

    The best remaining detection absorbs every remaining one overlapping it by more than
    ``iou_threshold`` (itself included): box and keypoints become their score-weighted mean, the score
    stays the best one's.

    Returns:
        The merged detections, best first.
    """
    order = np.argsort(-scores, kind="stable")
    out: list[Detection] = []
    while order.size:
        best = order[0]
        overlap = _iou(boxes[best], boxes[order]) > iou_threshold
        overlap[0] = True  # a degenerate (zero-area) box still absorbs itself
        group = order[overlap]
        weights = scores[group][:, None]
        total = float(weights.sum())
        box = (boxes[group] * weights).sum(axis=0) / total
        points = (keypoints[group] * weights[:, :, None]).sum(axis=0) / total
        x0, y0, x1, y1 = (float(v) for v in box)
        out.append(Detection(float(scores[best]), (x0, y0, x1, y1), points.astype(np.float32)))
        order = order[~overlap]
    return out


def detections_from_outputs(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, min_score: float = MIN_DETECTION_SCORE
) -> list[Detection]:
    """Decode and merge the detector's outputs: the people found, best first."""
    return weighted_nms(*decode_detections(raw_boxes, raw_scores, anchors, min_score))


def detection_roi(detection: Detection, letterbox: RotatedRoi) -> RotatedRoi:
    """Return the landmark model's region for a detection made on the ``letterbox`` view of the frame.

    Args:
        detection: Normalised to the detector input.
        letterbox: The region the detector saw (see :func:`.letterbox_roi`).
    """
    points = letterbox_to_frame(detection.keypoints[:2], letterbox)
    return roi_from_alignment(points[0], points[1])


def letterbox_to_frame(points: np.ndarray, letterbox: RotatedRoi) -> np.ndarray:
    """Map ``(N, 2)`` points normalised to the letterboxed input into frame pixels (removing the padding)."""
    out = np.empty_like(points, dtype=np.float32)
    out[:, 0] = letterbox.cx + (points[:, 0] - 0.5) * letterbox.size
    out[:, 1] = letterbox.cy + (points[:, 1] - 0.5) * letterbox.size
    return out


def detector_outputs(backend: Backend) -> tuple[int, int]:
    """Find the detector's outputs by shape, checking the model on the way.

    Returns:
        The output positions of the ``[1, N, 12]`` regressors and the ``[1, N, 1]`` scores.

    Raises:
        ModelError: Not BlazePose's pose detector.
    """
    model = backend.info.model
    hint = "(use --model blazepose with pose_detection.tflite from edgepose models fetch blazepose)"
    shape = backend.input_shape(0)
    dtype = np.dtype(backend.inputs[0]["dtype"])
    if len(backend.inputs) != 1 or shape != (1, DETECTOR_SIZE, DETECTOR_SIZE, 3) or dtype != np.float32:
        raise ModelError(
            f"{model} takes input {shape} {dtype.name}; BlazePose's detector takes "
            f"(1, {DETECTOR_SIZE}, {DETECTOR_SIZE}, 3) float32 {hint}"
        )
    anchors = len(ssd_anchors())
    shapes = [tuple(int(d) for d in out["shape"]) for out in backend.outputs]
    try:
        return shapes.index((1, anchors, NUM_COORDS)), shapes.index((1, anchors, 1))
    except ValueError:
        raise ModelError(
            f"{model} outputs {shapes}; BlazePose's detector outputs (1, {anchors}, {NUM_COORDS}) and "
            f"(1, {anchors}, 1) {hint}"
        ) from None


def check_detector(backend: Backend) -> None:
    """:data:`~edgepose.inference.runtime.backend.ModelCheck` for the detector (see :func:`detector_outputs`)."""
    detector_outputs(backend)
