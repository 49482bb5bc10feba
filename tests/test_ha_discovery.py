"""Every discovery payload, field by field, against Home Assistant's own MQTT schemas.

The field lists below follow homeassistant/components/mqtt in Home Assistant core (read there, written out
here): ``schemas.py`` (``MQTT_ENTITY_COMMON_SCHEMA``: availability list and mode, device, origin,
enabled_by_default, entity_category, icon, json_attributes_topic/_template, object_id, unique_id),
``config.py`` (``MQTT_BASE_SCHEMA``: qos, encoding; ``MQTT_RO_SCHEMA``: state_topic required, value_template;
``MQTT_RW_SCHEMA``: command_topic required, optimistic, retain, state_topic) and the platforms' own schemas:
``binary_sensor.py``, ``sensor.py``, ``event.py``, ``switch.py``, ``select.py``, ``button.py``, ``image.py``
(image_topic or url_topic, exclusive; content_type, image_encoding). Discovery drops a key it does not know
without a word (``extra=REMOVE_EXTRA``), so a misspelt key would silently do nothing: every key must be one of
these. Values are checked as the schemas check them (``cv.positive_int``, ``cv.icon``,
``cv.configuration_url``, ``ENTITY_CATEGORIES_SCHEMA``, the availability modes), and a select must not offer
``none``: ``select.py`` reads a state ``none`` (any case) as unknown.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import pytest

from edgepose.config import PreviewConfig
from edgepose.config.preview_access import preview_url
from edgepose.control import CONTROLS, Controls
from edgepose.pose import BackendInfo
from edgepose.sinks.mqtt.homeassistant import Discovery, discovery_configs
from edgepose.sinks.mqtt.topics import Topics

#: schemas.py: MQTT_AVAILABILITY_SCHEMA and MQTT_ENTITY_COMMON_SCHEMA; config.py: MQTT_BASE_SCHEMA.
COMMON = {"availability", "availability_mode", "availability_template", "availability_topic", "payload_available",
          "payload_not_available", "device", "origin", "enabled_by_default", "entity_category", "icon",
          "json_attributes_topic", "json_attributes_template", "object_id", "default_entity_id", "unique_id",
          "name", "qos", "encoding"}  # fmt: skip
RO = {"state_topic", "value_template"}  # config.py: MQTT_RO_SCHEMA
RW = {"command_topic", "optimistic", "retain", "state_topic"}  # config.py: MQTT_RW_SCHEMA
#: Each platform's accepted keys and its required ones.
PLATFORMS: dict[str, tuple[set[str], set[str]]] = {
    "binary_sensor": (COMMON | RO | {"device_class", "expire_after", "force_update", "off_delay", "payload_off",
                                     "payload_on"}, {"state_topic"}),
    "sensor": (COMMON | RO | {"device_class", "expire_after", "force_update", "last_reset_value_template", "options",
                              "state_class", "suggested_display_precision", "unit_of_measurement"}, {"state_topic"}),
    "event": (COMMON | RO | {"device_class", "event_types"}, {"state_topic", "event_types"}),
    "switch": (COMMON | RW | {"command_template", "payload_off", "payload_on", "state_off", "state_on",
                              "value_template", "device_class"}, {"command_topic"}),
    "select": (COMMON | RW | {"command_template", "options", "value_template"}, {"command_topic", "options"}),
    "button": (COMMON | {"command_template", "command_topic", "device_class", "payload_press", "retain"},
               {"command_topic"}),
    "image": (COMMON | {"content_type", "image_encoding", "image_topic", "url_template", "url_topic"}, set()),
}  # fmt: skip
#: schemas.py: MQTT_ENTITY_DEVICE_INFO_SCHEMA and MQTT_ORIGIN_INFO_SCHEMA.
DEVICE_KEYS = {"identifiers", "connections", "manufacturer", "model", "model_id", "name", "hw_version",
               "serial_number", "sw_version", "via_device", "suggested_area", "configuration_url"}  # fmt: skip
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
AVAILABILITY_KEYS = {"topic", "payload_available", "payload_not_available", "value_template"}
#: Home Assistant's device classes used here (binary_sensor/__init__.py BinarySensorDeviceClass).
BINARY_SENSOR_CLASSES = {"occupancy", "safety", "connectivity"}
BASE, NODE = "edgepose/cam1", "edgepose_cam1"
INFO = BackendInfo("ai_edge_litert", "xnnpack", 2, "m.tflite")


def every_control() -> Controls:
    controls = Controls()
    for control in CONTROLS:
        controls.handle(control.name, lambda _value: None)
    return controls


ZONES = ("bed", "Front-door")


def configs(exercise: str = "squat", url: str = "", zones: tuple[str, ...] = ZONES) -> dict[str, dict[str, Any]]:
    """The announced configs by ``component/object_id`` (empty payloads: ``{}``)."""
    settings = Discovery(30.0, exercise, every_control().enabled(), url, snapshots=True, zones=zones)
    found = {}
    for topic, payload in discovery_configs(Topics("edgepose", "cam1"), INFO, settings):
        prefix, component, node, object_id, leaf = topic.split("/")
        assert (prefix, node, leaf) == ("homeassistant", NODE, "config"), topic
        found[f"{component}/{object_id}"] = json.loads(payload) if payload else {}
    return found


def check_schema(component: str, config: dict[str, Any]) -> None:
    """Check one payload as Home Assistant's discovery schema for ``component`` would."""
    accepted, required = PLATFORMS[component]
    assert set(config) <= accepted, (component, set(config) - accepted)
    assert required <= set(config), (component, required - set(config))
    assert config["unique_id"].startswith(NODE + "_") and isinstance(config["name"], str)
    availability = config["availability"]
    assert isinstance(availability, list) and availability
    for entry in availability:
        assert set(entry) <= AVAILABILITY_KEYS and entry["topic"].startswith(BASE + "/"), entry
    assert availability[0] == {"topic": f"{BASE}/status", "payload_available": "online",
                               "payload_not_available": "offline"}  # fmt: skip
    assert config.get("availability_mode", "latest") in ("all", "any", "latest")
    if len(availability) > 1:
        assert config["availability_mode"] == "all", "every topic must say available"
    assert "availability_topic" not in config, "exclusive with availability (schemas.py)"
    assert set(config["device"]) <= DEVICE_KEYS and config["device"]["identifiers"] == [NODE]
    assert set(config["origin"]) <= ORIGIN_KEYS and config["origin"]["name"] == "edgepose"
    if "expire_after" in config:
        assert isinstance(config["expire_after"], int) and config["expire_after"] > 0  # cv.positive_int
    if "entity_category" in config:
        assert config["entity_category"] in ("config", "diagnostic")  # ENTITY_CATEGORIES_SCHEMA
    if "icon" in config:
        assert re.fullmatch(r"mdi:[a-z0-9-]+", config["icon"]), config["icon"]  # cv.icon: prefix:name
    if "enabled_by_default" in config:
        assert isinstance(config["enabled_by_default"], bool)
    for key in ("state_topic", "command_topic", "json_attributes_topic"):
        if key in config:
            assert config[key].startswith(BASE + "/") and not {"+", "#"} & set(config[key]), config[key]
    if component == "binary_sensor" and "device_class" in config:
        assert config["device_class"] in BINARY_SENSOR_CLASSES
    if component == "sensor" and config.get("device_class") == "enum":
        # sensor/__init__.py: an enum sensor has options, and neither a state class nor a unit
        assert config["options"] and not {"state_class", "unit_of_measurement"} & set(config)
    if "options" in config and component == "sensor":
        assert config.get("device_class") == "enum", "sensor.py: options only with device_class enum"
    if component == "select":
        options = config["options"]
        assert options and all(isinstance(o, str) for o in options) and len(set(options)) == len(options)
        assert all(o.lower() != "none" for o in options), "select.py reads a state 'none' as unknown"


