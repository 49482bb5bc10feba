"""What Home Assistant's Fallen and Posture entities show, drawn from each frame's state and events (no paho here).

``<base>/fallen``: ``{"fallen", "kind", "person", "zone"}``: whether anyone is fallen and, for the first
fallen person (lowest id), whether a ``fall`` or a ``long_lie`` raised it, their id and the first zone
they are in (``null`` outside every zone); all three ``null`` while nobody is fallen.

After the service starts, nobody knows how long a person already lying there has been down: the long
lie's timer starts from zero. (A pause or a lost camera keeps the timers: the long lie fires on time.) So
while nobody is fallen and a person who has not been seen up since the first frames is down outside every
``falls = false`` zone, ``fallen`` is ``null`` (Home Assistant: unknown), with their ``person`` and ``zone``,
until the long lie decides (``true``) or they are up (``false``). Down means their posture turned ``lying``
within ``window_s`` of the first frame (and stays ``lying`` or ``unknown``), or is still ``unknown`` within
``window_s`` (a posture that has not decided yet). A restart never shows a fallen person as not fallen for
``long_lie_s``. Stills (``window_s`` 0) are never in doubt.

``<base>/posture``: ``{"posture", "person"}``: the posture of the *most prominent* person and their id,
both ``null`` while nobody is present. The most prominent person is the present person whose pose has
the biggest box when the choice is made, kept while they stay present (the rule that picks the person
exercising), so the sensor does not jump between two people of about one size; when none of the
present people is seen in that frame, the lowest id.
"""

from __future__ import annotations

import json
from typing import Any

from edgepose.analytics.posture import LYING, SITTING, STANDING, UNKNOWN
from edgepose.events import EventType
from edgepose.pose import PoseResult

#: The events that make a person fallen, and the ``kind`` each gives.
ALARMS = (EventType.FALL, EventType.LONG_LIE)


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


class Summary:
    """Follows one run's frames (the loop's thread) and returns the payloads of ``fallen`` and ``posture``.

    Args:
        safe_zones: The names of the ``falls = false`` zones, where lying is no alarm.
        window_s: A person whose posture turned ``lying`` within this long of the start of analysis has been
            lying since before it (the posture's and the presence's decision times).
    """

    def __init__(self, safe_zones: tuple[str, ...] = (), window_s: float = 0.0) -> None:
        self._safe = frozenset(safe_zones)
        self._window_s = window_s
        self._kinds: dict[int, str] = {}  # person → the alarm that made them fallen last
        self._lying_since: dict[int, float] = {}  # person → media time their posture turned lying
        self._up: set[int] = set()  # people seen standing or sitting since the first frame
        self._started: float | None = None
        self._prominent: int | None = None

    def observe(self, result: PoseResult, started: float | None = None) -> tuple[bytes, bytes] | None:
        """Take a frame; return the ``(fallen, posture)`` payloads (``None`` for a result without analytics).

        Args:
            result: The frame.
            started: Media time of the start of analysis; the first one given is the service's start (later
                starts keep the analytics' timers). ``None``: no start to doubt.
        """
        state = result.state
        if state is None:
            return None
        t = result.ts if result.media_s is None else result.media_s
        if self._started is None:
            self._started = started
        for event in result.events:
            if event.get("type") in ALARMS and isinstance(event.get("person"), int):
                self._kinds[event["person"]] = str(event["type"])
        people: list[dict[str, Any]] = list(state.get("people", ()))
        for person in people:
            if person.get("posture") == LYING:
                self._lying_since.setdefault(person["id"], t)
            elif person.get("posture") in (STANDING, SITTING):
                self._lying_since.pop(person["id"], None)
                self._up.add(person["id"])
        known = {p["id"] for p in people}
        self._kinds = {k: v for k, v in self._kinds.items() if k in known}
        self._lying_since = {k: v for k, v in self._lying_since.items() if k in known}
        self._up &= known
        return self._fallen(people, t), self._posture(result, people)

    def _undecided(self, person: dict[str, Any], t: float) -> bool:
        """Whether ``person`` may have been down since before the service started, at media time ``t``."""
        started, pid = self._started, person["id"]
        if started is None or self._window_s <= 0 or pid in self._up:
            return False
        if self._safe.intersection(person.get("zones") or ()):
            return False
        since = self._lying_since.get(pid)
        if since is not None:
            return since - started <= self._window_s
        return person.get("posture") == UNKNOWN and t - started <= self._window_s

    def _fallen(self, people: list[dict[str, Any]], t: float) -> bytes:
        down = next((p for p in people if p.get("fallen")), None)
        person = down or next((p for p in people if self._undecided(p, t)), None)
        if person is None:
            data: dict[str, Any] = {"fallen": False, "kind": None, "person": None, "zone": None}
        else:
            zones = person.get("zones") or [None]
            kind = self._kinds.get(person["id"], str(EventType.FALL)) if down else None
            data = {"fallen": True if down else None, "kind": kind, "person": person["id"], "zone": zones[0]}
        return json.dumps(data, separators=(",", ":")).encode()

    def _posture(self, result: PoseResult, people: list[dict[str, Any]]) -> bytes:
        present = {p["id"]: p for p in people if p.get("present")}
        if self._prominent not in present:
            seen = [pose for pose in result.all_poses if pose.id in present]
            biggest = max(seen, key=lambda pose: _area(pose.box), default=None)
            self._prominent = biggest.id if biggest is not None else min(present, default=None)
        person = present.get(self._prominent) if self._prominent is not None else None
        data = {"posture": person["posture"] if person else None, "person": self._prominent if person else None}
        return json.dumps(data, separators=(",", ":")).encode()
