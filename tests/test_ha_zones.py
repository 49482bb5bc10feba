"""Zones, posture and Fallen in Home Assistant, end to end: real clips, the real model, a real mosquitto.

A person standing in a zone for a while, then gone: the zone's occupancy and count go 0, 1, 0 on
``<base>/state`` (what its entities' templates read), ``zone_entered``/``zone_left`` come on ``<base>/event``
and the Posture sensor's topic says ``standing`` for that person, then nobody. A person lying on the floor
from the first frame: Fallen's topic says a ``long_lie`` of person 1 in the zone ``floor``, then nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from broker import Broker, Subscriber, free_port, retained
from clips import render_tilted, write_frames, write_visit_clip
from conftest import model_args, run_cli
from stickfigure import segments

from edgepose.config import MqttConfig
from edgepose.health import PipelineStats
from edgepose.pose import BackendInfo, Pose, PoseResult
from edgepose.sinks.mqtt.announce import Device, keep_zones, removed_zones
from edgepose.sinks.mqtt.outbox import MqttCounters
from edgepose.sinks.mqtt.summary import Summary
from edgepose.sinks.mqtt.topics import Topics
from edgepose.sinks.mqtt.worker import Worker

BASE = "edgepose/zones"
NODE = "edgepose_zones"
NOBODY = {"posture": None, "person": None}
NOT_FALLEN = {"fallen": False, "kind": None, "person": None, "zone": None}
INFO = BackendInfo("ai_edge_litert", "xnnpack", 2, "m.tflite")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as b:
        yield b


def _changes(payloads: list[bytes]) -> list[Any]:
    """The decoded payloads, each repeat of the one before left out."""
    decoded = [json.loads(p) for p in payloads]
    return [d for i, d in enumerate(decoded) if i == 0 or d != decoded[i - 1]]


def _run(broker: Broker, config: Path, clip: Path, models_dir: Path) -> Subscriber:
    sub = Subscriber(broker.port)
    proc = run_cli("run", "--config", str(config), "--source", str(clip), "--mqtt", f"mqtt://127.0.0.1:{broker.port}",
                   "--device-id", "zones", "--ha-discovery", "--state-dir", str(config.parent / "state"),
                   *model_args(models_dir))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sub.wait_for(lambda s: s.on(f"{BASE}/status")[-1:] == [b"offline"])
    return sub


def _config(broker: Broker, component: str, object_id: str) -> dict[str, Any]:
    payload = retained(broker.port, f"homeassistant/{component}/{NODE}/{object_id}/config")
    assert payload, (component, object_id)
    return dict(json.loads(payload))


@pytest.mark.slow
def test_a_visit_through_a_zone_over_a_real_broker(
    broker: Broker, models_dir: Path, testdata: Path, tmp_path: Path
) -> None:
    person = np.ascontiguousarray(cv2.imread(str(testdata / "woman_standing.png"))[:, :, :3])
    clip = write_visit_clip(tmp_path / "visit.avi", person, 30, 90, 60)  # 2 s empty, 6 s standing, 4 s empty
    config = tmp_path / "edgepose.toml"
    config.write_text('[[zones]]\nname = "middle"\npolygon = [[0.3, 0.2], [0.7, 0.2], [0.7, 0.8], [0.3, 0.8]]\n'
                      '[[zones]]\nname = "Far-corner"\npolygon = [[0, 0], [0.1, 0], [0.1, 0.1]]\n')  # fmt: skip
    sub = _run(broker, config, clip, models_dir)

    # discovery: an occupancy binary_sensor and a count sensor per zone, ids from the zone's name
    for slug, name in (("middle", "middle"), ("far_corner", "Far-corner")):
        occupancy = _config(broker, "binary_sensor", f"zone_{slug}_occupancy")
        assert (occupancy["name"], occupancy["device_class"], occupancy["state_topic"], occupancy["unique_id"]) == (
            f"Zone {name}",
            "occupancy",
            f"{BASE}/state",
            f"{NODE}_zone_{slug}_occupancy",
        )
        assert f"value_json.zones['{name}'] > 0" in occupancy["value_template"]
        count = _config(broker, "sensor", f"zone_{slug}_count")
        assert (count["name"], count["state_class"], count["state_topic"], count["unique_id"]) == (
            f"Zone {name} people",
            "measurement",
            f"{BASE}/state",
            f"{NODE}_zone_{slug}_count",
        )
        assert "unit_of_measurement" not in count and "device_class" not in count
        for entity in (occupancy, count):
            assert [a["topic"] for a in entity["availability"]] == [f"{BASE}/status", f"{BASE}/analysis"]
            assert entity["expire_after"] == 90 and entity["device"]["identifiers"] == [NODE]
    posture = _config(broker, "sensor", "posture")
    assert posture["device_class"] == "enum" and posture["options"] == ["standing", "sitting", "lying", "unknown"]

    # the zone's count (and so its occupancy) goes 0, 1, 0 on <base>/state; the other zone stays 0
    states = [json.loads(p) for p in sub.on(f"{BASE}/state")]
    middle = [s["zones"]["middle"] for s in states]
    assert [c for i, c in enumerate(middle) if i == 0 or c != middle[i - 1]] == [0, 1, 0]
    assert {s["zones"]["Far-corner"] for s in states} == {0}
    assert json.loads(retained(broker.port, f"{BASE}/state") or b"{}")["zones"] == {"middle": 0, "Far-corner": 0}
    # the events of item 7 on <base>/event: the person's id, the zone's name
    events = [json.loads(p) for p in sub.on(f"{BASE}/event")]
    assert [(e["type"], e.get("zone"), e["person"]) for e in events] == [
        ("person_entered", None, 1), ("zone_entered", "middle", 1), ("zone_left", "middle", 1),
        ("person_left", None, 1)]  # fmt: skip
    assert any(s["people"] and s["people"][0]["zones"] == ["middle"] for s in states)

    # Posture: nobody, then the person standing (id 1), then nobody; every value one of the options
    postures = _changes(sub.on(f"{BASE}/posture"))
    assert postures[0] == NOBODY and postures[-1] == NOBODY
    assert {"posture": "standing", "person": 1} in postures
    assert {p["posture"] for p in postures} <= {*posture["options"], None}
    assert json.loads(retained(broker.port, f"{BASE}/posture") or b"{}") == NOBODY
    assert _changes(sub.on(f"{BASE}/fallen")) == [NOT_FALLEN]
    sub.close()


@pytest.mark.slow
def test_fallen_after_a_long_lie_over_a_real_broker(
    broker: Broker, models_dir: Path, testdata: Path, tmp_path: Path
) -> None:
    """The real photo lying on the floor from the first frame (6 s), getting up (1.5 s), standing (3 s)."""
    person = cv2.imread(str(testdata / "woman_standing.png"), cv2.IMREAD_UNCHANGED)
    tilt = segments((6.0, 88.0, 88.0), (1.5, 88.0, 0.0), (3.0, 0.0, 0.0))
    clip = write_frames(tmp_path / "lie.avi", [render_tilted(person, tilt(i / 15)) for i in range(round(10.5 * 15))])
    config = tmp_path / "edgepose.toml"
    config.write_text('[analytics]\nlong_lie_s = 3.0\n\n'
                      '[[zones]]\nname = "floor"\npolygon = [[0, 0.65], [1, 0.65], [1, 1], [0, 1]]\n')  # fmt: skip
    sub = _run(broker, config, clip, models_dir)

    fallen = _config(broker, "binary_sensor", "fallen")
    assert fallen["state_topic"] == fallen["json_attributes_topic"] == f"{BASE}/fallen"
    assert fallen["device_class"] == "safety"
    changes = _changes(sub.on(f"{BASE}/fallen"))
    down = [c for c in changes if c["fallen"]]
    # lying since the start: unknown (not "not fallen") until the long lie decides, then up again
    assert changes[0] == {"fallen": None, "kind": None, "person": 1, "zone": "floor"}, changes
    assert changes[-1] == NOT_FALLEN and False not in [c["fallen"] for c in changes[: changes.index(down[0])]]
    assert down and down[0] == {"fallen": True, "kind": "long_lie", "person": 1, "zone": "floor"}
    assert all(c["kind"] == "long_lie" and c["person"] == 1 for c in down)
    assert json.loads(retained(broker.port, f"{BASE}/fallen") or b"{}") == NOT_FALLEN
    events = [json.loads(p) for p in sub.on(f"{BASE}/event")]
    lie = next(e for e in events if e["type"] == "long_lie")
    assert lie["person"] == 1 and 0.0 <= lie["confidence"] <= 1.0
    assert "fall" not in [e["type"] for e in events]
    states = [json.loads(p) for p in sub.on(f"{BASE}/state")]
    assert any(s["fallen"] and s["people"][0]["posture"] == "lying" for s in states)
    postures = [p["posture"] for p in _changes(sub.on(f"{BASE}/posture"))]
    assert "lying" in postures and postures.index("lying") < len(postures) - 1 - postures[::-1].index("standing")
    sub.close()


def _zone_zone(name: str, corner: float) -> str:
    return f'[[zones]]\nname = "{name}"\npolygon = [[{corner}, 0], [1, 0], [1, 1]]\n'


@pytest.mark.slow
def test_a_zone_removed_from_the_config_is_removed_from_home_assistant(
    broker: Broker, models_dir: Path, tmp_path: Path
) -> None:
    clip = write_visit_clip(tmp_path / "empty.avi", np.zeros((10, 10, 3), np.uint8), 5, 0, 0)
    config = tmp_path / "edgepose.toml"
    config.write_text(_zone_zone("hall", 0.5) + _zone_zone("Sofa", 0.2))
    _run(broker, config, clip, models_dir).close()
    for object_id in ("zone_hall_occupancy", "zone_sofa_occupancy"):
        assert _config(broker, "binary_sensor", object_id)
    kept = config.parent / "state" / "ha-zones-zones.json"
    assert json.loads(kept.read_text()) == {"zones": ["hall", "Sofa"]}, "kept once the broker had the discovery"
    config.write_text(_zone_zone("hall", 0.5))  # the sofa is gone
    # a run that never reaches the broker (nothing listens there) cannot remove it: the next run does
    down = run_cli("run", "--config", str(config), "--source", str(clip), "--mqtt", f"mqtt://127.0.0.1:{free_port()}",
                   "--device-id", "zones", "--ha-discovery", "--state-dir", str(config.parent / "state"),
                   *model_args(models_dir))  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert json.loads(kept.read_text()) == {"zones": ["hall", "Sofa"]}, "not kept: never announced"
    sub = _run(broker, config, clip, models_dir)
    assert _config(broker, "binary_sensor", "zone_hall_occupancy") and _config(broker, "sensor", "zone_hall_count")
    for component, object_id in (("binary_sensor", "zone_sofa_occupancy"), ("sensor", "zone_sofa_count")):
        topic = f"homeassistant/{component}/{NODE}/{object_id}/config"
        assert b"" in sub.on(topic), "an empty retained config removes the entity"
        assert retained(broker.port, topic, timeout=0.5) is None
    assert json.loads(kept.read_text()) == {"zones": ["hall"]}
    sub.close()


def test_removed_zones_are_those_announced_before_that_are_gone(tmp_path: Path) -> None:
    kept = tmp_path / "state" / "ha-zones-porch.json"
    assert removed_zones(kept, ("hall", "Sofa")) == ()
    keep_zones(kept, ("hall", "Sofa"))
    assert removed_zones(kept, ("hall", "sofa")) == (), "Sofa renamed sofa: the same entities"
    assert removed_zones(kept, ("hall",)) == ("Sofa",)
    assert removed_zones(kept, ("hall",)) == ("Sofa",), "kept until the discovery removing it was published"
    keep_zones(kept, ("hall",))
    assert removed_zones(kept, ("hall",)) == ()
    kept.write_text("not json")
    assert removed_zones(kept, ("hall",)) == ()
    keep_zones(kept, ("hall",))
    assert json.loads(kept.read_text()) == {"zones": ["hall"]}


def _frame(poses: list[tuple[int, float]], people: list[dict[str, Any]], *events: dict[str, Any]) -> PoseResult:
    """A frame with a pose of ``size`` px square per ``(id, size)`` and this analytics state."""
    made = tuple(Pose(np.zeros((17, 3), np.float32), 0.9, (0.0, 0.0, size, size), id=i) for i, size in poses)
    state = {"present": any(p["present"] for p in people), "fallen": any(p["fallen"] for p in people),
             "people": people, "zones": {}}  # fmt: skip
    return PoseResult(0, 0.0, 640, 480, np.zeros((17, 3), np.float32), poses=made, state=state, events=events)


def _person(person: int, posture: str, fallen: bool = False, zones: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"id": person, "present": True, "posture": posture, "fallen": fallen, "zones": list(zones)}


def _at(t: float, people: list[dict[str, Any]], *events: dict[str, Any]) -> PoseResult:
    return dataclasses.replace(_frame([], people, *events), media_s=t)


def test_after_a_start_a_person_already_lying_is_neither_fallen_nor_not_fallen_until_the_long_lie() -> None:
    summary = Summary(safe_zones=("bed",), window_s=2.25)

    def fallen(t: float, people: list[dict[str, Any]], *events: dict[str, Any], started: float = 100.0,
               of: Summary = summary) -> Any:  # fmt: skip
        out = of.observe(_at(t, people, *events), started)
        assert out is not None
        return json.loads(out[0])

    undecided = {"fallen": None, "kind": None, "person": 1, "zone": "hall"}
    assert fallen(100.0, [_person(1, "unknown", zones=("hall",))]) == undecided, "no posture yet: may be down"
    assert fallen(100.5, [_person(1, "lying", zones=("hall",))]) == undecided
    assert fallen(130.0, [_person(1, "unknown", zones=("hall",))]) == undecided, "half hidden: still down"
    lie = {"type": "long_lie", "person": 1, "confidence": 0.8}
    assert fallen(160.5, [_person(1, "lying", fallen=True, zones=("hall",))], lie)["fallen"] is True
    assert fallen(170.0, [_person(1, "standing", zones=("hall",))]) == NOT_FALLEN
    assert fallen(180.0, [_person(1, "lying", zones=("hall",))]) == NOT_FALLEN, "seen lying down: not in doubt"
    # a later start of analysis (a pause, a lost camera) keeps the analytics' timers: no doubt
    assert fallen(200.0, [_person(2, "lying", zones=("hall",))], started=199.0) == NOT_FALLEN
    # a posture still unknown after the window; a person seen up first; a bed; stills; no start
    fresh = Summary(safe_zones=("bed",), window_s=2.25)
    assert fallen(100.0, [_person(1, "unknown", zones=("hall",))], of=fresh) == undecided
    assert fallen(102.5, [_person(1, "unknown", zones=("hall",))], of=fresh) == NOT_FALLEN
    assert fallen(100.0, [_person(2, "standing")], of=(up := Summary(window_s=2.25))) == NOT_FALLEN
    assert fallen(101.0, [_person(2, "lying")], of=up) == NOT_FALLEN
    assert fallen(100.1, [_person(1, "lying", zones=("bed",))], of=Summary(("bed",), 2.25)) == NOT_FALLEN
    assert fallen(100.0, [_person(1, "lying")], of=Summary(window_s=0.0)) == NOT_FALLEN
    assert fallen(300.0, [_person(2, "lying")], started=None, of=Summary(window_s=2.25)) == NOT_FALLEN


def test_the_most_prominent_person_is_kept_while_present_and_fallen_names_the_first_fallen() -> None:
    summary = Summary()

    def seen(frame: PoseResult) -> tuple[dict[str, Any], dict[str, Any]]:
        out = summary.observe(frame)
        assert out is not None
        return json.loads(out[0]), json.loads(out[1])

    assert seen(_frame([], [])) == (NOT_FALLEN, NOBODY)
    # the bigger box is chosen, and kept when the other grows bigger
    assert seen(_frame([(1, 50), (2, 120)], [_person(1, "standing"), _person(2, "sitting")]))[1] == {
        "posture": "sitting", "person": 2}  # fmt: skip
    assert seen(_frame([(1, 300), (2, 120)], [_person(1, "standing"), _person(2, "lying")]))[1] == {
        "posture": "lying", "person": 2}  # fmt: skip
    # person 2 leaves: person 1 now
    assert seen(_frame([(1, 300)], [_person(1, "unknown")]))[1] == {"posture": "unknown", "person": 1}
    # two fallen, a long lie (3, in the hall) and a fall (1): the first by id; its zone, else null
    lie = {"type": "long_lie", "person": 3, "confidence": 0.8}
    fall = {"type": "fall", "person": 1, "confidence": 0.9}
    both = [_person(1, "lying", fallen=True), _person(3, "lying", fallen=True, zones=("hall", "rug"))]
    assert seen(_frame([(1, 300), (3, 100)], both, lie, fall))[0] == {
        "fallen": True, "kind": "fall", "person": 1, "zone": None}  # fmt: skip
    up = [_person(1, "standing"), _person(3, "lying", fallen=True, zones=("hall", "rug"))]
    assert seen(_frame([(1, 300), (3, 100)], up, {"type": "recovered", "person": 1}))[0] == {
        "fallen": True, "kind": "long_lie", "person": 3, "zone": "hall"}  # fmt: skip
    assert summary.observe(dataclasses.replace(_frame([], []), state=None)) is None, "no analytics: nothing"


class _Link:
    """A connection that hands every message to a broker that acknowledges when told to."""

    def __init__(self) -> None:
        self.connected = True
        self.queued = self.unsent_bytes = 0
        self.acked = False
        self.refuse: str | None = None  # a topic not handed over (the link dropped mid-discovery)

    def send(self, msg: Any) -> Any:
        return None if msg.topic == self.refuse else (lambda: self.acked)

    def flush(self) -> None:
        pass


def test_the_zones_are_kept_only_once_every_discovery_message_is_acknowledged(tmp_path: Path) -> None:
    kept = tmp_path / "ha-zones-porch.json"
    keep_zones(kept, ("hall", "Sofa"))
    cfg = MqttConfig(url="mqtt://127.0.0.1", device_id="porch", ha_discovery=True)
    device = Device(zones=("hall",), removed_zones=("Sofa",), zones_file=kept)
    link = _Link()
    worker = Worker(cfg, Topics(cfg.prefix, "porch"), INFO, PipelineStats(), MqttCounters(), link, device)  # type: ignore[arg-type]
    worker._send_announce()
    worker.keep_zones_if_published()
    assert removed_zones(kept, ("hall",)) == ("Sofa",), "not acknowledged yet"
    link.refuse = "homeassistant/binary_sensor/edgepose_porch/zone_sofa_occupancy/config"
    worker._send_announce()  # a reconnect whose discovery did not all reach paho: nothing to wait for
    link.acked = True
    worker.keep_zones_if_published()
    assert removed_zones(kept, ("hall",)) == ("Sofa",), "a removal never handed over"
    link.refuse = None
    worker._send_announce()
    worker.keep_zones_if_published()
    assert removed_zones(kept, ("hall",)) == () and json.loads(kept.read_text()) == {"zones": ["hall"]}
