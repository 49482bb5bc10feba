"""Event type names have one home, :class:`edgepose.events.EventType`: the analytics, Home Assistant's
discovery and the preview page all take them from there."""

from __future__ import annotations

import json
import re

from edgepose.events import EventType
from edgepose.sinks.mqtt.homeassistant import FALL_EVENT_TEMPLATE, FALL_EVENTS
from edgepose.sinks.preview.page import PAGE


def test_event_types_are_their_names_in_json_and_text() -> None:
    names = ["person_entered", "person_left", "fall", "recovered", "rep", "long_lie", "zone_entered", "zone_left"]
    assert [e.value for e in EventType] == names
    assert json.dumps({"type": EventType.FALL}) == '{"type": "fall"}'
    assert f"{EventType.REP}" == "rep" and EventType.PERSON_LEFT == "person_left"
    assert "person_left" in {EventType.PERSON_LEFT}


def test_home_assistant_takes_the_fall_events_from_the_enum() -> None:
    assert FALL_EVENTS == (EventType.FALL, EventType.LONG_LIE, EventType.RECOVERED)
    assert f"in {[e.value for e in FALL_EVENTS]!r}" in FALL_EVENT_TEMPLATE


def test_the_page_gets_the_names_from_the_enum() -> None:
    script = PAGE.decode().split("<script>", 1)[1]
    table = re.search(r"const EVENT = (\{.*?\});", script)
    assert table is not None and json.loads(table.group(1)) == {e.name: e.value for e in EventType}
    rest = script.replace(table.group(0), "")
    assert [e.value for e in EventType if f'"{e.value}"' in rest] == [], "event names only through EVENT"
