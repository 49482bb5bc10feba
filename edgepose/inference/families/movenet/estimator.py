"""MoveNet's estimator: crop region ▶ preprocess ▶ invoke ▶ decode, with per-stage timings."""

from __future__ import annotations

import time

import numpy as np

from edgepose.config.choices import TTA_MODES
from edgepose.config.schema import ModelConfig
from edgepose.inference.estimator import Estimate
from edgepose.inference.families.movenet.flip import average, mirror_input, unflip
from edgepose.inference.families.movenet.model import CropBox, check_model, decode, full_frame_box, preprocess_into
from edgepose.inference.families.movenet.tracker import MoveNetCropTracker, crop_region_for
from edgepose.inference.runtime.backend import Backend
from edgepose.pose import BackendInfo, Pose


class MoveNetEstimator:
    """Runs MoveNet on frames through a :class:`Backend`.

    Video frames follow the person with MoveNet's crop tracker; still images get a second pass
    on the crop derived from the first, and the better-scoring pass is kept; with ``tta="flip"``
    (the default) that pass is averaged with its mirror image's (see :mod:`.flip`).
    """

    def __init__(self, backend: Backend, crop_alpha: float = 1.0, tta: str = ModelConfig.tta) -> None:
        check_model(backend)
        if tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {TTA_MODES}, not {tta!r}")
        self.backend = backend
        self.tracker = MoveNetCropTracker(crop_alpha)
        self.tta = tta

    @property
    def backends(self) -> tuple[Backend, ...]:
        """Its one backend."""
        return (self.backend,)

    @property
    def info(self) -> BackendInfo:
        """What runs the model now (the CPU's once the EdgeTPU worker fell back)."""
        return self.backend.info

    def reset(self) -> None:
        """Start the next frame from the full frame."""
        self.tracker.reset()

    def close(self) -> None:
        """Release the backend (the EdgeTPU worker's child process ends)."""
        self.backend.close()

    def _run(self, image: np.ndarray, box: CropBox, mirror: bool = False) -> tuple[np.ndarray, float, float, float]:
        t0 = time.perf_counter()
        dst = self.backend.input_tensor()
        preprocess_into(image, box, dst)
        if mirror:
            mirror_input(dst)
        del dst  # the interpreter refuses to run while a view of its buffer is alive
        t1 = time.perf_counter()
        self.backend.invoke()
        t2 = time.perf_counter()
        raw = self.backend.output()
        keypoints = decode(unflip(raw) if mirror else raw, box)
        t3 = time.perf_counter()
        return keypoints, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3

    def track(self, image: np.ndarray) -> Estimate:
        """Estimate a video frame on the tracked region and update the region for the next frame."""
        height, width = image.shape[:2]
        keypoints, pre, inv, post = self._run(image, self.tracker.region(width, height))
        t0 = time.perf_counter()
        self.tracker.update(keypoints, width, height)
        pose = Pose.from_keypoints(keypoints)
        return Estimate((pose,), pre, inv, post + (time.perf_counter() - t0) * 1e3)

    def still(self, image: np.ndarray, tta: str | None = None) -> Estimate:
        """Estimate an independent image: full frame, then once more on the person's crop.

        Args:
            image: BGR frame.
            tta: ``"flip"`` to average the kept pass with its mirror image's (one more invoke), ``"none"``
                for a single pass; ``None`` uses the estimator's setting.
        """
        height, width = image.shape[:2]
        whole = full_frame_box(width, height)
        first, pre, inv, post = self._run(image, whole)
        kept = whole
        box = crop_region_for(first, width, height)
        if box != whole:
            second, pre2, inv2, post2 = self._run(image, box)
            pre, inv, post = pre + pre2, inv + inv2, post + post2
            if second[:, 2].mean() >= first[:, 2].mean():
                first, kept = second, box
        if (self.tta if tta is None else tta) == "flip":
            mirrored, pre2, inv2, post2 = self._run(image, kept, mirror=True)
            t0 = time.perf_counter()
            first = average(first, mirrored)
            pre, inv, post = pre + pre2, inv + inv2, post + post2 + (time.perf_counter() - t0) * 1e3
        return Estimate((Pose.from_keypoints(first),), pre, inv, post)