def test_every_payload_follows_home_assistants_schema() -> None:
    found = configs()
    announced = {key: config for key, config in found.items() if config}
    assert set(announced) == {"binary_sensor/person", "sensor/people", "binary_sensor/fallen", "event/fall",
                              "sensor/reps", "sensor/score", "binary_sensor/camera", "sensor/fps", "switch/detection",
                              "select/exercise", "button/reset_reps", "button/snapshot",
                              "image/snapshot_image", "sensor/posture", "binary_sensor/zone_bed_occupancy",
                              "sensor/zone_bed_count", "binary_sensor/zone_front_door_occupancy",
                              "sensor/zone_front_door_count"}  # fmt: skip
    for key, config in announced.items():
        check_schema(key.split("/")[0], config)
    assert len({c["unique_id"] for c in announced.values()}) == len(announced)


def availability_of(config: dict[str, Any]) -> list[str]:
    return [entry["topic"] for entry in config["availability"]]


def test_the_new_entities_field_by_field() -> None:
    found = configs()
    shared = {"device", "origin", "unique_id", "availability", "availability_mode"}

    def own(key: str) -> dict[str, Any]:
        return {k: v for k, v in found[key].items() if k not in shared}

    assert own("switch/detection") == {
        "name": "Detection", "command_topic": f"{BASE}/set/detection", "state_topic": f"{BASE}/detection",
        "payload_on": "ON", "payload_off": "OFF", "icon": "mdi:eye"}  # fmt: skip
    assert own("select/exercise") == {
        "name": "Exercise", "command_topic": f"{BASE}/set/exercise", "state_topic": f"{BASE}/exercise",
        "options": ["off", "squat", "pushup", "jumping_jack"], "icon": "mdi:dumbbell",
        "entity_category": "config"}  # fmt: skip
    assert own("button/reset_reps") == {
        "name": "Reset repetitions", "command_topic": f"{BASE}/set/reset_reps", "payload_press": "PRESS",
        "icon": "mdi:counter", "entity_category": "config"}  # fmt: skip
    assert own("binary_sensor/camera") == {
        "name": "Camera", "state_topic": f"{BASE}/camera", "device_class": "connectivity",
        "value_template": "{{ 'ON' if value_json.state == 'ok' else 'OFF' }}", "payload_on": "ON",
        "payload_off": "OFF", "json_attributes_topic": f"{BASE}/camera", "entity_category": "diagnostic"}  # fmt: skip
    for control in ("switch/detection", "select/exercise", "button/reset_reps"):
        assert availability_of(found[control]) == [f"{BASE}/status"], "commands work while paused or stale"
    # the answers drawn from frames: unavailable while they are not current (<base>/analysis)
    for answer in (
        "binary_sensor/person",
        "sensor/people",
        "binary_sensor/fallen",
        "event/fall",
        "sensor/reps",
        "sensor/score",
        "sensor/posture",
        "binary_sensor/zone_bed_occupancy",
        "sensor/zone_bed_count",
    ):
        assert availability_of(found[answer]) == [f"{BASE}/status", f"{BASE}/analysis"], answer
        assert found[answer]["availability"][1]["payload_available"] == "online"
    # the camera and the frame rate: unavailable while detection is off (nothing about them is published then)
    for health in ("binary_sensor/camera", "sensor/fps"):
        assert found[health]["availability"][1] == {"topic": f"{BASE}/detection", "payload_available": "ON",
                                                     "payload_not_available": "OFF"}  # fmt: skip


