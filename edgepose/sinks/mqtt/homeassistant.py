"""Home Assistant MQTT discovery: the entities edgepose announces, and Home Assistant's own status topic."""

from __future__ import annotations

import json
import math
from typing import Any

from edgepose import __version__
from edgepose.events import EventType
from edgepose.pose import BackendInfo
from edgepose.sinks.mqtt.topics import OFFLINE, ONLINE, PERSON_OFF, PERSON_ON, PRESS, SNAPSHOT_COMMAND, Topics
from edgepose.sinks.snapshot.sink import CONTENT_TYPE

HA_PREFIX = "homeassistant"
#: Home Assistant publishes ``online`` here when it (re)starts: discovery is sent again then.
HA_STATUS_TOPIC = f"{HA_PREFIX}/status"


#: The events of ``<base>/event`` the Home Assistant event entity shows; the others render empty and are ignored.
FALL_EVENTS = (EventType.FALL, EventType.RECOVERED)
FALL_EVENT_TEMPLATE = (
    f"{{% if value_json.type in {[e.value for e in FALL_EVENTS]!r} %}}"
    "{{ {'event_type': value_json.type, 'confidence': value_json.confidence | default(none)} | tojson }}"
    "{% endif %}"
)


def expire_after(stats_interval_s: float) -> int:
    """Seconds after which Home Assistant marks a sensor unavailable: three missed stats periods."""
    return max(60, math.ceil(3 * stats_interval_s))


def discovery_configs(topics: Topics, info: BackendInfo, stats_interval_s: float, only_person: bool = False,
                      max_rate: float = 0.0, snapshots: bool = False) -> list[tuple[str, bytes]]:  # fmt: skip
    """Home Assistant MQTT discovery: presence, people count, falls, repetitions, pose score, frame rate, snapshots.

    Presence is an occupancy ``binary_sensor`` on ``<base>/person``; falls are an ``event`` entity
    (``fall``, ``recovered``) on ``<base>/event`` plus a safety ``binary_sensor`` "Fallen" on
    ``<base>/state``; repetitions are a ``total_increasing`` sensor on ``<base>/state``.

    Every entity has ``expire_after`` only where its topic is refreshed on a schedule: ``person``, ``people``,
    ``state`` and ``stats`` every stats interval, ``pose`` every frame (at most ``max_rate`` per second). With
    ``only_person`` the pose topic legitimately goes quiet while nobody is in view, so the score sensor
    has no ``expire_after`` (it keeps its last value; ``availability`` still follows the process). The
    fall event entity is stateless: nothing to expire.

    Args:
        topics: The device's topics.
        info: What runs the model.
        stats_interval_s: Seconds between stats (and person) messages.
        only_person: Pose messages are sent only while a person is in view.
        max_rate: Most pose messages per second (0: every frame).
        snapshots: Snapshots are made: an ``image`` "Snapshot" on ``<base>/snapshot`` (the JPEG's raw bytes,
            so no ``image_encoding``) and a ``button`` "Snapshot" that asks for one on ``<base>/set/snapshot``.

    Returns:
        ``(topic, payload)`` pairs to publish retained at QoS 1.
    """
    node = f"edgepose_{topics.device}"
    expire = expire_after(stats_interval_s)
    score_expire: dict[str, Any] = {}
    if not only_person:
        score_expire["expire_after"] = max(expire, math.ceil(3 / max_rate) if max_rate > 0 else 0)
    common: dict[str, Any] = {
        "availability": [
            {"topic": topics.status, "payload_available": ONLINE, "payload_not_available": OFFLINE},
        ],
        "device": {
            "identifiers": [node],
            "name": f"edgepose {topics.device}",
            "manufacturer": "edgepose",
            "model": f"pose estimation ({info.model} on {info.delegate})",
            "sw_version": __version__,
        },
        "origin": {"name": "edgepose", "sw_version": __version__},
    }
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("binary_sensor", "person", {
            "name": "Person", "state_topic": topics.person, "payload_on": PERSON_ON,
            "payload_off": PERSON_OFF, "device_class": "occupancy", "expire_after": expire}),
        ("sensor", "people", {
            "name": "People", "state_topic": topics.people, "state_class": "measurement",
            "icon": "mdi:account-group", "expire_after": expire}),
        ("sensor", "score", {
            "name": "Pose score", "state_topic": topics.pose, "value_template": "{{ value_json.score }}",
            "state_class": "measurement", "suggested_display_precision": 2, **score_expire}),
        ("binary_sensor", "fallen", {
            "name": "Fallen", "state_topic": topics.state, "device_class": "safety",
            "value_template": "{{ 'ON' if value_json.fallen else 'OFF' }}", "payload_on": PERSON_ON,
            "payload_off": PERSON_OFF, "expire_after": expire}),
        ("sensor", "reps", {
            "name": "Repetitions", "state_topic": topics.state, "value_template": "{{ value_json.reps }}",
            "state_class": "total_increasing", "icon": "mdi:counter", "expire_after": expire}),
        ("event", "fall", {
            "name": "Fall", "state_topic": topics.event, "event_types": [e.value for e in FALL_EVENTS],
            "value_template": FALL_EVENT_TEMPLATE}),
        ("sensor", "fps", {
            "name": "Frame rate", "state_topic": topics.stats, "value_template": "{{ value_json.fps }}",
            "unit_of_measurement": "fps", "state_class": "measurement", "entity_category": "diagnostic",
            "expire_after": expire}),
    ]  # fmt: skip
    if snapshots:
        entities += [
            ("image", "snapshot", {"name": "Snapshot", "image_topic": topics.snapshot, "content_type": CONTENT_TYPE,
                                   "icon": "mdi:image-filter-center-focus"}),
            ("button", "snapshot_button", {
                "name": "Snapshot", "command_topic": topics.command(SNAPSHOT_COMMAND), "payload_press": PRESS,
                "qos": 1, "retain": False, "icon": "mdi:camera"}),
        ]  # fmt: skip
    configs = []
    for component, object_id, specific in entities:
        payload = {**specific, "unique_id": f"{node}_{object_id}", **common}
        topic = f"{HA_PREFIX}/{component}/{node}/{object_id}/config"
        configs.append((topic, json.dumps(payload, separators=(",", ":")).encode()))
    return configs
