"""Zones: named polygons of the picture, and which of them each person is in.

A person's *point* is the midpoint of their seen hips, or of their seen ankles when no hip is seen,
in frame coordinates from 0 to 1; a frame where neither is seen changes nothing. The person enters a
zone once the point has been inside it for ``zone_s`` (``zone_entered``), and leaves it once the point
has been outside for ``zone_s``, or when the person leaves (``zone_left``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgepose.analytics.geometry import centre
from edgepose.config import ZoneConfig
from edgepose.events import EventType


def inside(point: tuple[float, float], polygon: Sequence[tuple[float, float]]) -> bool:
    """Return whether ``point`` lies inside ``polygon`` (even-odd rule; a point on an edge may go either way)."""
    x, y = point
    result = False
    for (x0, y0), (x1, y1) in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            result = not result
    return result


def zone_point(keypoints: np.ndarray, width: int, height: int, min_score: float) -> tuple[float, float] | None:
    """Return the person's point (hips' midpoint, else ankles'), normalised to the frame, or ``None``."""
    point = centre(keypoints, "hip", min_score)
    if point is None:
        point = centre(keypoints, "ankle", min_score)
    if point is None:
        return None
    return float(point[0]) / max(width, 1), float(point[1]) / max(height, 1)


class ZoneMembership:
    """Which zones one person is in, with ``zone_s`` of hysteresis.

    Attributes:
        current: The names of the zones the person is in, in the config's order.
    """

    def __init__(self, zones: Sequence[ZoneConfig], hold_s: float) -> None:
        self.zones = tuple(zones)
        self.hold_s = hold_s
        self.current: list[str] = []
        self._flip_since: dict[str, float] = {}  # zone → since when the point has been on the other side

    @property
    def safe(self) -> bool:
        """Whether the person is in a zone where lying is no alarm (``falls = false``)."""
        return any(not zone.falls for zone in self.zones if zone.name in self.current)

    def update(self, ts: float, point: tuple[float, float] | None) -> list[dict[str, Any]]:
        """Advance to a frame at ``ts`` with the person's point (``None``: not seen); return zone events."""
        if point is None:
            return []
        events = []
        for zone in self.zones:
            now = inside(point, zone.polygon)
            if now == (zone.name in self.current):
                self._flip_since.pop(zone.name, None)
                continue
            since = self._flip_since.setdefault(zone.name, ts)
            if ts - since < self.hold_s:
                continue
            del self._flip_since[zone.name]
            if now:
                self.current = [z.name for z in self.zones if z.name in self.current or z.name == zone.name]
                events.append({"type": EventType.ZONE_ENTERED, "ts": ts, "zone": zone.name})
            else:
                self.current.remove(zone.name)
                events.append({"type": EventType.ZONE_LEFT, "ts": ts, "zone": zone.name})
        return events

    def leave_all(self, ts: float) -> list[dict[str, Any]]:
        """Leave every zone the person was in (they left the picture); return the ``zone_left`` events."""
        events = [{"type": EventType.ZONE_LEFT, "ts": ts, "zone": name} for name in self.current]
        self.current, self._flip_since = [], {}
        return events
