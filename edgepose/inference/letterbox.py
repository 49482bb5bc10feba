"""Still-image preprocessing: the box rounded to whole pixels, letterboxed, one area-averaging resize.

Measured with edgepose's eval code on the shared photos and 700 rescaled, re-framed views of them
(benchmarks/eval_still.py, benchmarks/EVAL_STILL.md), this is more accurate for still images than the
video path's pre-shrink and bilinear warp (:func:`edgepose.inference.movenet.preprocess_into`): mean error
5.95 vs 6.21 px on person crops and 6.24 vs 6.28 px on whole images (one pass; with flip averaging 4.97 vs
5.16 and 5.28 vs 5.36), at the cost of one exact area resize of the box. Video keeps the warp: on the
tracking clip it is as accurate (mean error 4.18 vs 4.31 px) and faster.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edgepose.inference.movenet import CropBox


def whole_pixels(box: CropBox) -> tuple[int, int, int]:
    """Return ``(x0, y0, side)``: the box's corner rounded to the nearest pixel (halves up) and its side."""
    return math.floor(box.x + 0.5), math.floor(box.y + 0.5), max(1, math.floor(box.width + 0.5))


def letterbox_into(frame_bgr: np.ndarray, box: CropBox, dst: np.ndarray) -> CropBox:
    """Resize the square ``box`` of a BGR frame into ``dst`` as RGB with ``cv2.INTER_AREA``, black outside the frame.

    Args:
        frame_bgr: Source frame, ``(H, W, 3)`` uint8, BGR order.
        box: Square region in source pixels; it may extend past the edges (the letterbox bands).
        dst: The model input, ``(S, S, 3)`` uint8 (the interpreter's tensor).

    Returns:
        The whole-pixel box actually resized: decode the model's output with it.
    """
    height, width = frame_bgr.shape[:2]
    x0, y0, side = whole_pixels(box)
    used = CropBox(float(x0), float(y0), float(side), float(side))
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(width, x0 + side), min(height, y0 + side)
    if sx1 <= sx0 or sy1 <= sy0:
        dst[:] = 0
        return used
    square = frame_bgr[sy0:sy1, sx0:sx1]
    if square.shape[:2] != (side, side):
        pads = (sy0 - y0, y0 + side - sy1, sx0 - x0, x0 + side - sx1)
        square = cv2.copyMakeBorder(square, *pads, borderType=cv2.BORDER_CONSTANT, value=(0, 0, 0))
    size = dst.shape[0]
    small = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=dst)
    return used
