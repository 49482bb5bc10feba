"""Test-time augmentation for still images: horizontal-flip averaging.

The model runs on the crop and on its mirror image; the mirrored prediction is mapped back (x
mirrored, left and right keypoints swapped) and both are averaged, each position weighted by its
keypoint's score. Pure functions over numpy arrays.
"""

from __future__ import annotations

import numpy as np

from edgepose.pose import KEYPOINT_INDEX, KEYPOINT_NAMES


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


#: For each keypoint, the index of its mirror image's keypoint (left ↔ right; the nose stays).
FLIP_INDEX = np.array([KEYPOINT_INDEX[_mirror_name(n)] for n in KEYPOINT_NAMES], dtype=np.intp)


def mirror_input(tensor: np.ndarray) -> None:
    """Mirror a ``(H, W, C)`` model input left to right, in place."""
    tensor[:] = tensor[:, ::-1].copy()


def unflip(raw: np.ndarray) -> np.ndarray:
    """Map MoveNet's output on a mirrored input back to the original input.

    Args:
        raw: ``(17, 3)`` y, x, score normalised to the (mirrored) input, MoveNet's order.

    Returns:
        ``(17, 3)`` y, x, score for the unmirrored input: x becomes ``1 - x`` and left/right swap.
    """
    back: np.ndarray = np.asarray(raw, dtype=np.float32).reshape(17, 3)[FLIP_INDEX].copy()
    back[:, 1] = 1.0 - back[:, 1]
    return back


def average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Average two ``(17, 3)`` predictions: each position weighted by its score, scores by the plain mean.

    The positions may be in any order (x, y or y, x); the score is the last column. Where both scores
    are 0 the positions are averaged equally.
    """
    a = np.asarray(a, dtype=np.float32).reshape(17, 3)
    b = np.asarray(b, dtype=np.float32).reshape(17, 3)
    wa, wb = a[:, 2:3], b[:, 2:3]
    total = wa + wb
    share = np.divide(wa, total, out=np.full_like(total, 0.5), where=total > 0)
    out = np.empty((17, 3), dtype=np.float32)
    out[:, :2] = share * a[:, :2] + (1.0 - share) * b[:, :2]
    out[:, 2] = (a[:, 2] + b[:, 2]) / 2.0
    return out
