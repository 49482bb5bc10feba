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


#: Keypoints at or above this score define a pose's bounding box.
BOX_MIN_SCORE = 0.2


@dataclass(frozen=True)
class Pose:
    """One person's pose in source pixels.

    Attributes:
        keypoints: ``(17, 3)`` float32: x, y in source pixels and score, COCO order.
        score: The pose score (MoveNet: the mean keypoint score; PoseNet: its decoder's pose score).
        box: ``(x0, y0, x1, y1)`` in source pixels around the confident keypoints.
        landmarks: BlazePose's ``(33, 5)`` x, y (source pixels), z, visibility, presence; ``None`` otherwise.
        id: The person's id from the analytics' tracking (``None``: not tracked, or not a person yet).
    """

    keypoints: np.ndarray
    score: float
    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None = field(default=None, compare=False)
    id: int | None = None

    @classmethod
    def from_keypoints(
        cls, keypoints: np.ndarray, score: float | None = None, landmarks: np.ndarray | None = None
    ) -> Pose:
        """Build a pose whose box spans its keypoints scoring at least :data:`BOX_MIN_SCORE` (all, if none do)."""
        return cls(
            keypoints,
            float(keypoints[:, 2].mean()) if score is None else float(score),
            keypoint_box(keypoints),
            landmarks,
        )

    def to_dict(self, tracked: bool = False, keypoints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Return the JSON form of one entry of ``poses``; ``tracked`` (the analytics ran) adds its ``id``.

        ``keypoints`` is the JSON form of :attr:`keypoints` when the caller has it already (not built twice).
        """
        return {
            **({"id": self.id} if tracked else {}),
            "score": round(self.score, 4),
            "box": [round(v, 2) for v in self.box],
            "keypoints": keypoints_to_json(self.keypoints) if keypoints is None else keypoints,
        }


def keypoint_box(keypoints: np.ndarray) -> tuple[float, float, float, float]:
    """Return ``(x0, y0, x1, y1)`` around the keypoints scoring at least :data:`BOX_MIN_SCORE` (all, if none do)."""
    confident = keypoints[keypoints[:, 2] >= BOX_MIN_SCORE]
    points = confident if len(confident) else keypoints
    x0, y0 = points[:, :2].min(axis=0)
    x1, y1 = points[:, :2].max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


@dataclass(frozen=True)
class PoseResult:
    """The poses found in one frame, in source-pixel coordinates.

    Attributes:
        frame: Frame number from the source, starting at 0.
        ts: Capture time, unix seconds (the wall clock: a label, which NTP may step).
        width: Source frame width in pixels.
        height: Source frame height in pixels.
        keypoints: The best pose's ``(17, 3)`` x, y in source pixels and score, COCO order.
        latency_ms: Milliseconds per stage (see :data:`STAGES`).
        image: The source frame (BGR) for sinks that draw; not serialised.
        poses: Every pose found, best first (MoveNet: exactly one; PoseNet: none or more). ``None``
            means "the one pose is ``keypoints``", for callers that build a result from keypoints alone.
        state: What the analytics conclude after this frame (``present``, ``fallen``, ``people``, …), if they
            ran; then each pose carries its ``id``.
        events: What the analytics saw happen on this frame (``person_entered``, ``fall``, ``rep``, …).
        media_s: Seconds since the start of the source, never decreasing: the container's timestamp for
            files, a monotonic capture clock for live sources. The analytics are timed by it (by ``ts`` when
            it is ``None``, as in recordings made before it existed).
    """

    frame: int
    ts: float
    width: int
    height: int
    keypoints: np.ndarray
    latency_ms: dict[str, float] = field(default_factory=dict)
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    poses: tuple[Pose, ...] | None = field(default=None, compare=False)
    state: dict[str, Any] | None = None
    events: tuple[dict[str, Any], ...] = ()
    media_s: float | None = None

    @property
    def score(self) -> float:
        """Pose score of the best pose (MoveNet: the mean of its 17 keypoint scores)."""
        if self.poses is None:
            return float(self.keypoints[:, 2].mean())
        return self.poses[0].score if self.poses else 0.0

    def people(self, min_score: float) -> int:
        """Count the people present: the analytics' (``state["people"]``) when they ran.

        Without the analytics: the poses scoring at least ``min_score`` (MoveNet: 0 or 1).
        """
        if self.state is not None and "people" in self.state:
            return sum(bool(person["present"]) for person in self.state["people"])
        return sum(pose.score >= min_score for pose in self.all_poses)

    @property
    def all_poses(self) -> tuple[Pose, ...]:
        """Every pose, best first; a result built from keypoints alone has that one pose."""
        return (Pose.from_keypoints(self.keypoints),) if self.poses is None else self.poses

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form printed by ``edgepose run`` and published over MQTT."""
        best = keypoints_to_json(self.keypoints)
        tracked = self.state is not None
        out: dict[str, Any] = {
            "ts": round(self.ts, 6),
            **({} if self.media_s is None else {"media_s": round(self.media_s, 6)}),
            "frame": self.frame,
            "width": self.width,
            "height": self.height,
            "score": round(self.score, 4),
            "keypoints": best,
            # The best pose's keypoints are the result's own (MoveNet: its one pose): their JSON is built once.
            "poses": [
                pose.to_dict(tracked, best if pose.keypoints is self.keypoints else None) for pose in self.all_poses
            ],
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
        }
        landmarks = self.all_poses[0].landmarks if self.all_poses else None
        if landmarks is not None:
            out["landmarks"] = landmarks_to_json(landmarks)
        if self.state is not None:
            out["state"] = self.state
            out["events"] = list(self.events)
        return out


#: Decimals printed of a keypoint's x, y (pixels) and score.
_KEYPOINT_SCALE = np.array([100.0, 100.0, 10000.0])


def printed_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """Return ``(N, 3)`` keypoints as they are printed: x, y to 0.01 px, score to 1e-4 (float64).

    One vectorised rounding instead of a ``round()`` per value. For the model's float32 keypoints it gives the
    very values ``round(value, 2)`` and ``round(value, 4)`` give: a float32 times 100 or 10000 is exact in
    float64, ``rint`` rounds half to even as ``round`` does, and the division is correctly rounded.
    """
    scaled = np.asarray(keypoints, dtype=np.float64)[:, :3] * _KEYPOINT_SCALE
    rounded: np.ndarray = np.rint(scaled) / _KEYPOINT_SCALE
    return rounded


def keypoints_to_json(keypoints: np.ndarray) -> list[dict[str, Any]]:
    """Convert a (17, 3) keypoint array to the documented list of named keypoints."""
    return [
        {"name": name, "x": x, "y": y, "score": s}
        for name, (x, y, s) in zip(KEYPOINT_NAMES, printed_keypoints(keypoints).tolist(), strict=True)
    ]


#: BlazePose's 33 landmark names, in the model's order.
LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip


#: Pairs of BlazePose landmark indices joined when its 33-point skeleton is drawn (face, arms and
#: hands, torso, legs and feet).
LANDMARK_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (27, 29), (29, 31), (27, 31), (24, 26), (26, 28), (28, 30), (30, 32), (28, 32),
)  # fmt: skip


def landmarks_to_json(landmarks: np.ndarray) -> list[dict[str, Any]]:
    """Convert BlazePose's ``(33, ≥4)`` landmarks (x, y in source pixels, z, visibility) to named entries."""
    return [
        {
            "name": name,
            "x": round(float(row[0]), 2),
            "y": round(float(row[1]), 2),
            "z": round(float(row[2]), 2),
            "visibility": round(float(row[3]), 4),
        }
        for name, row in zip(LANDMARK_NAMES, landmarks.tolist(), strict=True)
    ]
