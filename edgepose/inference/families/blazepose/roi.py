"""BlazePose's rotated square regions: from two alignment points, and the warp into a model input.

Both BlazePose stages look at the frame through a :class:`RotatedRoi`: the detector through the
letterboxed whole frame (rotation 0), the landmark model through a square turned so the body stands
upright. A region maps a model input of ``N``×``N`` pixels onto the frame as MediaPipe's
``ImageToTensorCalculator`` does: the region's corners go to the input's corners ``(0, 0)`` and
``(N, N)``, and a point ``(u, v)`` normalised to the input lands at
``center + R(rotation) · ((u - ½)·size, (v - ½)·size)`` in frame pixels. Decoding uses the same map, so
the two stay consistent (as in MediaPipe, whose references the tests compare against).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: MediaPipe's full-body ROI margin around the alignment circle (``RectTransformationCalculator`` scale).
ROI_SCALE = 1.25
#: The alignment vector (centre → scale point) points straight up in an upright ROI.
TARGET_ANGLE = math.pi / 2


@dataclass(frozen=True)
class RotatedRoi:
    """A square region of a frame, in frame pixels, turned about its centre.

    Attributes:
        cx: Centre x.
        cy: Centre y.
        size: Side length (the region is square in pixels, so the input keeps the aspect ratio).
        rotation: Clockwise turn in radians (image axes, y down), in ``[-π, π)``.
    """

    cx: float
    cy: float
    size: float
    rotation: float = 0.0


def normalize_radians(angle: float) -> float:
    """Wrap an angle into ``[-π, π)``."""
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def letterbox_roi(width: int, height: int) -> RotatedRoi:
    """Return the square around the whole frame, centred: the short side gets padded (the detector's view)."""
    return RotatedRoi(width / 2.0, height / 2.0, float(max(width, height)), 0.0)


def roi_from_alignment(center: np.ndarray, scale_point: np.ndarray, scale: float = ROI_SCALE) -> RotatedRoi:
    """Build the ROI from two alignment points in frame pixels.

    The centre is the first point; the side is twice the distance between them, times ``scale``; the
    rotation turns the centre → scale-point vector to point up (MediaPipe's ``AlignmentPointsRectsCalculator``
    with a 90° target angle, then ``RectTransformationCalculator`` with ``square_long``).

    Args:
        center: ``(x, y)``: the mid-hip point (detector keypoint 0, or auxiliary landmark 33).
        scale_point: ``(x, y)``: the point encoding size and rotation (keypoint 1, or landmark 34).
        scale: Margin factor.
    """
    x0, y0 = float(center[0]), float(center[1])
    x1, y1 = float(scale_point[0]), float(scale_point[1])
    side = 2.0 * math.hypot(x1 - x0, y1 - y0) * scale
    rotation = normalize_radians(TARGET_ANGLE - math.atan2(-(y1 - y0), x1 - x0))
    return RotatedRoi(x0, y0, side, rotation)


def input_to_frame_matrix(roi: RotatedRoi, size: int) -> np.ndarray:
    """Return the 2×3 affine map from model-input pixels (``0..size``) to frame pixels."""
    cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
    k = roi.size / size
    half = roi.size / 2.0
    return np.array(
        [
            [k * cos, -k * sin, roi.cx - half * cos + half * sin],
            [k * sin, k * cos, roi.cy - half * sin - half * cos],
        ],
        dtype=np.float64,
    )


def to_frame(points: np.ndarray, roi: RotatedRoi) -> np.ndarray:
    """Map ``(N, 2)`` points normalised to the model input (0..1) into frame pixels."""
    cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
    u = (points[:, 0] - 0.5) * roi.size
    v = (points[:, 1] - 0.5) * roi.size
    out = np.empty((len(points), 2), dtype=np.float32)
    out[:, 0] = roi.cx + cos * u - sin * v
    out[:, 1] = roi.cy + sin * u + cos * v
    return out


def warp_into(
    frame_bgr: np.ndarray,
    roi: RotatedRoi,
    dst: np.ndarray,
    value_range: tuple[float, float],
    replicate_border: bool,
) -> None:
    """Sample ``roi`` of a BGR frame into a float model input as RGB scaled to ``value_range``.

    Bilinear sampling on the 8-bit frame, then one scale-and-offset to float, as MediaPipe's CPU path does.

    Args:
        frame_bgr: ``(H, W, 3)`` uint8, BGR.
        roi: The region to sample.
        dst: The model input, ``(N, N, 3)`` float32 (the interpreter's tensor, written in place).
        value_range: What 0 and 255 become: ``(-1, 1)`` for the detector, ``(0, 1)`` for the landmark model.
        replicate_border: Repeat the edge pixels outside the frame (landmarks) instead of black (detector).
    """
    size = dst.shape[0]
    matrix = input_to_frame_matrix(roi, size)
    warped = cv2.warpAffine(
        frame_bgr,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE if replicate_border else cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    rgb = cv2.cvtColor(warped, cv2.COLOR_BGR2RGB)
    low, high = value_range
    np.multiply(rgb, np.float32((high - low) / 255.0), out=dst)
    dst += np.float32(low)
