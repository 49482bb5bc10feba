"""Control from Home Assistant over a real mosquitto: the Detection switch, the Exercise select, Reset, the ACL.

Commands are published by a real paho client on ``<base>/set/<name>`` as Home Assistant's switch, select
and button publish them (not retained, ``ON``/``OFF``, an option, ``PRESS``); the run is the CLI as a
subprocess with the real model on clips made from the test photos.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from broker import Broker, Subscriber, free_port, retained
from clips import write_squats_clip, write_visit_clip
from conftest import ROOT, eventually
from test_ha_truth import arrivals, run_args
from test_mqtt import Running

from edgepose.sinks.preview.hub import paused_picture


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as b:
        yield b


def photo(testdata: Path, name: str) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(testdata / name))[:, :, :3])


def command(sub: Subscriber, base: str, name: str, payload: str, retain: bool = False) -> float:
    """Publish a command as Home Assistant does; return when it was sent."""
    sub.client.publish(f"{base}/set/{name}", payload, qos=1, retain=retain).wait_for_publish(5)
    return time.monotonic()


def after(sub: Subscriber, topic: str, since: float) -> list[bytes]:
    return [p for p, at in arrivals(sub, topic) if at > since]


def http(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read(200_000)
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def first_picture(port: int) -> bytes:
    """The first JPEG of the preview's MJPEG stream."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream.mjpg", timeout=10) as stream:
        head = b""
        while b"\r\n\r\n" not in head:
            head += stream.read(1)
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        return bytes(stream.read(length))


