"""Pose data types shared by every part of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: COCO keypoint order, as MoveNet emits them.
KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
KEYPOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

#: Pairs of keypoint indices joined when a skeleton is drawn.
SKELETON_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4),
    (0, 5), (0, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 6), (5, 11), (6, 12), (11, 12),
    (11, 13), (13, 15), (12, 14), (14, 16),
)  # fmt: skip

#: Pipeline stages reported in ``latency_ms``.
STAGES: tuple[str, ...] = ("capture", "preprocess", "invoke", "postprocess", "total")


@dataclass(frozen=True)
class BackendInfo:
    """What ran the model: runtime package, delegate, thread count and model file."""

    runtime: str
    delegate: str
    threads: int
    model: str

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form used in ``infer`` output."""
        return {"runtime": self.runtime, "delegate": self.delegate, "threads": self.threads, "model": self.model}


@dataclass(frozen=True)
class PoseResult:
    """One pose estimate for one frame, in source-pixel coordinates.

    Attributes:
        frame: Frame number from the source, starting at 0.
        ts: Capture time, unix seconds.
        width: Source frame width in pixels.
        height: Source frame height in pixels.
        keypoints: Array of shape (17, 3): x, y in source pixels and score, COCO order.
        latency_ms: Milliseconds per stage (see :data:`STAGES`).
        image: The source frame (BGR) for sinks that draw; not serialised.
    """

    frame: int
    ts: float
    width: int
    height: int
    keypoints: np.ndarray
    latency_ms: dict[str, float] = field(default_factory=dict)
    image: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def score(self) -> float:
        """Pose score: the mean of the 17 keypoint scores."""
        return float(self.keypoints[:, 2].mean())

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form printed by ``edgepose run`` and published over MQTT."""
        return {
            "ts": round(self.ts, 6),
            "frame": self.frame,
            "width": self.width,
            "height": self.height,
            "score": round(self.score, 4),
            "keypoints": keypoints_to_json(self.keypoints),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
        }


def keypoints_to_json(keypoints: np.ndarray) -> list[dict[str, Any]]:
    """Convert a (17, 3) keypoint array to the documented list of named keypoints."""
    return [
        {"name": name, "x": round(float(x), 2), "y": round(float(y), 2), "score": round(float(s), 4)}
        for name, (x, y, s) in zip(KEYPOINT_NAMES, keypoints.tolist(), strict=True)
    ]
