"""Normalising decoded images to the pipeline's pixel format: 3-channel 8-bit BGR (shared by the sources)."""

from __future__ import annotations

import cv2
import numpy as np


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Normalise a decoded image to 3-channel 8-bit BGR (drops alpha, expands grey).

    Args:
        image: An image as OpenCV decodes it: grey, BGR or BGRA; 8, 16 or 32 bit integers, or floating
            point (a float TIFF), see :func:`_to_uint8`.

    Returns:
        A ``(H, W, 3)`` uint8 BGR image.
    """
    if image.dtype != np.uint8:
        image = _to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale pixels to 0..255: integers by their type's maximum, floating point ones from 0..1.

    Floating point pixels are read as OpenCV does, 0 black and 1 white; an image whose pixels go beyond 1
    is scaled so that its brightest one is white. Negative, NaN and infinite pixels become black.
    """
    if np.issubdtype(image.dtype, np.integer):
        if np.issubdtype(image.dtype, np.signedinteger):
            image = np.maximum(image, 0)
        return cv2.convertScaleAbs(image, alpha=255.0 / float(np.iinfo(image.dtype).max))
    pixels = np.nan_to_num(image.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    np.maximum(pixels, 0.0, out=pixels)
    brightest = float(pixels.max(initial=0.0))
    return cv2.convertScaleAbs(pixels, alpha=255.0 / max(1.0, brightest))
