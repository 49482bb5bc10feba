"""Entities that tell the truth, over a real mosquitto: a dead camera, a restart with a person in view.

The camera is a real local MJPEG server streaming the test photo of a person (tests/mjpeg_server.py); the
run is the CLI as a subprocess with the real model. What Home Assistant would show is replayed from the
announced discovery configs and the messages in arrival order (tests/hamodel.py).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from broker import Broker, Subscriber
from clips import in_room
from conftest import eventually, model_args
from hamodel import Entity, config_of, shown_sequence
from mjpeg_server import jpeg, serving
from test_mqtt import Running

PERSON_CONFIG = "homeassistant/binary_sensor/edgepose_{}/person/config"
CAMERA_CONFIG = "homeassistant/binary_sensor/edgepose_{}/camera/config"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as b:
        yield b


@pytest.fixture(scope="module")
def person_jpeg(testdata: Path) -> bytes:
    """The standing person in a small room, as one camera picture."""
    return jpeg(in_room(np.ascontiguousarray(cv2.imread(str(testdata / "woman_standing.png"))[:, :, :3])))


def ordered(sub: Subscriber) -> list[tuple[str, bytes]]:
    with sub._lock:
        return [(t, p) for t, p, _, _ in sub.messages]


def arrivals(sub: Subscriber, topic: str) -> list[tuple[bytes, float]]:
    with sub._lock:
        return [(p, at) for t, p, _, at in sub.messages if t == topic]


def run_args(source: str, device: str, port: int, models_dir: Path, tmp_path: Path, *extra: str) -> list[str]:
    """``edgepose run`` flags: the source, the test broker, discovery, stats every second, a state folder."""
    return ["--source", source, "--mqtt", f"mqtt://127.0.0.1:{port}", "--device-id", device, "--ha-discovery",
            "--stats-interval", "1", "--state-dir", str(tmp_path / "state"), *extra,
            *model_args(models_dir)]  # fmt: skip


@pytest.mark.slow
def test_a_dead_camera_turns_the_answers_unavailable(broker: Broker, models_dir: Path, person_jpeg: bytes,
                                                     tmp_path: Path) -> None:  # fmt: skip
    """The camera stops while a person is in view: within the stale time Person is unavailable, not "Detected",
    nothing re-sends it, and the Camera sensor shows the problem."""
    base, stale = "edgepose/dead", 2.0
    with serving(lambda n: person_jpeg, count=15 * 12, fps=15) as camera:
        sub = Subscriber(broker.port)
        run = Running(tmp_path / "run", run_args(camera.url, "dead", broker.port, models_dir, tmp_path),
                      env={"EDGEPOSE_SOURCE_STALE_AFTER_S": str(stale)})  # fmt: skip
        try:
            assert sub.wait_for(lambda s: s.on(f"{base}/person")[-1:] == [b"ON"], 90), run.stderr
            person = Entity(config_of(ordered(sub), PERSON_CONFIG.format("dead")))
            assert shown_sequence(person, ordered(sub))[-1] == "on", "Person: Detected while the camera runs"
            assert eventually(camera.finished, 60), "the camera never sent its pictures"
            stopped = time.monotonic()  # the last picture was made now: the camera hangs, its stream open and silent
            assert sub.wait_for(lambda s: s.on(f"{base}/analysis")[-1:] == [b"offline"], 30), run.stderr
            offline_at = arrivals(sub, f"{base}/analysis")[-1][1]
            print(f"\nstate topics not current {offline_at - stopped:.2f} s after the camera's last picture "
                  f"(stale time {stale:g} s)")  # fmt: skip
            assert offline_at - stopped <= stale + 6, "within the stale time (and ample slack for a busy box)"
            assert sub.wait_for(lambda s: json.loads(s.on(f"{base}/camera")[-1])["state"] == "stale", 30)
            camera.close()  # now it is gone: the stream ends and reopening finds nobody
            assert sub.wait_for(lambda s: json.loads(s.on(f"{base}/camera")[-1])["state"] == "reconnecting", 30)
            time.sleep(3.5)  # three stats intervals: the person state must not be re-sent meanwhile
            for leaf in ("person", "people", "state"):
                after = [p for p, at in arrivals(sub, f"{base}/{leaf}") if at > offline_at]
                assert after == [], f"{leaf} re-sent although no frame is analysed"
            assert run.alive(), run.stderr
            leaves = [(t.rsplit("/", 1)[1], p, at) for t, p, _, at in list(sub.messages) if at > stopped - 2]
            timeline = [f"{at - stopped:+.1f} s {leaf} {p.decode()[:48]}" for leaf, p, at in leaves
                        if leaf in ("person", "analysis", "camera")]  # fmt: skip
            print("retained states around the camera's death:\n  " + "\n  ".join(timeline))
            messages = ordered(sub)
            person = Entity(config_of(messages, PERSON_CONFIG.format("dead")))
            shown = shown_sequence(person, messages)
            assert shown[-1] == "unavailable" and "off" not in shown[shown.index("on") :], shown
            camera_entity = Entity(config_of(messages, CAMERA_CONFIG.format("dead")),
                                   lambda p: "ON" if json.loads(p)["state"] == "ok" else "OFF")  # fmt: skip
            assert shown_sequence(camera_entity, messages)[-2:] == ["on", "off"], "Camera: disconnected"
            stats = json.loads(sub.on(f"{base}/stats")[-1])
            assert stats["frame_age_s"] > stale, stats
            assert run.stop() == 0, run.stderr
        finally:
            run.stop(signal.SIGKILL)
            sub.close()


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["systemctl-restart", "killed"])
def test_a_restart_with_a_person_in_view_never_shows_off(broker: Broker, models_dir: Path, person_jpeg: bytes,
                                                        tmp_path: Path, stop: signal.Signals) -> None:  # fmt: skip
    """unavailable → on → unavailable → on: never an ``off`` the new process only assumed before it had looked."""
    base = "edgepose/again"
    with serving(lambda n: person_jpeg, fps=15) as camera:
        sub = Subscriber(broker.port)
        args = run_args(camera.url, "again", broker.port, models_dir, tmp_path)
        env = {"EDGEPOSE_MQTT_KEEPALIVE_S": "5"}  # a killed process's Last Will comes within 7.5 s
        first = Running(tmp_path / "first", args, env=env)
        second = None
        try:

            def person_shown() -> str:
                messages = ordered(sub)
                return shown_sequence(Entity(config_of(messages, PERSON_CONFIG.format("again"))), messages)[-1]

            assert sub.wait_for(lambda s: s.on(f"{base}/person")[-1:] == [b"ON"], 90), first.stderr
            assert eventually(lambda: person_shown() == "on", 30), first.stderr
            first.stop(stop)
            if stop == signal.SIGKILL:
                assert sub.wait_for(lambda s: s.on(f"{base}/status")[-1:] == [b"offline"], 30), "the Last Will"
            seen = len(ordered(sub))
            second = Running(tmp_path / "second", args, env=env)
            assert sub.wait_for(lambda s: b"online" in [p for t, p in ordered(s)[seen:] if t == f"{base}/status"], 60)
            assert eventually(lambda: person_shown() == "on", 60), second.stderr
            time.sleep(1.0)  # a late "off" would show up here
            messages = ordered(sub)
            shown = shown_sequence(Entity(config_of(messages, PERSON_CONFIG.format("again"))), messages)
            print("\nPerson as Home Assistant shows it across the restart:", " → ".join(shown))
            assert "off" not in shown, shown
            assert shown[-1] == "on" and shown.count("unavailable") >= 2, shown
            assert b"OFF" not in sub.on(f"{base}/person"), "no process published an assumed off"
            assert second.stop() == 0, second.stderr
        finally:
            first.stop(signal.SIGKILL)
            if second is not None:
                second.stop(signal.SIGKILL)
            sub.close()