def test_the_small_points() -> None:
    found = configs()
    score = found["sensor/score"]
    assert score["state_topic"] == f"{BASE}/stats" and score["value_template"] == "{{ value_json.score }}"
    assert score["icon"] == "mdi:human", "the pose score has an icon"
    reps = found["sensor/reps"]
    assert (
        reps["json_attributes_topic"] == f"{BASE}/state" and "value_json.exercise" in reps["json_attributes_template"]
    )
    fall = found["event/fall"]["value_template"]
    assert "value_json.confidence is defined" in fall and "| default(none)" not in fall, "recovered: no confidence null"
    # without an exercise, Repetitions is not announced: its config is emptied (removed in Home Assistant)
    assert configs(exercise="off")["sensor/reps"] == {}
    assert "configuration_url" not in found["switch/detection"]["device"]
    with_url = configs(url="http://cam1.lan:8080/")
    assert {c["device"]["configuration_url"] for c in with_url.values() if c} == {"http://cam1.lan:8080/"}


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("", ""),
        ("8080", ""),  # loopback: no other machine can open it
        ("127.0.0.1:8080", ""),
        ("0", ""),  # any free port: unknown before it binds
        ("192.168.1.20:8080", "http://192.168.1.20:8080/"),
        ("[fd00::20]:8080", "http://[fd00::20]:8080/"),
        ("0.0.0.0:8080", f"http://{socket.gethostname()}:8080/"),
        (":9000", f"http://{socket.gethostname()}:9000/"),
    ],
)
def test_configuration_url_is_the_preview_for_other_machines(listen: str, expected: str) -> None:
    assert preview_url(PreviewConfig(listen=listen, token="t")) == expected


