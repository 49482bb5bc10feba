"""Home Assistant MQTT discovery: the table of entities edgepose announces, and Home Assistant's status topic.

Every entity is one row of :func:`entities`: its component, object id, its own fields and which
availability it follows (:class:`Gate`). The controls (switch, select, buttons) come from
:data:`edgepose.control.CONTROLS`, one entity each. :func:`discovery_configs` adds what every entity
carries (``unique_id``, ``device``, ``origin``, ``availability``) and turns the rows into retained
messages; an entity that is not wanted now (Repetitions without an exercise, a control without a
handler) gets an empty payload, which removes one announced before.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from edgepose import __version__
from edgepose.analytics.posture import LYING, SITTING, STANDING, UNKNOWN
from edgepose.config.zones import zone_slug
from edgepose.control import CONTROLS, NO_EXERCISE, OFF, ON, PRESS, Control, Kind
from edgepose.events import EventType
from edgepose.pose import BackendInfo
from edgepose.sinks.mqtt.topics import OFFLINE, ONLINE, PERSON_OFF, PERSON_ON, Topics
from edgepose.sinks.snapshot.sink import CONTENT_TYPE

HA_PREFIX = "homeassistant"
#: Home Assistant publishes ``online`` here when it (re)starts: discovery is sent again then.
HA_STATUS_TOPIC = f"{HA_PREFIX}/status"


#: The events of ``<base>/event`` the Home Assistant event entity shows; the others render empty and are ignored.
FALL_EVENTS = (EventType.FALL, EventType.LONG_LIE, EventType.RECOVERED)
#: ``fall`` and ``long_lie`` carry their confidence as an attribute; ``recovered`` has none, and gets no
#: ``confidence: null``.
FALL_EVENT_TEMPLATE = (
    f"{{% if value_json.type in {[e.value for e in FALL_EVENTS]!r} %}}"
    "{% if value_json.confidence is defined %}"
    "{{ {'event_type': value_json.type, 'confidence': value_json.confidence} | tojson }}"
    "{% else %}{{ {'event_type': value_json.type} | tojson }}{% endif %}"
    "{% endif %}"
)

#: The Fallen sensor's state: ``null`` (undecided after a restart, :mod:`.summary`) renders ``None``: unknown.
FALLEN_TEMPLATE = "{{ 'None' if value_json.fallen is none else ('ON' if value_json.fallen else 'OFF') }}"
#: The Fallen sensor's attributes: which alarm, whose, where (all ``null`` while off; whose, where while unknown).
FALLEN_ATTRIBUTES = "{{ {'kind': value_json.kind, 'person': value_json.person, 'zone': value_json.zone} | tojson }}"


class Gate(str, Enum):
    """What an entity's availability follows besides the process's ``<base>/status``.

    ``ANALYSIS``: also ``<base>/analysis`` (the answers drawn from frames: unavailable while not current);
    ``DETECTION``: also the Detection switch's state (the camera and frame rate: unavailable while paused).
    """

    STATUS = "status"
    ANALYSIS = "analysis"
    DETECTION = "detection"


@dataclass(frozen=True)
class Entity:
    """One row of the table: a Home Assistant entity edgepose announces.

    Attributes:
        component: The discovery component (``sensor``, ``binary_sensor``, ``event``, ``switch``, …).
        object_id: The last part of its ``unique_id`` and of its config topic.
        fields: Its own discovery fields (the shared ones are added by :func:`discovery_configs`).
        gate: What its availability follows besides ``<base>/status``.
        wanted: Announced now; ``False`` removes an earlier announcement (an empty retained config).
    """

    component: str
    object_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    gate: Gate = Gate.STATUS
    wanted: bool = True


@dataclass(frozen=True)
class Discovery:
    """What discovery depends on besides the topics and the backend.

    Attributes:
        stats_interval_s: Seconds between stats (and re-sent state) messages.
        exercise: The exercise being counted (:data:`~edgepose.control.NO_EXERCISE`: none, no Repetitions).
        controls: The controls that take commands (announced as switch, select, buttons).
        configuration_url: The device's link in Home Assistant (the preview), or ``""``.
        snapshots: Snapshots are made: an ``image`` "Snapshot" on ``<base>/snapshot`` (the JPEG's raw bytes, so
            no ``image_encoding``); its button is the :data:`~edgepose.control.SNAPSHOT` control.
        zones: The names of the ``[[zones]]``: an occupancy ``binary_sensor`` and a count ``sensor`` each.
        removed_zones: Zones announced before and gone from the config: their two configs are emptied.
    """

    stats_interval_s: float
    exercise: str = NO_EXERCISE
    controls: tuple[Control, ...] = ()
    configuration_url: str = ""
    snapshots: bool = False
    zones: tuple[str, ...] = ()
    removed_zones: tuple[str, ...] = ()


#: The Posture sensor's states (``device_class: enum``); nobody present is Home Assistant's own unknown (``None``).
POSTURES = (STANDING, SITTING, LYING, UNKNOWN)


def zone_templates(name: str) -> tuple[str, str]:
    """Return the value templates of a zone's occupancy and count, over ``state["zones"]``.

    A state without the zone (a retained state of an earlier config) renders ``None``: unknown, not 0.
    Zone names are letters, digits, ``_`` and ``-``, so they stand in a quoted Jinja string as they are.
    """
    known = f"'{name}' in value_json.zones"
    count = f"value_json.zones['{name}']"
    return (f"{{% if {known} %}}{{{{ 'ON' if {count} > 0 else 'OFF' }}}}{{% else %}}None{{% endif %}}",
            f"{{% if {known} %}}{{{{ {count} }}}}{{% else %}}None{{% endif %}}")  # fmt: skip


def zone_entities(topics: Topics, name: str, expire: int, wanted: bool = True) -> list[Entity]:
    """Return a zone's rows: "Zone <name>" (occupancy) and "Zone <name> people" (the count), on ``<base>/state``."""
    slug = zone_slug(name)
    occupied, count = zone_templates(name)
    return [
        Entity("binary_sensor", f"zone_{slug}_occupancy", {
            "name": f"Zone {name}", "state_topic": topics.state, "value_template": occupied,
            "payload_on": PERSON_ON, "payload_off": PERSON_OFF, "device_class": "occupancy",
            "expire_after": expire}, Gate.ANALYSIS, wanted),
        Entity("sensor", f"zone_{slug}_count", {
            "name": f"Zone {name} people", "state_topic": topics.state, "value_template": count,
            "state_class": "measurement", "icon": "mdi:account-group", "expire_after": expire}, Gate.ANALYSIS,
            wanted),
    ]  # fmt: skip


