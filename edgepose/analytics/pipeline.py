"""The analytics stage: smoothing ▶ presence ▶ falls ▶ reps over a stream of :class:`PoseResult`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepose.analytics.falls import FallConfig, FallDetector
from edgepose.analytics.presence import Presence, PresenceConfig
from edgepose.analytics.reps import RepConfig, RepCounter
from edgepose.analytics.smoothing import KeypointSmoother, SmoothingConfig
from edgepose.pose import Pose, PoseResult

_F = FallConfig
_P = PresenceConfig
_R = RepConfig


@dataclass(frozen=True)
class AnalyticsConfig:
    """The ``[analytics]`` config section (see docs/analytics.md for each rule).

    Attributes:
        exercise: Count repetitions of ``squat``, ``pushup`` or ``jumping_jack``; ``""`` for none.
        keypoint_score: Keypoints scoring below this are not used by falls and reps.
        enter_score: Presence: pose score to start entering.
        enter_s: Presence: seconds at or above ``enter_score`` before ``person_entered``.
        leave_score: Presence: pose score below which a person starts leaving.
        leave_s: Presence: seconds below ``leave_score`` before ``person_left``.
        dropout_s: Presence: frames back across the threshold adding up to less than this do not break a span.
        fall_upright_deg: Falls: torso tilt counted as upright.
        fall_lying_deg: Falls: torso tilt a fast turn must reach.
        fall_down_deg: Falls: torso tilt the person must stay at or above.
        fall_window_s: Falls: longest time from upright to ``fall_lying_deg``.
        fall_drop: Falls: least drop of hips and shoulders, in body heights.
        fall_down_s: Falls: seconds down before ``fall``.
        fall_recover_s: Falls: seconds upright before ``recovered``.
        rep_confirm_frames: Reps: consecutive frames a zone must hold.
        rep_min_s: Reps: shortest repetition that counts.
    """

    exercise: str = _R.exercise
    keypoint_score: float = _R.keypoint_score
    enter_score: float = _P.enter_score
    enter_s: float = _P.enter_s
    leave_score: float = _P.leave_score
    leave_s: float = _P.leave_s
    dropout_s: float = _P.dropout_s
    fall_upright_deg: float = _F.upright_deg
    fall_lying_deg: float = _F.lying_deg
    fall_down_deg: float = _F.down_deg
    fall_window_s: float = _F.window_s
    fall_drop: float = _F.drop
    fall_down_s: float = _F.down_s
    fall_recover_s: float = _F.recover_s
    rep_confirm_frames: int = _R.confirm_frames
    rep_min_s: float = _R.min_rep_s

    def __post_init__(self) -> None:
        self.presence()  # each part validates its own values
        self.falls()
        self.reps()

    def presence(self) -> PresenceConfig:
        """Return the presence part."""
        return PresenceConfig(self.enter_score, self.enter_s, self.leave_score, self.leave_s, self.dropout_s)

    def falls(self) -> FallConfig:
        """Return the falls part."""
        return FallConfig(self.keypoint_score, self.fall_upright_deg, self.fall_lying_deg, self.fall_down_deg,
                          self.fall_window_s, self.fall_drop, self.fall_down_s, self.fall_recover_s)  # fmt: skip

    def reps(self) -> RepConfig:
        """Return the reps part."""
        return RepConfig(self.exercise, self.keypoint_score, self.rep_confirm_frames, self.rep_min_s)


class Analytics:
    """Adds ``state`` and ``events`` to each :class:`PoseResult`, in frame order.

    Args:
        config: The analytics settings.
        smoothing: One-Euro settings for the keypoints, or ``None`` to leave them as they are.
    """

    def __init__(self, config: AnalyticsConfig, smoothing: SmoothingConfig | None = None) -> None:
        self.config = config
        self.smoother = KeypointSmoother(smoothing) if smoothing is not None else None
        self.presence = Presence(config.presence())
        self.falls = FallDetector(config.falls())
        self.reps = RepCounter(config.reps()) if config.exercise else None
        self._t: float | None = None

    def state(self) -> dict[str, Any]:
        """Return the current state: ``present``, ``fallen``, ``exercise`` (or ``None``) and ``reps``."""
        return {
            "present": self.presence.present,
            "fallen": self.falls.fallen,
            "exercise": self.config.exercise or None,
            "reps": self.reps.count if self.reps is not None else 0,
        }

    def update(self, result: PoseResult) -> PoseResult:
        """Analyse one frame and return it with (smoothed keypoints,) ``state`` and ``events`` filled in.

        Time comes from ``result.media_s``, the frame's media time; from ``result.ts`` only when it has none
        (a recording made before it existed). A time earlier than the previous one is taken as equal. Each
        event carries the frame's wall-clock ``ts`` and, when the frame has one, its ``media_s``. The state
        machines see the values as :meth:`PoseResult.to_dict` prints them (rounded), so ``edgepose
        analyze`` on the printed lines reaches the very same events.
        """
        t = round(result.ts if result.media_s is None else result.media_s, 6)
        t = t if self._t is None else max(t, self._t)
        self._t = t
        score = round(result.score, 4)
        if self.smoother is not None:
            result = _with_keypoints(result, self.smoother(result.keypoints, score, result.width, result.height, t))
        keypoints = _as_printed(result.keypoints)
        events = self.presence.update(t, score)
        if self.reps is not None and any(e["type"] == "person_left" for e in events):
            self.reps.interrupt()
        events += self.falls.update(t, keypoints)
        if self.reps is not None:
            events += self.reps.update(t, keypoints)
        stamp = {"ts": round(result.ts, 6)} | ({} if result.media_s is None else {"media_s": t})
        return dataclasses.replace(result, state=self.state(), events=tuple(_stamped(e, stamp) for e in events))


def _stamped(event: dict[str, Any], stamp: dict[str, float]) -> dict[str, Any]:
    """Return the event with the frame's ``ts`` (and ``media_s``) in place of its own time, after its type."""
    rest = {key: value for key, value in event.items() if key not in ("type", "ts")}
    return {"type": event["type"], **stamp, **rest}


def _as_printed(keypoints: np.ndarray) -> np.ndarray:
    """Return the keypoints rounded as ``to_dict`` prints them (x, y to 0.01 px, score to 1e-4)."""
    rows = [(round(float(x), 2), round(float(y), 2), round(float(s), 4)) for x, y, s in keypoints.tolist()]
    return np.array(rows, dtype=np.float32)


def _with_keypoints(result: PoseResult, keypoints: np.ndarray) -> PoseResult:
    """Replace the best pose's keypoints (in ``keypoints`` and ``poses[0]``), keeping its score."""
    if keypoints is result.keypoints:
        return result
    poses = result.poses
    if poses:
        best = poses[0]
        poses = (Pose.from_keypoints(keypoints, score=best.score, landmarks=best.landmarks), *poses[1:])
    return dataclasses.replace(result, keypoints=keypoints, poses=poses)
