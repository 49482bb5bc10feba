"""What the pipeline runs: the :class:`Estimator` protocol every model family implements, and its :class:`Estimate`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgepose.inference.runtime.backend import Backend
from edgepose.pose import BackendInfo, Pose

#: The keypoints reported when a frame holds no pose at all (x, y and score 0).
NO_KEYPOINTS = np.zeros((17, 3), dtype=np.float32)


@dataclass(frozen=True)
class Estimate:
    """The poses found in one frame (best first, in source pixels) and milliseconds per stage."""

    poses: tuple[Pose, ...]
    preprocess_ms: float
    invoke_ms: float
    postprocess_ms: float

    @property
    def keypoints(self) -> np.ndarray:
        """The best pose's ``(17, 3)`` x/y/score, or zeros when there is none."""
        return self.poses[0].keypoints if self.poses else NO_KEYPOINTS


class Estimator(Protocol):
    """What the pipeline needs of a model family (MoveNet, PoseNet, BlazePose, …; see docs/families.md).

    Attributes:
        backend: The backend that runs on every frame: what ``bench`` times, and whose health (the EdgeTPU
            worker's restarts and CPU fallback) the pipeline's stats report.
    """

    backend: Backend

    @property
    def backends(self) -> tuple[Backend, ...]:
        """Every backend it opened, :attr:`backend` first."""

    @property
    def info(self) -> BackendInfo:
        """What runs the model now, read at each use: the CPU's once the EdgeTPU worker fell back."""

    def track(self, image: np.ndarray) -> Estimate:
        """Estimate a video frame, following the person from the previous frames."""

    def still(self, image: np.ndarray) -> Estimate:
        """Estimate an independent image."""

    def reset(self) -> None:
        """Forget what was tracked (a new scene or a reopened source)."""

    def close(self) -> None:
        """Release every backend it opened (the EdgeTPU worker's child process ends); idempotent."""
