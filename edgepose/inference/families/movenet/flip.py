"""Test-time augmentation for still images: sub-cell shifts and horizontal flips, combined by score.

A still image's crop is run at a few offsets smaller than one cell of MoveNet's output grid
(:func:`shifted`), each optionally with its mirror image (:func:`mirror_input`, mapped back with
:func:`unflip`); :func:`combine` averages all passes, each position weighted by its keypoint's score
squared. One pass of the INT8 model moves a keypoint by up to about a cell when the input changes by one
grey level (measured: 12-18 px on the shared photos under a ±1 grey-level perturbation; up to 75 px
where a joint has two likely places); every pass shifted by a different fraction of a cell errs
differently, so the combination is steadier than any one of them and than a choice between them.
Pure functions over numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgepose.inference.families.movenet.model import CropBox
from edgepose.pose import KEYPOINT_INDEX, KEYPOINT_NAMES

#: MoveNet's output stride: one cell of its keypoint grid is this many model-input pixels.
OUTPUT_STRIDE = 4
#: The offsets of the still path's passes, in output cells (x, y): a centred rank-1 lattice of three
#: points, one per third of a cell along each axis. Measured on the shared photos and 10 crops of them
#: under ±1 grey-level noise, largest keypoint move: 1 offset 16-29 px, 2 offsets 11-20, 3 offsets 9-10,
#: 5 offsets 8-9 (each with its mirror image; benchmarks/STILL_STABILITY.md).
SHIFTS: tuple[tuple[float, float], ...] = ((-1 / 3, -1 / 3), (0.0, 1 / 3), (1 / 3, 0.0))
#: Passes are weighted by their keypoint's score to this power: a pass that lost a joint (its score
#: drops to about 0.2 where the others say 0.9) barely moves the combination (power 1: 10-19 px largest
#: move on the measurement above, power 2: 9-10 px).
SCORE_POWER = 2.0


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


def shifted(box: CropBox, size: int) -> tuple[CropBox, ...]:
    """Return ``box`` moved by each of :data:`SHIFTS` (fractions of an output cell of a ``size`` px input)."""
    cell_x = box.width * OUTPUT_STRIDE / size
    cell_y = box.height * OUTPUT_STRIDE / size
    return tuple(CropBox(box.x + dx * cell_x, box.y + dy * cell_y, box.width, box.height) for dx, dy in SHIFTS)


def combine(passes: Sequence[np.ndarray]) -> np.ndarray:
    """Combine ``(17, 3)`` predictions: positions weighted by score ** :data:`SCORE_POWER`, scores by their mean.

    The positions may be in any order (x, y or y, x); the score is the last column. Where every score
    is 0 the positions are averaged equally.
    """
    stacked = np.stack([np.asarray(p, dtype=np.float32).reshape(17, 3) for p in passes])
    weights = np.clip(stacked[:, :, 2:3], 0.0, None) ** SCORE_POWER
    total = weights.sum(axis=0)
    out = np.empty((17, 3), dtype=np.float32)
    weighted = (weights * stacked[:, :, :2]).sum(axis=0)
    equal = stacked[:, :, :2].mean(axis=0)
    out[:, :2] = np.divide(weighted, total, out=equal, where=total > 0)
    out[:, 2] = stacked[:, :, 2].mean(axis=0)
    return out
