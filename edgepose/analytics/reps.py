"""Exercise repetitions: a two-zone state machine with hysteresis per exercise.

Each exercise maps a pose to a *zone*: ``rest`` (standing, arms straight, arms and legs together),
``work`` (the bottom of a squat or push-up, arms and legs spread) or neither. A repetition is
rest → work → rest; each zone must hold for ``confirm_frames`` consecutive frames before it counts,
and the gap between the zones is the hysteresis, so a partial repetition (never reaching ``work``)
does not count and a noisy hold in one zone cannot count twice. Joint angles use only keypoints
scoring at least ``keypoint_score``; a frame where the needed joints are not seen changes nothing.

=============  =================================================  ===========  ===========
exercise       measure                                            rest         work
=============  =================================================  ===========  ===========
squat          knee angle hip–knee–ankle (mean of visible sides)   >= 160°      <= 110°
pushup         elbow angle shoulder–elbow–wrist                    >= 150°      <= 100°
jumping_jack   arms: shoulder→wrist from straight down;            arms <= 45°  arms >= 120°
               legs: sum of both hip→ankle angles from down        legs <= 15°  legs >= 25°
=============  =================================================  ===========  ===========

For jumping jacks the legs decide too when both are seen; the arms alone when the legs are not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgepose.analytics.geometry import SIDES, joint, side_angles, tilt_from_down
from edgepose.config import RepConfig
from edgepose.errors import ConfigError
from edgepose.events import EventType

REST, WORK = "rest", "work"


def _angle_zone(joints: tuple[str, str, str], rest_at: float, work_at: float) -> Callable[[np.ndarray, float], str]:
    """Return a zone function from the mean joint angle: ``rest`` at or above ``rest_at``, ``work`` at or below."""

    def zone(keypoints: np.ndarray, min_score: float) -> str:
        angles = side_angles(keypoints, joints, min_score)
        if not angles:
            return ""
        value = sum(angles) / len(angles)
        return REST if value >= rest_at else WORK if value <= work_at else "between"

    return zone


def _jumping_jack_zone(keypoints: np.ndarray, min_score: float) -> str:
    """Zone of a jumping jack, from the arms' lift and (when seen) the legs' spread."""
    arms = [
        t
        for side in SIDES
        if (s := joint(keypoints, f"{side}_shoulder", min_score)) is not None
        and (w := joint(keypoints, f"{side}_wrist", min_score)) is not None
        and (t := tilt_from_down(s, w)) is not None
    ]
    if not arms:
        return ""
    legs = [
        t
        for side in SIDES
        if (h := joint(keypoints, f"{side}_hip", min_score)) is not None
        and (a := joint(keypoints, f"{side}_ankle", min_score)) is not None
        and (t := tilt_from_down(h, a)) is not None
    ]
    arm = sum(arms) / len(arms)
    spread = sum(legs) if len(legs) == 2 else None
    if arm <= 45.0 and (spread is None or spread <= 15.0):
        return REST
    if arm >= 120.0 and (spread is None or spread >= 25.0):
        return WORK
    return "between"


#: Exercise (one of :data:`~edgepose.config.choices.EXERCISES`) → zone function ``(keypoints, min_score) ->
#: "rest" | "work" | "between" | ""`` (not seen).
ZONES: dict[str, Callable[[np.ndarray, float], str]] = {
    "squat": _angle_zone(("hip", "knee", "ankle"), rest_at=160.0, work_at=110.0),
    "pushup": _angle_zone(("shoulder", "elbow", "wrist"), rest_at=150.0, work_at=100.0),
    "jumping_jack": _jumping_jack_zone,
}


class RepCounter:
    """Counts repetitions of one exercise; feed it every frame's keypoints with the frame's time.

    Attributes:
        count: Repetitions so far.
        phase: ``None`` until the person is first seen at rest, then ``"rest"`` or ``"work"``.
    """

    def __init__(self, config: RepConfig) -> None:
        if not config.exercise:
            raise ConfigError("a RepCounter needs an exercise")
        self.config = config
        self._zone = ZONES[config.exercise]
        self.count = 0
        self.phase: str | None = None
        self._candidate = ""
        self._streak = 0
        self._candidate_ts = 0.0
        self._rest_ts = 0.0  # last frame seen at rest
        self._start_ts = 0.0  # where the repetition in progress started

    def interrupt(self) -> None:
        """Forget a repetition in progress (the person left); the next one starts from rest."""
        self.phase = None
        self._candidate, self._streak = "", 0

    def update(self, ts: float, keypoints: np.ndarray) -> list[dict[str, Any]]:
        """Advance to a frame at ``ts`` with these ``(17, 3)`` keypoints; return a ``rep`` event if one completed."""
        zone = self._zone(keypoints, self.config.keypoint_score)
        if not zone:
            return []  # the joints are not seen: no evidence either way
        if zone == self.phase:
            self._candidate, self._streak = "", 0
            if zone == REST:
                self._rest_ts = ts
            return []
        if zone not in (REST, WORK):
            self._candidate, self._streak = "", 0
            return []
        if zone != self._candidate:
            self._candidate, self._streak, self._candidate_ts = zone, 0, ts
        self._streak += 1
        if zone == REST:
            self._rest_ts = ts
        if self._streak < self.config.confirm_frames:
            return []
        self._candidate, self._streak = "", 0
        previous, self.phase = self.phase, zone
        if zone == WORK:
            if previous is None:
                self.phase = None  # started mid-repetition: wait for rest
            self._start_ts = self._rest_ts
            return []
        if previous != WORK:
            return []  # first rest seen
        duration = self._candidate_ts - self._start_ts
        if duration < self.config.min_rep_s:
            return []
        self.count += 1
        return [{"type": EventType.REP, "ts": ts, "exercise": self.config.exercise, "count": self.count,
                 "duration_s": round(duration, 3)}]  # fmt: skip
