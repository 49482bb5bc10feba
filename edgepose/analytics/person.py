"""One tracked person: their own smoothing, presence, posture, zones, falls and long lie.

Everything here sees this person's keypoints only, so two people's keypoints never mix. A track starts
with a pose that is a body (:mod:`edgepose.analytics.body`); its person gets an ``id`` when they first
enter. A track that never enters is forgotten after ``track_lost_s`` without a body; one that entered
ends with ``person_left``, unless the person is fallen: then it stays (not present, still fallen) until
they are seen again and get up, since lying out of sight is what the alarm is for. Posture, zones,
falls and the long lie run from the person's entry on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgepose.analytics.body import NOTHING, Evidence
from edgepose.analytics.falls import FallDetector, torso_sample
from edgepose.analytics.longlie import LongLie
from edgepose.analytics.posture import Posture
from edgepose.analytics.presence import Presence
from edgepose.analytics.smoothing import KeypointSmoother
from edgepose.analytics.tracking import Motion
from edgepose.analytics.zones import ZoneMembership, zone_point
from edgepose.config import AnalyticsConfig, SmoothingConfig, ZoneConfig
from edgepose.events import EventType

_UNSEEN = np.zeros((17, 3), dtype=np.float32)


class Person:
    """One track and the state machines of its person.

    Args:
        config: The analytics settings.
        zones: The zones.
        smoothing: One-Euro settings for this person's keypoints, or ``None`` for none.
        keypoints: The first pose's ``(17, 3)`` keypoints.
        ts: Its time.

    Attributes:
        id: The person's id, given when they first enter (``None`` before).
        keypoints: This frame's keypoints, as the state machines saw them (``None``: not seen this frame).
        done: The track has ended.
    """

    def __init__(
        self,
        config: AnalyticsConfig,
        zones: Sequence[ZoneConfig],
        smoothing: SmoothingConfig | None,
        keypoints: np.ndarray,
        ts: float,
    ) -> None:
        self.config = config
        self.id: int | None = None
        self.smoother = KeypointSmoother(smoothing) if smoothing is not None else None
        self.motion = Motion(keypoints, ts, config.keypoint_score, config.track_lost_s)
        self.presence = Presence(config.presence())
        self.posture = Posture(config.posture())
        self.zones = ZoneMembership(zones, config.zone_s)
        self.falls = FallDetector(config.falls())
        self.long_lie = LongLie(config.long_lie_s, config.fall_upright_deg)
        self.keypoints: np.ndarray | None = None
        self.done = False
        self._body_ts = ts

    @property
    def fallen(self) -> bool:
        """Whether the person is down after a fall or a long lie."""
        return self.falls.fallen or self.long_lie.active

    def box_area(self) -> float:
        """Return the area (pixels²) of the box around the person's last seen keypoints."""
        kps = self.motion.keypoints
        seen = kps[kps[:, 2] >= self.config.keypoint_score, :2]
        if len(seen) < 2:
            return 0.0
        extent = seen.max(axis=0) - seen.min(axis=0)
        return float(extent[0] * extent[1])

    def smooth(self, keypoints: np.ndarray, score: float, width: int, height: int, ts: float) -> np.ndarray:
        """Return this person's keypoints through their own One-Euro filter (unchanged without smoothing)."""
        return keypoints if self.smoother is None else self.smoother(keypoints, score, width, height, ts)

    def update(
        self, ts: float, keypoints: np.ndarray | None, evidence: Evidence, width: int, height: int
    ) -> list[dict[str, Any]]:
        """Advance to a frame at ``ts`` with this person's keypoints (``None``: no pose matched); return events.

        The events are in this order: ``person_entered``; zone, fall, long-lie events; ``zone_left`` for
        the zones left with the person; ``person_left``. They carry no ``person`` yet (the caller adds it).
        """
        self.keypoints = keypoints
        if keypoints is None:
            evidence = NOTHING
        else:
            self.motion.observe(keypoints, ts)
        if evidence.body:
            self._body_ts = ts
        changes = self.presence.observe(ts, evidence.body, evidence.seen)
        entered = [e for e in changes if e["type"] == EventType.PERSON_ENTERED]
        left = [e for e in changes if e["type"] == EventType.PERSON_LEFT]
        if self.id is None and not entered:
            self.done = ts - self._body_ts > self.config.track_lost_s
            return []
        events = entered + self._follow(ts, keypoints, width, height)
        if left:
            events += self.zones.leave_all(ts) + left
        self.done = not self.presence.present and not self.fallen
        return events

    def _follow(self, ts: float, keypoints: np.ndarray | None, width: int, height: int) -> list[dict[str, Any]]:
        """Posture, zones, falls and the long lie for one frame of a person who has entered."""
        score = self.config.keypoint_score
        posture = self.posture.update(ts, keypoints)
        events = [] if keypoints is None else self.zones.update(ts, zone_point(keypoints, width, height, score))
        safe = self.zones.safe
        events += self.falls.update(ts, _UNSEEN if keypoints is None else keypoints, excused=safe)
        torso = None if keypoints is None else torso_sample(ts, keypoints, score)
        events += self.long_lie.update(ts, posture, safe, self.falls.fallen, torso)
        return events

    def restart(self) -> None:
        """Forget the smoothing and the motion (the picture changed: a new opening of the source)."""
        if self.smoother is not None:
            self.smoother.reset()
        self.motion.stop()