def expire_after(stats_interval_s: float) -> int:
    """Seconds after which Home Assistant marks a sensor unavailable: three missed stats periods."""
    return max(60, math.ceil(3 * stats_interval_s))


def entities(topics: Topics, settings: Discovery) -> list[Entity]:
    """Return the table of entities, in the order Home Assistant lists them.

    Presence is an occupancy ``binary_sensor`` on ``<base>/person``; falls are an ``event`` entity (``fall``,
    ``long_lie``, ``recovered``) on ``<base>/event`` plus a safety ``binary_sensor`` "Fallen" on ``<base>/fallen``
    (a fall or a long lie; attributes ``kind``, ``person``, ``zone``); "Posture" an ``enum`` sensor on
    ``<base>/posture`` (the most prominent person, :mod:`.summary`); each zone an occupancy ``binary_sensor``
    and a count ``sensor`` on ``<base>/state`` (:func:`zone_entities`);
    repetitions a ``total_increasing`` sensor on ``<base>/state`` with the exercise as an attribute; the pose
    score and the frame rate come from ``<base>/stats`` (a few rows an hour in the recorder, not one per
    frame); "Camera" is a ``connectivity`` binary sensor on ``<base>/camera``. ``expire_after`` only where a
    topic is re-sent on a schedule (every stats interval).
    """
    expire = expire_after(settings.stats_interval_s)
    table = [
        Entity("binary_sensor", "person", {
            "name": "Person", "state_topic": topics.person, "payload_on": PERSON_ON, "payload_off": PERSON_OFF,
            "device_class": "occupancy", "expire_after": expire}, Gate.ANALYSIS),
        Entity("sensor", "people", {
            "name": "People", "state_topic": topics.people, "state_class": "measurement",
            "icon": "mdi:account-group", "expire_after": expire}, Gate.ANALYSIS),
        Entity("binary_sensor", "fallen", {
            "name": "Fallen", "state_topic": topics.fallen, "device_class": "safety",
            "value_template": FALLEN_TEMPLATE, "payload_on": PERSON_ON,
            "payload_off": PERSON_OFF, "json_attributes_topic": topics.fallen,
            "json_attributes_template": FALLEN_ATTRIBUTES, "expire_after": expire}, Gate.ANALYSIS),
        Entity("sensor", "posture", {
            "name": "Posture", "state_topic": topics.posture, "value_template": "{{ value_json.posture or 'None' }}",
            "device_class": "enum", "options": list(POSTURES), "icon": "mdi:human-handsdown",
            "json_attributes_topic": topics.posture,
            "json_attributes_template": "{{ {'person': value_json.person} | tojson }}", "expire_after": expire},
            Gate.ANALYSIS),
        Entity("event", "fall", {
            "name": "Fall", "state_topic": topics.event, "event_types": [e.value for e in FALL_EVENTS],
            "value_template": FALL_EVENT_TEMPLATE}, Gate.ANALYSIS),
        Entity("sensor", "reps", {
            "name": "Repetitions", "state_topic": topics.state, "value_template": "{{ value_json.reps }}",
            "state_class": "total_increasing", "icon": "mdi:counter", "json_attributes_topic": topics.state,
            "json_attributes_template": "{{ {'exercise': value_json.exercise} | tojson }}", "expire_after": expire},
            Gate.ANALYSIS, wanted=settings.exercise != NO_EXERCISE),
        Entity("sensor", "score", {
            "name": "Pose score", "state_topic": topics.stats, "value_template": "{{ value_json.score }}",
            "state_class": "measurement", "suggested_display_precision": 2, "icon": "mdi:human",
            "expire_after": expire}, Gate.ANALYSIS),
        Entity("binary_sensor", "camera", {
            "name": "Camera", "state_topic": topics.camera, "device_class": "connectivity",
            "value_template": "{{ 'ON' if value_json.state == 'ok' else 'OFF' }}", "payload_on": PERSON_ON,
            "payload_off": PERSON_OFF, "json_attributes_topic": topics.camera, "entity_category": "diagnostic"},
            Gate.DETECTION),
        Entity("sensor", "fps", {
            "name": "Frame rate", "state_topic": topics.stats, "value_template": "{{ value_json.fps }}",
            "unit_of_measurement": "fps", "state_class": "measurement", "entity_category": "diagnostic",
            "expire_after": expire}, Gate.DETECTION),
        Entity("image", "snapshot_image", {
            "name": "Snapshot", "image_topic": topics.snapshot, "content_type": CONTENT_TYPE,
            "icon": "mdi:image-filter-center-focus"}, wanted=settings.snapshots),
    ]  # fmt: skip
    for name in settings.zones:
        table += zone_entities(topics, name, expire)
    for name in settings.removed_zones:
        table += zone_entities(topics, name, expire, wanted=False)
    enabled = {control.name for control in settings.controls}
    table += [_control_entity(topics, control, control.name in enabled) for control in CONTROLS]
    return table