def test_zones_posture_and_fallen_field_by_field() -> None:
    found = configs()
    shared = {"device", "origin", "unique_id", "availability", "availability_mode"}

    def own(key: str) -> dict[str, Any]:
        return {k: v for k, v in found[key].items() if k not in shared}

    # one occupancy binary_sensor and one count sensor per zone, on <base>/state's "zones", like person/people
    assert own("binary_sensor/zone_front_door_occupancy") == {
        "name": "Zone Front-door", "state_topic": f"{BASE}/state", "device_class": "occupancy",
        "value_template": "{% if 'Front-door' in value_json.zones %}"
                          "{{ 'ON' if value_json.zones['Front-door'] > 0 else 'OFF' }}{% else %}None{% endif %}",
        "payload_on": "ON", "payload_off": "OFF", "expire_after": 90}  # fmt: skip
    assert own("sensor/zone_front_door_count") == {
        "name": "Zone Front-door people", "state_topic": f"{BASE}/state", "state_class": "measurement",
        "value_template": "{% if 'Front-door' in value_json.zones %}{{ value_json.zones['Front-door'] }}"
                          "{% else %}None{% endif %}",
        "icon": "mdi:account-group", "expire_after": 90}  # fmt: skip
    people = own("sensor/people")
    assert "unit_of_measurement" not in people and own("sensor/zone_bed_count")["icon"] == people["icon"]
    for key in ("binary_sensor/zone_bed_occupancy", "sensor/zone_bed_count"):
        assert found[key]["availability"] == found["binary_sensor/person"]["availability"], "the same truth rules"
        assert found[key]["unique_id"] == f"{NODE}_{key.split('/')[1]}"
    assert own("sensor/posture") == {
        "name": "Posture", "state_topic": f"{BASE}/posture", "value_template": "{{ value_json.posture or 'None' }}",
        "device_class": "enum", "options": ["standing", "sitting", "lying", "unknown"],
        "icon": "mdi:human-handsdown", "json_attributes_topic": f"{BASE}/posture",
        "json_attributes_template": "{{ {'person': value_json.person} | tojson }}", "expire_after": 90}  # fmt: skip
    assert own("binary_sensor/fallen") == {
        "name": "Fallen", "state_topic": f"{BASE}/fallen", "device_class": "safety",
        "value_template": "{{ 'None' if value_json.fallen is none else ('ON' if value_json.fallen else 'OFF') }}",
        "payload_on": "ON", "payload_off": "OFF",
        "json_attributes_topic": f"{BASE}/fallen",
        "json_attributes_template": "{{ {'kind': value_json.kind, 'person': value_json.person, "
                                    "'zone': value_json.zone} | tojson }}",
        "expire_after": 90}  # fmt: skip
    assert found["event/fall"]["event_types"] == ["fall", "long_lie", "recovered"]
    # without zones, no zone entities; a zone removed since the last start: its two configs emptied
    assert not [key for key in configs(zones=()) if "zone_" in key]
    settings = Discovery(30.0, zones=("bed",), removed_zones=("Front-door",))
    emptied = {
        t.split("/")[3]: p for t, p in discovery_configs(Topics("edgepose", "cam1"), INFO, settings) if "zone_" in t
    }
    assert emptied["zone_front_door_occupancy"] == emptied["zone_front_door_count"] == b""
    assert emptied["zone_bed_occupancy"] and emptied["zone_bed_count"]
