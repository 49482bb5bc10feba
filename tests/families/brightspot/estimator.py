"""Brightspot's estimator: the brightest cell of the frame is the one person, when it is bright enough."""

from __future__ import annotations

import time

import numpy as np
from families.brightspot.model import decode, preprocess_into

from edgepose.inference.estimator import Estimate
from edgepose.inference.runtime.backend import Backend
from edgepose.pose import BackendInfo, Pose


class BrightspotEstimator:
    """Runs brightspot's model through one :class:`Backend`; video frames and stills alike."""

    def __init__(self, backend: Backend, min_score: float) -> None:
        self.backend = backend
        self.min_score = min_score

    @property
    def backends(self) -> tuple[Backend, ...]:
        """Its one backend."""
        return (self.backend,)

    @property
    def info(self) -> BackendInfo:
        """What runs the model now."""
        return self.backend.info

    def track(self, image: np.ndarray) -> Estimate:
        """The same as :meth:`still`: nothing is tracked."""
        return self.still(image)

    def still(self, image: np.ndarray) -> Estimate:
        """Find the brightest cell; no pose when it is darker than ``min_score``."""
        t0 = time.perf_counter()
        dst = self.backend.input_tensor()
        preprocess_into(image, dst)
        del dst
        t1 = time.perf_counter()
        self.backend.invoke()
        t2 = time.perf_counter()
        keypoints = decode(self.backend.output(), image.shape[1], image.shape[0])
        poses = (Pose.from_keypoints(keypoints),) if keypoints[0, 2] >= self.min_score else ()
        t3 = time.perf_counter()
        return Estimate(poses, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)

    def reset(self) -> None:
        """Nothing is carried from frame to frame."""

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()
