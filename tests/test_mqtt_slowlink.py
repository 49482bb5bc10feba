"""MQTT over a connected but slow link: a 4 KB/s throttling proxy (tests/slowlink.py) before a real mosquitto.

The pose stream (about 2.6 KB a frame) is many times what the link carries, so a backlog builds from
the first second. The answers (``person``, ``state``, ``event``) must still reach a subscriber within
seconds of the frame that changed them, and the keepalive must hold: the connection never drops.
Before the backlog was bounded, the keepalive ping waited behind it and the connection dropped every
two keepalives (each drop emptied paho's queue, so how late an answer came depended on when the next
drop happened: from 1 s to never, in a 4-minute run).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from broker import Broker, Subscriber
from clips import write_visit_clip
from conftest import eventually, model_args
from slowlink import SlowLink
from test_mqtt import Running

from edgepose.sinks.mqtt.backlog import BACKLOG_LIMIT_BYTES

BASE = "edgepose/slow"
#: The clip, read at its own rate (15 fps, ``--realtime``; idle mode off, so every frame is a pose
#: message, about ten times what the link carries): an empty room, then the person standing.
EMPTY_S, PERSON_S, FPS = 20, 30, 15
#: Bytes a second the link passes each way.
LINK_RATE = 4096
#: Keepalive of the run: the ping must be answered within it, several times during the run.
KEEPALIVE_S = 8
#: Longest an answer may take from the frame that changed it to the subscriber (today: never within 40 s).
ANSWER_BOUND_S = 15.0


class WallClockSubscriber(Subscriber):
    """A :class:`Subscriber` that also records each message's arrival as wall-clock time (``time.time()``)."""

    def __init__(self, port: int, topics: tuple[str, ...]) -> None:
        self.arrivals: list[tuple[str, bytes, float]] = []
        super().__init__(port, topics)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.arrivals.append((msg.topic, bytes(msg.payload), time.time()))
        super()._on_message(client, userdata, msg)

    def first(self, topic: str, match: Any) -> float | None:
        """Arrival time of the first message on ``topic`` whose payload satisfies ``match``, or ``None``."""
        return next((t for top, p, t in list(self.arrivals) if top == topic and match(p)), None)


