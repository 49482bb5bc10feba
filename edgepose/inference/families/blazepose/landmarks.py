"""BlazePose's landmark model (``pose_landmark_full.tflite``) as pure functions over numpy arrays.

The parameters are those of MediaPipe's ``pose_landmark_by_roi_cpu.pbtxt`` and
``tensors_to_pose_landmarks_and_segmentation.pbtxt``: a 256×256 input in [0, 1] cut from the rotated
ROI (edge pixels repeated outside the frame); 39 landmarks × (x, y, z, visibility, presence) in input
pixels, visibility and presence as logits (sigmoid); x and y refined from the 64×64 heatmap (7×7
window, only where the heatmap is at least 0.5 confident); a pose flag (already a probability) that
must reach 0.5. Landmarks 33 and 34 are auxiliary: the next frame's ROI is aligned on them
(``pose_landmarks_to_roi.pbtxt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgepose.errors import ModelError
from edgepose.inference.families.blazepose.roi import RotatedRoi, roi_from_alignment, to_frame

if TYPE_CHECKING:
    from edgepose.inference.runtime.backend import Backend

#: The landmark model's input side in pixels.
LANDMARK_SIZE = 256
#: 33 body landmarks, then 6 auxiliary ones (33: body centre, 34: size/rotation point, …).
NUM_LANDMARKS = 39
NUM_BODY_LANDMARKS = 33
VALUES_PER_LANDMARK = 5
HEATMAP_SIZE = 64
#: Heatmap refinement window (``RefineLandmarksFromHeatmapCalculator.kernel_size``) …
HEATMAP_KERNEL = 7
#: … applied where the window's peak confidence reaches this.
HEATMAP_MIN_CONFIDENCE = 0.5
#: MediaPipe's ``min_tracking_confidence`` default: below this pose flag there is no pose.
MIN_POSE_PRESENCE = 0.5
#: Auxiliary landmarks the tracking ROI is aligned on.
AUX_CENTER = 33
AUX_SCALE = 34

#: The 17 COCO keypoints (:data:`edgepose.pose.KEYPOINT_NAMES` order) as BlazePose landmark indices.
COCO_FROM_BLAZEPOSE: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


@dataclass(frozen=True)
class LandmarkOutputs:
    """Positions of the landmark model's outputs, found by shape."""

    landmarks: int
    pose_flag: int
    heatmap: int