def _control_entity(topics: Topics, control: Control, wanted: bool) -> Entity:
    """Return a control's row: a switch, a select or a button on ``<base>/set/<name>``."""
    fields: dict[str, Any] = {"name": control.label, "command_topic": topics.command(control.name),
                              "icon": control.icon}  # fmt: skip
    if control.category:
        fields["entity_category"] = control.category
    if control.kind is Kind.SWITCH:
        fields |= {"state_topic": topics.control(control.name), "payload_on": ON, "payload_off": OFF}
    elif control.kind is Kind.SELECT:
        fields |= {"state_topic": topics.control(control.name), "options": list(control.options)}
    else:
        fields["payload_press"] = PRESS
    return Entity(control.kind.value, control.name, fields, Gate.STATUS, wanted)


def _availability(topics: Topics, gate: Gate) -> dict[str, Any]:
    """Return the ``availability`` fields of an entity behind ``gate``."""
    status = {"topic": topics.status, "payload_available": ONLINE, "payload_not_available": OFFLINE}
    if gate is Gate.ANALYSIS:
        extra = {"topic": topics.analysis, "payload_available": ONLINE, "payload_not_available": OFFLINE}
    elif gate is Gate.DETECTION:
        extra = {"topic": topics.control("detection"), "payload_available": ON, "payload_not_available": OFF}
    else:
        return {"availability": [status]}
    return {"availability": [status, extra], "availability_mode": "all"}


def discovery_configs(topics: Topics, info: BackendInfo, settings: Discovery) -> list[tuple[str, bytes]]:
    """Return every entity's config topic and payload (empty for one not wanted now), to publish retained at QoS 1.

    Args:
        topics: The device's topics.
        info: What runs the model (the device's ``model``).
        settings: What else discovery depends on.
    """
    node = f"edgepose_{topics.device}"
    device: dict[str, Any] = {
        "identifiers": [node],
        "name": f"edgepose {topics.device}",
        "manufacturer": "edgepose",
        "model": f"pose estimation ({info.model} on {info.delegate})",
        "sw_version": __version__,
    }
    if settings.configuration_url:
        device["configuration_url"] = settings.configuration_url
    common = {"device": device, "origin": {"name": "edgepose", "sw_version": __version__}}
    configs = []
    for entity in entities(topics, settings):
        topic = f"{HA_PREFIX}/{entity.component}/{node}/{entity.object_id}/config"
        if not entity.wanted:
            configs.append((topic, b""))
            continue
        payload = {**entity.fields, "unique_id": f"{node}_{entity.object_id}", **_availability(topics, entity.gate),
                   **common}  # fmt: skip
        configs.append((topic, json.dumps(payload, separators=(",", ":")).encode()))
    return configs