@pytest.fixture(scope="module")
def visit(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> Path:
    person = cv2.imread(str(testdata / "woman_standing.png"))[:, :, :3]
    path = tmp_path_factory.mktemp("clip") / "visit.avi"
    return write_visit_clip(path, np.ascontiguousarray(person), EMPTY_S * FPS, PERSON_S * FPS, 0)


def _mqtt_stats(sub: Subscriber) -> dict[str, Any]:
    """The sink's counters in the last stats message the subscriber received (``{}`` before the first)."""
    stats = sub.on(f"{BASE}/stats")
    return dict(json.loads(stats[-1])["mqtt"]) if stats else {}


def _first_present(out: Path) -> dict[str, Any] | None:
    """The first frame of the run's JSON lines in which the analytics see a person, or ``None`` yet."""
    if not out.exists():
        return None
    for line in out.read_text().splitlines():
        if line.endswith("}"):
            record = json.loads(line)
            if record["state"]["present"]:
                return dict(record)
    return None


@pytest.mark.slow
def test_answers_cross_a_slow_link_within_seconds(models_dir: Path, visit: Path, tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker").start()
    link = SlowLink(broker.port, rate=LINK_RATE).start()
    sub = WallClockSubscriber(broker.port, (f"{BASE}/#",))
    out = tmp_path / "poses.jsonl"
    run = Running(tmp_path / "run", ["--source", str(visit), "--realtime", "--mqtt", f"mqtt://127.0.0.1:{link.port}",
                                     "--device-id", "slow", "--stats-interval", "5", "--output", str(out),
                                     "--idle", "off", *model_args(models_dir)],
                  env={"EDGEPOSE_MQTT_KEEPALIVE_S": str(KEEPALIVE_S)})  # fmt: skip
    try:
        assert sub.wait_for(lambda s: b"online" in s.on(f"{BASE}/status"), 60), run.stderr
        assert eventually(lambda: _first_present(out) is not None, EMPTY_S + 30), run.stderr
        changed = _first_present(out)
        assert changed is not None and changed["frame"] >= EMPTY_S * FPS - 1, "the backlog had 20 s to build"
        entered = [e for e in changed["events"] if e["type"] == "person_entered"]
        assert entered, changed["events"]
        at = float(changed["ts"])

        answers = {
            "state": lambda: sub.first(f"{BASE}/state", lambda p: json.loads(p)["present"]),
            "event": lambda: sub.first(f"{BASE}/event", lambda p: json.loads(p)["type"] == "person_entered"),
            "person": lambda: sub.first(f"{BASE}/person", lambda p: p == b"ON"),
        }
        eventually(lambda: all(get() is not None for get in answers.values()), at + ANSWER_BOUND_S + 5 - time.time())
        latency = {name: (t - at if (t := get()) is not None else None) for name, get in answers.items()}
        print(f"\nanswer latency over {LINK_RATE} B/s after {changed['frame'] / FPS:.0f} s of backlog: {latency}; "
              f"connections accepted: {link.accepted}")  # fmt: skip
        assert run.alive(), run.stderr
        for name, took in latency.items():
            assert took is not None and took <= ANSWER_BOUND_S, f"{name} took {took} s: {latency}"
        assert link.accepted == 1, f"the connection dropped: {link.accepted - 1} reconnect(s)"
        assert "lost" not in run.stderr, run.stderr
        # the poses the link could not carry were skipped and counted, the backlog stayed bounded, and
        # the pose stream still flows at what the link carries
        assert sub.wait_for(lambda s: _mqtt_stats(s).get("backlog_skipped", 0) > 0, 15), _mqtt_stats(sub)
        mqtt = _mqtt_stats(sub)
        assert mqtt["reconnects"] == 0 and mqtt["unsent"] <= 2 * BACKLOG_LIMIT_BYTES, mqtt
        assert len(sub.on(f"{BASE}/pose")) >= 10
        assert run.stop(signal.SIGTERM) == 0, run.stderr
    finally:
        run.stop(signal.SIGKILL)
        sub.close()
        link.stop()
        broker.kill()


@pytest.mark.slow
def test_a_hiccup_of_a_fast_link_skips_no_pose(models_dir: Path, tmp_path: Path) -> None:
    """A fast link that stalls for a moment (or a network thread held up on a busy machine) builds a burst of
    unsent poses above the byte bound: that is no slow link, and no pose may be skipped for it."""
    frames, fps = 90, 30
    broker = Broker(tmp_path / "broker").start()
    link = SlowLink(broker.port, rate=10_000_000).start()
    sub = WallClockSubscriber(broker.port, (f"{BASE}/#",))
    run = Running(tmp_path / "run", ["--source", "synthetic", "--max-frames", str(frames), "--max-fps", str(fps),
                                     "--mqtt", f"mqtt://127.0.0.1:{link.port}", "--device-id", "slow",
                                     *model_args(models_dir)])  # fmt: skip
    try:
        assert sub.wait_for(lambda s: len(s.on(f"{BASE}/pose")) >= 10, 60), run.stderr
        link.paused.set()  # some 18 poses, 40 KB, wait behind the stall: far over BACKLOG_LIMIT_BYTES
        time.sleep(0.6)
        link.paused.clear()
        assert run.proc.wait(timeout=120) == 0, run.stderr
        assert sub.wait_for(lambda s: len(s.on(f"{BASE}/pose")) >= frames, 20), len(sub.on(f"{BASE}/pose"))
        assert sub.wait_for(lambda s: _mqtt_stats(s).get("sent", 0) > 0, 20)
        assert _mqtt_stats(sub)["backlog_skipped"] == 0, _mqtt_stats(sub)
        assert link.accepted == 1
    finally:
        run.stop(signal.SIGKILL)
        sub.close()
        link.stop()
        broker.kill()