def sigmoid(values: np.ndarray) -> np.ndarray:
    """Return the logistic function of ``values`` (float64 inside, no overflow warnings)."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(values.astype(np.float64), -80.0, 80.0))))


def refine_from_heatmap(xy: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """Move each landmark to the confidence-weighted mean of its heatmap window, as MediaPipe does.

    A landmark whose heatmap column falls outside the map, or whose window peaks below
    :data:`HEATMAP_MIN_CONFIDENCE`, keeps its regressed position. The window shrinks at the map's edges.

    Args:
        xy: ``(39, 2)`` x, y normalised to the model input.
        heatmap: ``(64, 64, 39)`` logits.

    Returns:
        The refined ``(39, 2)`` positions (a new array).
    """
    height, width = heatmap.shape[:2]
    out = xy.astype(np.float64)
    half = (HEATMAP_KERNEL - 1) // 2
    for index in range(min(len(xy), heatmap.shape[2])):
        col = int(xy[index, 0] * width)  # truncation toward zero, as in the C++ original
        row = int(xy[index, 1] * height)
        if col < 0 or col >= width or row < 0:
            continue
        r0, r1 = max(0, row - half), min(height, row + half + 1)
        c0, c1 = max(0, col - half), min(width, col + half + 1)
        if r1 <= r0 or c1 <= c0:
            continue
        confidence = sigmoid(heatmap[r0:r1, c0:c1, index])
        total = float(confidence.sum())
        if confidence.max() < HEATMAP_MIN_CONFIDENCE or total <= 0.0:
            continue
        rows, cols = np.mgrid[r0:r1, c0:c1]
        out[index, 0] = float((cols * confidence).sum()) / width / total
        out[index, 1] = float((rows * confidence).sum()) / height / total
    return out


def decode_landmarks(raw: np.ndarray, heatmap: np.ndarray | None, roi: RotatedRoi) -> np.ndarray:
    """Decode the landmark model's outputs into frame pixels.

    Args:
        raw: ``[1, 195]``: 39 × (x, y, z in input pixels, visibility logit, presence logit).
        heatmap: ``[1, 64, 64, 39]`` logits, or ``None`` to skip the refinement.
        roi: The region the input was cut from.

    Returns:
        ``(39, 5)`` float32: x, y in frame pixels, z in frame pixels (same scale as x; smaller is nearer
        the camera, 0 at the hips), visibility and presence (0..1).
    """
    values = np.asarray(raw, dtype=np.float32).reshape(NUM_LANDMARKS, VALUES_PER_LANDMARK)
    xy = values[:, :2] / LANDMARK_SIZE
    if heatmap is not None:
        xy = refine_from_heatmap(xy, np.asarray(heatmap).reshape(HEATMAP_SIZE, HEATMAP_SIZE, -1))
    out = np.empty((NUM_LANDMARKS, VALUES_PER_LANDMARK), dtype=np.float32)
    out[:, :2] = to_frame(xy, roi)
    out[:, 2] = values[:, 2] / LANDMARK_SIZE * roi.size
    out[:, 3] = sigmoid(values[:, 3])
    out[:, 4] = sigmoid(values[:, 4])
    return out


def tracking_roi(landmarks: np.ndarray) -> RotatedRoi:
    """Return the next frame's region, aligned on the auxiliary landmarks 33 (centre) and 34 (scale)."""
    return roi_from_alignment(landmarks[AUX_CENTER, :2], landmarks[AUX_SCALE, :2])


def coco_keypoints(landmarks: np.ndarray) -> np.ndarray:
    """Derive the 17 COCO keypoints from BlazePose's landmarks.

    Args:
        landmarks: ``(≥33, ≥4)``: x, y, z, visibility, ….

    Returns:
        ``(17, 3)`` float32: x, y and the landmark's visibility as the score.
    """
    picked = landmarks[list(COCO_FROM_BLAZEPOSE)]
    return np.ascontiguousarray(picked[:, [0, 1, 3]], dtype=np.float32)


def landmark_outputs(backend: Backend) -> LandmarkOutputs:
    """Find the landmark model's outputs by shape, checking the model on the way.

    Raises:
        ModelError: Not a BlazePose landmark model.
    """
    model = backend.info.model
    hint = "(use --model blazepose with pose_landmark_full.tflite from edgepose models fetch blazepose)"
    shape = backend.input_shape(0)
    dtype = np.dtype(backend.inputs[0]["dtype"])
    if len(backend.inputs) != 1 or shape != (1, LANDMARK_SIZE, LANDMARK_SIZE, 3) or dtype != np.float32:
        raise ModelError(
            f"{model} takes input {shape} {dtype.name}; BlazePose's landmark model takes "
            f"(1, {LANDMARK_SIZE}, {LANDMARK_SIZE}, 3) float32 {hint}"
        )
    shapes = [tuple(int(d) for d in out["shape"]) for out in backend.outputs]
    wanted = (
        (1, NUM_LANDMARKS * VALUES_PER_LANDMARK),
        (1, 1),
        (1, HEATMAP_SIZE, HEATMAP_SIZE, NUM_LANDMARKS),
    )
    try:
        return LandmarkOutputs(*(shapes.index(w) for w in wanted))
    except ValueError:
        raise ModelError(
            f"{model} outputs {shapes}; BlazePose's landmark model outputs {', '.join(map(str, wanted))} "
            f"among others {hint}"
        ) from None


def check_landmark_model(backend: Backend) -> None:
    """:data:`~edgepose.inference.runtime.backend.ModelCheck` for the landmark model (see :func:`landmark_outputs`)."""
    landmark_outputs(backend)