@pytest.mark.slow
def test_detection_off_is_a_privacy_pause_that_survives_a_restart(broker: Broker, models_dir: Path, testdata: Path,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    base, preview = "edgepose/pause", free_port()
    clip = write_visit_clip(tmp_path / "person.avi", photo(testdata, "woman_standing.png"), 0, 150, 0)
    args = run_args(str(clip), "pause", broker.port, models_dir, tmp_path, "--realtime", "--loop",
                    "--mqtt-max-rate", "5", "--preview", str(preview))  # fmt: skip
    sub = Subscriber(broker.port)
    first = Running(tmp_path / "first", args)
    second = None
    try:
        assert sub.wait_for(lambda s: s.on(f"{base}/analysis")[-1:] == [b"online"], 90), first.stderr
        assert sub.on(f"{base}/person")[-1] == b"ON" and sub.on(f"{base}/detection")[-1] == b"ON"
        paused = command(sub, base, "detection", "OFF")
        assert sub.wait_for(lambda s: s.on(f"{base}/detection")[-1:] == [b"OFF"]), first.stderr
        assert sub.wait_for(lambda s: s.on(f"{base}/analysis")[-1:] == [b"offline"])
        quiet = arrivals(sub, f"{base}/detection")[-1][1] + 0.5  # what was already on its way has arrived
        time.sleep(2.5)
        for leaf in ("pose", "stats", "person", "people", "state", "camera", "event"):
            assert after(sub, f"{base}/{leaf}", quiet) == [], f"{leaf} published while detection is off"
        status, body = http(preview, "/pose")
        assert status == 503 and json.loads(body)["error"] == "paused: detection is off"
        status, body = http(preview, "/healthz")
        assert status == 200 and b"paused" in body, body
        assert first_picture(preview) == paused_picture(), "the stream shows 'paused', nothing from the camera"
        kept = json.loads((tmp_path / "state" / "control-pause.json").read_text())
        assert kept == {"detection": "OFF"}
        assert "detection off" in first.stderr and paused < quiet
        assert first.stop() == 0, first.stderr

        # a restart: still paused, from the first frame on
        seen = time.monotonic()
        second = Running(tmp_path / "second", args)
        assert sub.wait_for(lambda s: b"OFF" in after(s, f"{base}/detection", seen), 60), second.stderr
        assert sub.wait_for(lambda s: b"online" in after(s, f"{base}/status", seen))
        time.sleep(3)
        for leaf in ("pose", "stats", "person", "people", "state", "camera"):
            assert after(sub, f"{base}/{leaf}", seen) == [], f"{leaf} published after a restart while paused"
        assert b"online" not in after(sub, f"{base}/analysis", seen)
        assert "detection is off (kept in" in second.stderr
        assert retained(broker.port, f"{base}/detection") == b"OFF"

        # on again: poses, the person and current answers come back
        resumed = command(sub, base, "detection", "ON")
        assert sub.wait_for(lambda s: len(after(s, f"{base}/pose", resumed)) >= 3, 30), second.stderr
        assert sub.wait_for(lambda s: after(s, f"{base}/analysis", resumed)[-1:] == [b"online"], 30)
        assert after(sub, f"{base}/person", resumed)[-1:] == [b"ON"]
        assert json.loads((tmp_path / "state" / "control-pause.json").read_text()) == {"detection": "ON"}
        status, _ = http(preview, "/pose")
        assert status == 200
        assert second.stop() == 0, second.stderr
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            second.stop(signal.SIGKILL)
        sub.close()


def states(sub: Subscriber, base: str, since: float = 0.0) -> list[dict[str, object]]:
    return [json.loads(p) for p in after(sub, f"{base}/state", since)]


@pytest.mark.slow
def test_exercise_select_reset_and_bad_commands(broker: Broker, models_dir: Path, testdata: Path,
                                                tmp_path: Path) -> None:  # fmt: skip
    base = "edgepose/gym"
    reps_config = "homeassistant/sensor/edgepose_gym/reps/config"
    clip = write_squats_clip(tmp_path / "squats.avi", photo(testdata, "woman_standing.png"),
                             photo(testdata, "squat.bmp"), 4)  # fmt: skip
    sub = Subscriber(broker.port)
    # a command left retained on the broker is stale: it must not switch detection off when the box subscribes
    command(sub, base, "detection", "OFF", retain=True)
    run = Running(tmp_path / "run", run_args(str(clip), "gym", broker.port, models_dir, tmp_path, "--realtime",
                                             "--loop"))  # fmt: skip
    try:
        assert sub.wait_for(lambda s: s.on(f"{base}/exercise")[-1:] == [b"off"], 90), run.stderr
        assert sub.wait_for(lambda s: s.on(f"{base}/analysis")[-1:] == [b"online"], 60), run.stderr
        assert retained(broker.port, reps_config, timeout=0.5) is None, "no Repetitions without an exercise"
        assert all(s["exercise"] is None and s["reps"] == 0 for s in states(sub, base))

        chosen = command(sub, base, "exercise", "squat")
        assert sub.wait_for(lambda s: s.on(f"{base}/exercise")[-1:] == [b"squat"]), run.stderr
        assert sub.wait_for(lambda s: bool(s.on(reps_config)) and s.on(reps_config)[-1] != b"")
        assert json.loads(sub.on(reps_config)[-1])["json_attributes_topic"] == f"{base}/state"
        assert sub.wait_for(lambda s: any(x["reps"] >= 2 for x in states(s, base, chosen)), 60), run.stderr
        since = states(sub, base, chosen)
        counted = since[next(i for i, x in enumerate(since) if x["exercise"] == "squat") :]
        assert all(x["exercise"] == "squat" for x in counted), "from the select on, squats are counted"

        pressed = command(sub, base, "reset_reps", "PRESS")
        assert sub.wait_for(lambda s: any(x["reps"] == 0 for x in states(s, base, pressed)), 30), run.stderr
        assert "repetitions reset to 0" in run.stderr

        # bad commands: one warning each, nothing changes
        def warnings() -> list[str]:
            return [line for line in run.stderr.splitlines() if "WARNING: MQTT: ignored" in line]

        bad = [("exercise", "yoga"), ("detection", "maybe"), ("nonsense", "1"), ("reset_reps", "press")]
        sent = time.monotonic()
        for name, payload in bad:
            command(sub, base, name, payload)
        assert eventually(lambda: len(warnings()) >= 1 + len(bad), 20), run.stderr
        time.sleep(1)
        assert len(warnings()) == 1 + len(bad), warnings()
        assert "retained command on edgepose/gym/set/detection" in warnings()[0]
        for (name, _), line in zip(bad, warnings()[1:], strict=True):
            assert f"{base}/set/{name}" in line, line
        sub.client.publish(f"{base}/set/detection", b"", qos=1, retain=True).wait_for_publish(5)  # clear it
        assert "Traceback" not in run.stderr and run.alive()
        assert sub.on(f"{base}/exercise")[-1] == b"squat" and b"OFF" not in sub.on(f"{base}/detection")
        assert after(sub, f"{base}/analysis", sent) == [], "still analysing: the bad detection commands did nothing"
        assert run.stop() == 0, run.stderr
    finally:
        run.stop(signal.SIGKILL)
        sub.close()


def documented_acl() -> str:
    """The mosquitto ACL shown in docs/mqtt.md (for the box ``porch`` and Home Assistant)."""
    text = (ROOT / "docs" / "mqtt.md").read_text()
    block = re.search(r"```text\n(# mosquitto ACL.*?)```", text, re.S)
    assert block, "docs/mqtt.md shows the broker ACL"
    return block.group(1)


@pytest.mark.slow
def test_the_documented_acl_gives_the_box_its_own_topics(models_dir: Path, tmp_path: Path) -> None:
    base = "edgepose/porch"
    users = {"edgepose-porch": "boxpw", "homeassistant": "hapw", "intruder": "badpw"}
    broker = Broker(tmp_path / "broker", users=dict(users), acl=documented_acl()).start()
    (tmp_path / "pw").write_text("boxpw")
    ha = Subscriber(broker.port, ("homeassistant/#", "edgepose/#"), username="homeassistant", password="hapw")
    intruder = Subscriber(broker.port, ("#",), username="intruder", password="badpw")
    run = Running(tmp_path / "run", ["--source", "synthetic:160x120", "--mqtt", f"mqtt://edgepose-porch@127.0.0.1:"
                                     f"{broker.port}", "--mqtt-password-file", str(tmp_path / "pw"), "--device-id",
                                     "porch", "--ha-discovery", "--stats-interval", "1", "--state-dir",
                                     str(tmp_path / "state"), "--models-dir", str(models_dir)])  # fmt: skip
    try:
        switch = "homeassistant/switch/edgepose_porch/detection/config"
        assert ha.wait_for(lambda s: bool(s.on(switch)) and s.on(f"{base}/detection")[-1:] == [b"ON"], 90), run.stderr
        assert ha.wait_for(lambda s: bool(s.on(f"{base}/stats")))
        # Home Assistant may command the box …
        command(ha, base, "detection", "OFF")
        assert ha.wait_for(lambda s: s.on(f"{base}/detection")[-1:] == [b"OFF"]), run.stderr
        # … nobody else may, and no other device's topics reach it
        command(intruder, base, "detection", "ON")
        command(ha, "edgepose/other", "detection", "ON")
        ha.client.publish(f"{base}/set/detection/more", "ON", qos=1).wait_for_publish(5)
        time.sleep(1.5)
        assert ha.on(f"{base}/detection")[-1] == b"OFF" and "command detection ON" not in run.stderr
        assert intruder.messages == [], "the intruder reads nothing"
        command(ha, base, "detection", "ON")
        assert ha.wait_for(lambda s: s.on(f"{base}/detection")[-1:] == [b"ON"]), run.stderr
        assert run.stop() == 0, run.stderr
    finally:
        run.stop(signal.SIGKILL)
        ha.close()
        intruder.close()
        broker.stop()
    log = broker.log_path.read_text()
    assert "Denied PUBLISH from edgepose-porch" not in log, "the box may publish all it publishes"
    assert re.search(r"Denied PUBLISH from test-sub-\S+ \(.*'edgepose/porch/set/detection'", log), "the intruder"


@pytest.mark.slow
def test_paused_from_the_start_stays_ready_and_keeps_the_watchdog_fed(broker: Broker, models_dir: Path,
                                                                       tmp_path: Path) -> None:  # fmt: skip
    """Restarted while paused: systemd gets READY=1 and the watchdog pings without a single analysed frame."""
    from test_systemd import NotifyListener

    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "control-asleep.json").write_text('{"detection": "OFF"}')
    listener = NotifyListener(str(tmp_path / "notify.sock"))
    sub = Subscriber(broker.port)
    run = Running(tmp_path / "run", run_args("synthetic:160x120", "asleep", broker.port, models_dir, tmp_path),
                  env={"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "2000000"})  # fmt: skip
    try:
        ready = listener.wait_for("READY=1", 90, run.proc)
        time.sleep(4)
        pings = [t for t in listener.times("WATCHDOG=1") if t >= ready]
        gaps = [b - a for a, b in zip([ready, *pings], [*pings, time.monotonic()], strict=True)]
        assert len(pings) >= 3 and max(gaps) < 2.0, "systemd restarts a unit a whole WATCHDOG_USEC without a ping"
        assert any(v.startswith("paused: detection is off") for v in listener.values("STATUS")), listener.messages
        assert sub.on("edgepose/asleep/pose") == [] and sub.on("edgepose/asleep/detection")[-1:] == [b"OFF"]
        assert run.stop() == 0, run.stderr
    finally:
        run.stop(signal.SIGKILL)
        listener.close()
        sub.close()
