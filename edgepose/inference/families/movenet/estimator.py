"""MoveNet's estimator: crop region ▶ preprocess ▶ invoke ▶ decode, with per-stage timings."""

from __future__ import annotations

import time

import numpy as np

from edgepose.config.choices import TTA_MODES
from edgepose.config.schema import ModelConfig
from edgepose.inference.estimator import Estimate
from edgepose.inference.families.movenet.flip import SHIFTS, combine, mirror_input, shifted, unflip
from edgepose.inference.families.movenet.model import CropBox, check_model, decode, full_frame_box, preprocess_into
from edgepose.inference.families.movenet.tracker import MoveNetCropTracker, still_region_for
from edgepose.inference.runtime.backend import Backend
from edgepose.pose import BackendInfo, Pose


def still_invokes(tta: str) -> int:
    """Return how often :meth:`MoveNetEstimator.still` runs the model: the whole frame, each shift (×2 with flip)."""
    return 1 + len(SHIFTS) * (2 if tta == "flip" else 1)


class MoveNetEstimator:
    """Runs MoveNet on frames through a :class:`Backend`.

    Video frames follow the person with MoveNet's crop tracker. Still images are found on the whole
    frame, then run on the person's region (:func:`.tracker.still_region_for`) at three sub-cell
    shifts, with ``tta="flip"`` (the default) each also mirrored, and every pass is combined by score
    (see :mod:`.flip`). Nothing in between is a choice: an input a grey level different moves the
    result a little, never from one pass's answer to another's.
    """

    def __init__(self, backend: Backend, crop_alpha: float = 1.0, tta: str = ModelConfig.tta) -> None:
        check_model(backend)
        if tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {TTA_MODES}, not {tta!r}")
        self.backend = backend
        self.tracker = MoveNetCropTracker(crop_alpha)
        self.tta = tta
        self._size = backend.input_shape(0)[1]

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
        """Estimate an independent image: find the person on the whole frame, then combine passes on their region.

        Args:
            image: BGR frame.
            tta: ``"flip"`` to run every shifted pass also on its mirror image (:func:`still_invokes` says how
                many passes that is), ``"none"`` for the shifted passes alone; ``None`` uses the estimator's setting.
        """
        height, width = image.shape[:2]
        mirrors = (False, True) if (self.tta if tta is None else tta) == "flip" else (False,)
        located, pre, inv, post = self._run(image, full_frame_box(width, height))
        passes = []
        for box in shifted(still_region_for(located, width, height), self._size):
            for mirror in mirrors:
                keypoints, pre2, inv2, post2 = self._run(image, box, mirror)
                passes.append(keypoints)
                pre, inv, post = pre + pre2, inv + inv2, post + post2
        t0 = time.perf_counter()
        combined = combine(passes)
        post += (time.perf_counter() - t0) * 1e3
        return Estimate((Pose.from_keypoints(combined),), pre, inv, post)
