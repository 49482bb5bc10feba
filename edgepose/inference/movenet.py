"""MoveNet single-pose pre- and post-processing as pure functions over numpy arrays.

Frames inside edgepose are BGR (OpenCV's and picamera2's ``RGB888`` memory order); the model
wants RGB. :func:`preprocess_into` crops, pads, resizes and swaps channels in two OpenCV calls,
writing straight into the interpreter's input tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropBox:
    """A square-in-pixels region of the source frame, in source pixels; may extend past the edges.

    Attributes:
        x: Left edge (continuous pixel coordinate, may be negative).
        y: Top edge.
        width: Width in pixels.
        height: Height in pixels.
    """

    x: float
    y: float
    width: float
    height: float


def full_frame_box(width: int, height: int) -> CropBox:
    """Return the square box that holds the whole frame, centred, padding the short side.

    Args:
        width: Frame width in pixels.
        height: Frame height in pixels.

    Returns:
        The aspect-preserving letterbox region MoveNet starts from.
    """
    side = float(max(width, height))
    return CropBox((width - side) / 2.0, (height - side) / 2.0, side, side)


def crop_matrix(box: CropBox, size: int) -> np.ndarray:
    """Return the 2×3 affine matrix that maps source pixels into a ``size``×``size`` model input.

    Pixel centres are aligned the way ``cv2.resize`` aligns them (half-pixel offsets).
    """
    sx = size / box.width
    sy = size / box.height
    return np.array(
        [[sx, 0.0, (0.5 - box.x) * sx - 0.5], [0.0, sy, (0.5 - box.y) * sy - 0.5]],
        dtype=np.float64,
    )


def preprocess_into(frame_bgr: np.ndarray, box: CropBox, dst: np.ndarray) -> None:
    """Crop ``box`` out of a BGR frame, resize it to ``dst`` and write it there as RGB.

    Areas of the box outside the frame are filled with black, so the aspect ratio is kept.

    Args:
        frame_bgr: Source frame, ``(H, W, 3)`` uint8, BGR order.
        box: Region to crop, in source pixels.
        dst: The model input, ``(S, S, 3)`` uint8, C-contiguous (the interpreter's tensor).
    """
    size = dst.shape[0]
    matrix = crop_matrix(box, size)
    # Downscaling by more than 2× with bilinear sampling aliases; pre-shrink with area averaging.
    scale = size / box.width
    if scale < 0.5:
        factor = int(1.0 / scale) // 2 * 2 or 1
        if factor >= 2:
            h, w = frame_bgr.shape[:2]
            small = cv2.resize(frame_bgr, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
            fx = (w // factor) / w
            fy = (h // factor) / h
            box = CropBox(box.x * fx, box.y * fy, box.width * fx, box.height * fy)
            matrix = crop_matrix(box, size)
            frame_bgr = small
    cv2.warpAffine(
        frame_bgr,
        matrix,
        (size, size),
        dst=dst,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    cv2.cvtColor(dst, cv2.COLOR_BGR2RGB, dst=dst)


def decode(output: np.ndarray, box: CropBox) -> np.ndarray:
    """Decode MoveNet's ``[1, 1, 17, 3]`` output (y, x, score normalised to the crop) to source pixels.

    Args:
        output: The raw model output.
        box: The region the input was cropped from.

    Returns:
        A ``(17, 3)`` float32 array of x, y in source pixels and score.
    """
    raw = np.asarray(output, dtype=np.float32).reshape(17, 3)
    keypoints = np.empty((17, 3), dtype=np.float32)
    keypoints[:, 0] = box.x + raw[:, 1] * box.width
    keypoints[:, 1] = box.y + raw[:, 0] * box.height
    keypoints[:, 2] = raw[:, 2]
    return keypoints


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Normalise a decoded image to 3-channel 8-bit BGR (drops alpha, expands grey).

    Args:
        image: An image as OpenCV decodes it: grey, BGR or BGRA; 8 or 16 bit.

    Returns:
        A ``(H, W, 3)`` uint8 BGR image.
    """
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / float(np.iinfo(image.dtype).max))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image
