"""One grey level of difference: the shared photos, crops of them, and every value moved up or down by one."""

from __future__ import annotations

import numpy as np

#: The shared photos whole and two crops of each (left, top, right, bottom as fractions of the photo).
VIEWS = {"whole": (0.0, 0.0, 1.0, 1.0), "crop-top": (0.08, 0.0, 1.0, 0.85), "crop-side": (0.1, 0.03, 1.0, 1.0)}


def perturbed(image: np.ndarray, seed: int) -> np.ndarray:
    """The image with every value moved one grey level up or down at random (clipped to 0-255)."""
    steps = np.random.default_rng(seed).choice(np.array([-1, 1], dtype=np.int16), image.shape)
    return np.clip(image.astype(np.int16) + steps, 0, 255).astype(np.uint8)


def view(image: np.ndarray, fractions: tuple[float, float, float, float]) -> np.ndarray:
    """The part of ``image`` between the given fractions of its width and height, contiguous."""
    height, width = image.shape[:2]
    left, top, right, bottom = fractions
    return np.ascontiguousarray(image[int(top * height) : int(bottom * height), int(left * width) : int(right * width)])


def largest_move(a: np.ndarray, b: np.ndarray) -> float:
    """The largest distance in pixels between the same keypoint of two ``(17, 3)`` predictions."""
    return float(np.hypot(*(a[:, :2] - b[:, :2]).T).max())
