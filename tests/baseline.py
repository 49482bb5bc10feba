"""The simplest still-image preprocessing, as a yardstick: letterbox the square, one ``cv2.resize(INTER_AREA)``.

:class:`BaselineEstimator` is edgepose's :class:`MoveNetEstimator` (same passes, same interpreter) with only
the preprocessing swapped: the crop box is rounded to whole pixels, cut out with black outside the
frame and resized in one go with area averaging.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edgepose.eval.crop import cut
from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.families.movenet.flip import mirror_input, unflip
from edgepose.inference.families.movenet.model import CropBox, decode


def letterbox_area_into(frame_bgr: np.ndarray, box: CropBox, dst: np.ndarray) -> CropBox:
    """Cut ``box`` (rounded to whole pixels, black outside the frame), resize it with INTER_AREA into ``dst`` as RGB.

    Returns:
        The whole-pixel box actually used, to decode with.
    """
    x0, y0, side = math.floor(box.x + 0.5), math.floor(box.y + 0.5), max(1, math.floor(box.width + 0.5))
    square = cut(frame_bgr, x0, y0, side)
    small = cv2.resize(square, dst.shape[1::-1], interpolation=cv2.INTER_AREA)
    cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=dst)
    return CropBox(float(x0), float(y0), float(side), float(side))


class BaselineEstimator(MoveNetEstimator):
    """:class:`MoveNetEstimator` with :func:`letterbox_area_into` as its preprocessing, video frames included."""

    def _run(self, image: np.ndarray, box: CropBox, mirror: bool = False) -> tuple[np.ndarray, float, float, float]:
        dst = self.backend.input_tensor()
        used = letterbox_area_into(image, box, dst)
        if mirror:
            mirror_input(dst)
        del dst
        self.backend.invoke()
        raw = self.backend.output()
        return decode(unflip(raw) if mirror else raw, used), 0.0, 0.0, 0.0
