"""Yardsticks for the still path: the simplest preprocessing, and the rule that picked one pass.

The simplest preprocessing: letterbox the square, one ``cv2.resize(INTER_AREA)``.

:class:`BaselineEstimator` is edgepose's :class:`MoveNetEstimator` (same passes, same interpreter) with only
the preprocessing swapped: the crop box is rounded to whole pixels, cut out with black outside the
frame and resized in one go with area averaging.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edgepose.eval.crop import cut
from edgepose.inference.estimator import Estimate
from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.families.movenet.flip import mirror_input, unflip
from edgepose.inference.families.movenet.model import CropBox, decode, full_frame_box
from edgepose.inference.families.movenet.tracker import crop_region_for
from edgepose.pose import Pose


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


def _average_by_score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two predictions' positions weighted by score, their scores' mean (the flip averaging before issue 22)."""
    share = np.divide(a[:, 2:3], a[:, 2:3] + b[:, 2:3], out=np.full((17, 1), 0.5, np.float32),
                      where=(a[:, 2:3] + b[:, 2:3]) > 0)  # fmt: skip
    out = np.empty((17, 3), dtype=np.float32)
    out[:, :2] = share * a[:, :2] + (1.0 - share) * b[:, :2]
    out[:, 2] = (a[:, 2] + b[:, 2]) / 2.0
    return out


class PickOneEstimator(MoveNetEstimator):
    """:class:`MoveNetEstimator` with the still-image rule it had before issue 22, as a yardstick.

    The whole frame, then the video tracker's crop of it; the better-scoring of the two passes is kept
    and, with flip, averaged with its mirror image's. One grey level of difference could swap which
    pass was kept.
    """

    def still(self, image: np.ndarray, tta: str | None = None) -> Estimate:
        height, width = image.shape[:2]
        whole = full_frame_box(width, height)
        kept, box = self._run(image, whole)[0], whole
        crop = crop_region_for(kept, width, height)
        if crop != whole:
            second = self._run(image, crop)[0]
            if second[:, 2].mean() >= kept[:, 2].mean():
                kept, box = second, crop
        if (self.tta if tta is None else tta) == "flip":
            kept = _average_by_score(kept, self._run(image, box, mirror=True)[0])
        return Estimate((Pose.from_keypoints(kept),), 0.0, 0.0, 0.0)
