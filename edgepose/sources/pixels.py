"""Normalising decoded images to the pipeline's pixel format: 3-channel 8-bit BGR (shared by the sources)."""

from __future__ import annotations

import cv2
import numpy as np


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
