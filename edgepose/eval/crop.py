"""One square crop per annotated person, the way TFLite's MoveNet accuracy table was measured."""

from __future__ import annotations

import math

import numpy as np

#: The default margin: the crop's side is the box's longer side enlarged by this fraction.
DEFAULT_MARGIN = 0.25


def square_around(bbox: tuple[float, float, float, float], margin: float) -> tuple[int, int, int]:
    """Return the whole-pixel square ``(x0, y0, side)`` centred on a box, its longer side enlarged by ``margin``.

    Args:
        bbox: ``(x, y, w, h)`` in image pixels.
        margin: Fraction to enlarge by (0.25 → the side is 1.25 × the box's longer side).
    """
    x, y, w, h = bbox
    side = max(1, math.ceil(max(w, h) * (1.0 + margin)))
    return math.floor(x + w / 2.0 - side / 2.0), math.floor(y + h / 2.0 - side / 2.0), side


def cut(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """Return the ``side``×``side`` part of ``image`` at ``(x0, y0)``, black where it lies outside the image."""
    height, width = image.shape[:2]
    out = np.zeros((side, side, *image.shape[2:]), dtype=image.dtype)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(width, x0 + side), min(height, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def person_crop(
    image: np.ndarray, bbox: tuple[float, float, float, float], margin: float = DEFAULT_MARGIN
) -> tuple[np.ndarray, tuple[int, int]]:
    """Cut the square crop around one person's box.

    Returns:
        The crop (contiguous, black outside the image) and its top-left corner in image pixels, to add
        to keypoints found in the crop.
    """
    x0, y0, side = square_around(bbox, margin)
    return np.ascontiguousarray(cut(image, x0, y0, side)), (x0, y0)
