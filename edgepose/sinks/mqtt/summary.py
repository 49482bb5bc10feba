"""What Home Assistant's Fallen and Posture entities show, drawn from each frame's state and events (no paho here).

``<base>/fallen``: ``{"fallen", "kind", "person", "zone"}``: whether anyone is fallen and, for the first
fallen person (lowest id), whether a ``fall`` or a ``long_lie`` raised it, their id and the first zone
they are in (``null`` outside every zone); all three ``null`` while nobody is fallen.

``<base>/posture``: ``{"posture", "person"}``: the posture of the *most prominent* person and their id,
both ``null`` while nobody is present. The most prominent person is the present person whose pose has
the biggest box when the choice is made, kept while they stay present (the rule that picks the person
exercising), so the sensor does not jump between two people of about one size; when none of the
present people is seen in that frame, the lowest id.
"""

from __future__ import annotations

import json
from typing import Any

from edgepose.events import EventType
from edgepose.pose import PoseResult

#: The events that make a person fallen, and the ``kind`` each gives.
ALARMS = (EventType.FALL, EventType.LONG_LIE)


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


class Summary:
    """Follows one run's frames (the loop's thread) and returns the payloads of ``fallen`` and ``posture``."""

    def __init__(self) -> None:
        self._kinds: dict[int, str] = {}  # person → the alarm that made them fallen last
        self._prominent: int | None = None

    def observe(self, result: PoseResult) -> tuple[bytes, bytes] | None:
        """Take a frame; return the ``(fallen, posture)`` payloads (``None`` for a result without analytics)."""
        state = result.state
        if state is None:
            return None
        for event in result.events:
            if event.get("type") in ALARMS and isinstance(event.get("person"), int):
                self._kinds[event["person"]] = str(event["type"])
        people: list[dict[str, Any]] = list(state.get("people", ()))
        known = {p["id"] for p in people}
        self._kinds = {k: v for k, v in self._kinds.items() if k in known}
        return self._fallen(people), self._posture(result, people)

    def _fallen(self, people: list[dict[str, Any]]) -> bytes:
        down = next((p for p in people if p.get("fallen")), None)
        if down is None:
            data: dict[str, Any] = {"fallen": False, "kind": None, "person": None, "zone": None}
        else:
            zones = down.get("zones") or [None]
            kind = self._kinds.get(down["id"], str(EventType.FALL))
            data = {"fallen": True, "kind": kind, "person": down["id"], "zone": zones[0]}
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
