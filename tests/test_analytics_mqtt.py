"""End to end: a clip built from the real test still, the real model, a real mosquitto, ``run`` then ``analyze``.

The person appears, stays and leaves; presence must answer with exactly one ``person_entered`` and one
``person_left`` on ``<base>/event``, the retained ``<base>/state``, ``<base>/person`` following
the hysteresis, and the Home Assistant discovery configs for presence, falls and repetitions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from broker import Broker, Subscriber, retained
from clips import write_visit_clip
from conftest import model_args, run_cli

BASE = "edgepose/e2e"
NODE = "edgepose_e2e"


class QosSubscriber(Subscriber):
    """A :class:`Subscriber` that also records the QoS each message arrived with."""

    def __init__(self, port: int) -> None:
        self.qos: list[tuple[str, int]] = []
        super().__init__(port)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.qos.append((msg.topic, int(msg.qos)))
        super()._on_message(client, userdata, msg)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as b:
        yield b


#: Frames of the clip at 15 fps: empty room, the person standing, empty room again. The analytics follow the
#: video's own time (``media_s``), however fast the file is read: 2 s, 8 s and 4 s.
EMPTY_BEFORE, PERSON, EMPTY_AFTER = 30, 120, 60


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> Path:
    """The woman_standing photo in a small room for the middle part of the clip."""
    person = cv2.imread(str(testdata / "woman_standing.png"))[:, :, :3]
    path = tmp_path_factory.mktemp("clip") / "visit.avi"
    return write_visit_clip(path, np.ascontiguousarray(person), EMPTY_BEFORE, PERSON, EMPTY_AFTER)


def _events(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for line in lines for e in line["events"]]


@pytest.mark.slow
def test_presence_events_state_and_discovery_over_a_real_broker(
    broker: Broker, models_dir: Path, clip: Path, tmp_path: Path
) -> None:
    sub = QosSubscriber(broker.port)
    out = tmp_path / "poses.jsonl"
    proc = run_cli("run", "--source", str(clip), "--mqtt", f"mqtt://127.0.0.1:{broker.port}", "--device-id", "e2e",
                   "--ha-discovery", "--exercise", "squat", "--output", str(out), *model_args(models_dir))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sub.wait_for(lambda s: s.on(f"{BASE}/status")[-1:] == [b"offline"])

    # run: every frame has state and events; the person came and went once
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(EMPTY_BEFORE + PERSON + EMPTY_AFTER))
    assert all(set(line["state"]) == {"present", "fallen", "exercise", "reps", "people", "zones"} for line in lines)
    printed = _events(lines)
    assert [e["type"] for e in printed] == ["person_entered", "person_left"]
    entered, left = printed
    came, went = lines[EMPTY_BEFORE]["media_s"], lines[EMPTY_BEFORE + PERSON]["media_s"]
    assert all(line["score"] >= 0.3 for line in lines[EMPTY_BEFORE : EMPTY_BEFORE + PERSON])
    assert 0.5 - 1e-3 <= entered["media_s"] - came <= 0.5 + 1.5 / 15  # enter_s of video after the person appears
    assert 2.0 - 1e-3 <= left["media_s"] - went <= 2.0 + 1.5 / 15  # leave_s of video after the person goes
    assert lines[-1]["state"] == {"present": False, "fallen": False, "exercise": "squat", "reps": 0, "people": [],
                                  "zones": {}}  # fmt: skip
    assert [e["person"] for e in printed] == [1, 1]

    # MQTT: each event once on <base>/event, JSON, QoS 1, not retained
    on_event = [json.loads(p) for p in sub.on(f"{BASE}/event")]
    assert on_event == printed
    assert {q for t, q in sub.qos if t == f"{BASE}/event"} == {1}
    assert not any(r for t, _, r, _ in sub.messages if t == f"{BASE}/event")
    assert retained(broker.port, f"{BASE}/event", timeout=0.5) is None

    # <base>/state: retained, on every change; <base>/person follows the hysteresis
    states = [json.loads(p) for p in sub.on(f"{BASE}/state")]
    changes = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    present = [s["present"] for s in changes]
    assert [p for i, p in enumerate(present) if i == 0 or p != present[i - 1]] == [False, True, False]
    assert len(changes) <= 6  # and people's postures: unknown, standing
    assert {q for t, q in sub.qos if t == f"{BASE}/state"} == {1}
    assert json.loads(retained(broker.port, f"{BASE}/state") or b"{}") == lines[-1]["state"]
    person = sub.on(f"{BASE}/person")
    assert [p for i, p in enumerate(person) if i == 0 or p != person[i - 1]] == [b"OFF", b"ON", b"OFF"]
    assert retained(broker.port, f"{BASE}/person") == b"OFF"

    # Home Assistant discovery, retained
    def config(component: str, object_id: str) -> dict[str, Any]:
        payload = retained(broker.port, f"homeassistant/{component}/{NODE}/{object_id}/config")
        assert payload is not None, (component, object_id)
        return dict(json.loads(payload))

    occupancy = config("binary_sensor", "person")
    assert occupancy["device_class"] == "occupancy" and occupancy["state_topic"] == f"{BASE}/person"
    fallen = config("binary_sensor", "fallen")
    assert fallen["device_class"] == "safety" and fallen["state_topic"] == f"{BASE}/fallen"
    assert "value_json.fallen" in fallen["value_template"]
    fall = config("event", "fall")
    assert fall["event_types"] == ["fall", "long_lie", "recovered"] and fall["state_topic"] == f"{BASE}/event"
    reps = config("sensor", "reps")
    assert reps["state_class"] == "total_increasing" and "value_json.reps" in reps["value_template"]
    for entity in (occupancy, fallen, fall, reps):
        assert entity["availability"][0]["topic"] == f"{BASE}/status"
        assert entity["device"]["identifiers"] == [NODE]
    sub.close()

    # analyze on what run printed gives the very same events and states
    analyzed = run_cli("analyze", "--exercise", "squat", str(out))
    assert analyzed.returncode == 0, analyzed.stderr
    again = [json.loads(line) for line in analyzed.stdout.splitlines()]
    assert [a["events"] for a in again] == [line["events"] for line in lines]
    assert [a["state"] for a in again] == [line["state"] for line in lines]
