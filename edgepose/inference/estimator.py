"""The pose estimator: crop region ▶ preprocess ▶ invoke ▶ decode, with per-stage timings."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edgepose.inference.backends import Backend
from edgepose.inference.cropping import CropTracker, crop_region_for
from edgepose.inference.movenet import CropBox, decode, full_frame_box, preprocess_into


@dataclass(frozen=True)
class Estimate:
    """Keypoints in source pixels, ``(17, 3)`` x/y/score, and milliseconds per stage."""

    keypoints: np.ndarray
    preprocess_ms: float
    invoke_ms: float
    postprocess_ms: float


class PoseEstimator:
    """Runs MoveNet on frames through a :class:`Backend`.

    Video frames follow the person with MoveNet's crop tracker; still images get a second pass
    on the crop derived from the first, and the better-scoring pass is kept.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.tracker = CropTracker()

    def _run(self, image: np.ndarray, box: CropBox) -> Estimate:
        t0 = time.perf_counter()
        dst = self.backend.input_tensor()
        preprocess_into(image, box, dst)
        del dst  # the interpreter refuses to run while a view of its buffer is alive
        t1 = time.perf_counter()
        self.backend.invoke()
        t2 = time.perf_counter()
        keypoints = decode(self.backend.output(), box)
        t3 = time.perf_counter()
        return Estimate(keypoints, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)

    def track(self, image: np.ndarray) -> Estimate:
        """Estimate a video frame on the tracked region and update the region for the next frame."""
        height, width = image.shape[:2]
        estimate = self._run(image, self.tracker.region(width, height))
        t0 = time.perf_counter()
        self.tracker.update(estimate.keypoints, width, height)
        tracking_ms = (time.perf_counter() - t0) * 1e3
        return Estimate(
            estimate.keypoints, estimate.preprocess_ms, estimate.invoke_ms, estimate.postprocess_ms + tracking_ms
        )

    def still(self, image: np.ndarray) -> Estimate:
        """Estimate an independent image: full frame, then once more on the person's crop."""
        height, width = image.shape[:2]
        whole = full_frame_box(width, height)
        first = self._run(image, whole)
        box = crop_region_for(first.keypoints, width, height)
        if box == whole:
            return first
        second = self._run(image, box)
        best = second if second.keypoints[:, 2].mean() >= first.keypoints[:, 2].mean() else first
        return Estimate(
            best.keypoints,
            first.preprocess_ms + second.preprocess_ms,
            first.invoke_ms + second.invoke_ms,
            first.postprocess_ms + second.postprocess_ms,
        )
