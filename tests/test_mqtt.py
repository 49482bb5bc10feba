"""MQTT publishing against a real mosquitto started per test on a free loopback port (tests/broker.py).

Nothing is mocked: the CLI runs as a subprocess with the real model, messages are read by a real paho
client, the broker is killed and restarted for real, TLS uses a throwaway CA made with openssl.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from broker import Broker, Subscriber, make_ca, make_cert, retained
from conftest import assert_one_line_error, cli_env, eventually, model_args, run_cli

from edgepose.config import ModelConfig, MqttConfig
from edgepose.errors import ConfigError
from edgepose.health import PipelineStats
from edgepose.pose import KEYPOINT_NAMES, STAGES, BackendInfo, PoseResult
from edgepose.sinks.mqtt.homeassistant import Discovery, discovery_configs
from edgepose.sinks.mqtt.settings import broker_settings, device_id, read_password, sanitize_device_id
from edgepose.sinks.mqtt.topics import Topics

POSE_KEYS = {"ts", "media_s", "frame", "width", "height", "score", "keypoints", "poses", "latency_ms", "state",
             "events"}  # fmt: skip
STATS_KEYS = {"ts", "device", "frames", "dropped", "fps", "uptime_s", "frame_age_s", "latency_ms", "runtime",
              "delegate", "threads", "model", "cpu_temp_c", "mqtt", "source", "mode", "inference"}  # fmt: skip
DISCOVERY_KEYS = {"name", "unique_id", "state_topic", "availability", "expire_after", "device", "origin"}
SECRET = "s3cret-Pa55word-never-shown"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as b:
        yield b


def mqtt_run(models_dir: Path, port: int, device: str, *args: str, env: dict[str, str] | None = None,
             scheme: str = "mqtt", user: str = "") -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``edgepose run`` to completion, publishing to the test broker."""
    url = f"{scheme}://{user + '@' if user else ''}127.0.0.1:{port}"
    return run_cli("run", "--mqtt", url, "--device-id", device, *args, *model_args(models_dir), env=env)


class Running:
    """``edgepose run`` as a long-running subprocess with stdout/stderr in files."""

    def __init__(self, folder: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = folder / "stdout.txt", folder / "stderr.txt"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "edgepose", "run", *args], env=cli_env(env),
                                         stdout=out, stderr=err)  # fmt: skip

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.alive():
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def wait_retained(port: int, topic: str, payload: bytes, timeout: float = 20, **auth: Any) -> float:
    """Wait until the broker holds ``payload`` retained on ``topic``; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if retained(port, topic, timeout=0.5, **auth) == payload:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{topic} never became {payload!r} (retained) within {timeout} s")


def make_video(path: Path, frames: int) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(frames):
        image = np.full((120, 160, 3), 40 + i * 5, np.uint8)
        image[30:90, 20 + i * 3 : 60 + i * 3] = 255
        writer.write(image)
    writer.release()
    return path


def fake_result(frame: int, score: float) -> PoseResult:
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[:, 2] = score
    return PoseResult(frame, time.time(), 64, 48, keypoints, {"total": 1.0})


def check_pose(payload: bytes) -> dict[str, Any]:
    pose = json.loads(payload)
    assert set(pose) == POSE_KEYS
    assert [k["name"] for k in pose["keypoints"]] == list(KEYPOINT_NAMES)
    assert all(set(k) == {"name", "x", "y", "score"} for k in pose["keypoints"])
    assert set(pose["latency_ms"]) == set(STAGES)
    assert 0.0 <= pose["score"] <= 1.0
    return dict(pose)


def check_stats(payload: bytes) -> dict[str, Any]:
    stats = json.loads(payload)
    assert set(stats) >= STATS_KEYS, set(stats)
    assert stats["delegate"] in ("xnnpack", "cpu", "edgetpu") and stats["model"].endswith(".tflite")
    counters = {"sent", "dropped", "queue_dropped", "rate_limited", "backlog_skipped", "overflow", "reconnects",
                "queued", "inbox", "unsent"}  # fmt: skip
    assert counters <= set(stats["mqtt"]) and all(isinstance(stats["mqtt"][k], int) for k in counters)
    return dict(stats)


def check_discovery(payload: bytes, base: str) -> dict[str, Any]:
    config = json.loads(payload)
    assert set(config) >= DISCOVERY_KEYS, set(config)
    assert config["state_topic"].startswith(base + "/")
    assert config["availability"][0]["topic"] == f"{base}/status"
    assert config["device"]["identifiers"] and isinstance(config["expire_after"], int)
    return dict(config)


# --- settings, config and payload builders (no broker) -----------------------------------------------


def test_device_id_is_sanitised_hostname() -> None:
    assert sanitize_device_id("pi.local") == "pi_local"
    assert sanitize_device_id("ä b/c#+") == "b_c"
    assert sanitize_device_id("///") == "edgepose"
    default = device_id(MqttConfig(url="mqtt://h"))
    assert default and set(default) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    assert device_id(MqttConfig(url="mqtt://h", device_id="cam1")) == "cam1"


def test_password_from_file_or_systemd_credential(tmp_path: Path) -> None:
    pw_file = tmp_path / "pw"
    pw_file.write_text(SECRET + "\n")
    cfg = MqttConfig(url="mqtts://edgepose@broker.lan", password_file=str(pw_file))
    settings = broker_settings(cfg, {})
    assert (settings.host, settings.port, settings.tls, settings.username) == ("broker.lan", 8883, True, "edgepose")
    assert settings.password == SECRET and SECRET not in repr(settings) and SECRET not in settings.url
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text(SECRET)
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert read_password(MqttConfig(url="mqtt://u@h"), env) == SECRET
    assert read_password(MqttConfig(url="mqtt://u@h"), {}) is None
    assert read_password(MqttConfig(url="mqtt://u@h"), {"CREDENTIALS_DIRECTORY": str(tmp_path / "none")}) is None
    with pytest.raises(ConfigError, match="not found"):
        read_password(MqttConfig(url="mqtt://u@h", password_file=str(tmp_path / "missing")), {})
    with pytest.raises(ConfigError, match="user"):
        broker_settings(MqttConfig(url="mqtt://h", password_file=str(pw_file)), {})
    assert broker_settings(MqttConfig(url="mqtt://h"), {}).port == 1883
    # The unit's SetCredential= default is an empty credential: it means "no password" …
    (creds / "mqtt_password").write_text("\n")
    assert read_password(MqttConfig(url="mqtt://u@h"), env) is None
    # … while an explicitly configured empty file is a mistake worth reporting.
    with pytest.raises(ConfigError, match="is empty"):
        read_password(MqttConfig(url="mqtt://u@h", password_file=str(creds / "mqtt_password")), {})


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--mqtt", "http://127.0.0.1"], "mqtt url"),
        (["--mqtt", "mqtt://127.0.0.1:99999"], "port"),
        (["--mqtt", "mqtt://h", "--device-id", "cam/1"], "device_id"),
        (["--mqtt", "mqtt://h", "--mqtt-prefix", "a/#"], "prefix"),
        (["--mqtt", "mqtt://h", "--mqtt-ca", "/tmp/ca.pem"], "mqtts://"),
        (["--mqtt", "mqtt://h", "--mqtt-max-rate", "-1"], "max_rate"),
        (["--mqtt", "mqtt://h", "--stats-interval", "0"], "stats_interval"),
    ],
)
def test_bad_mqtt_settings_are_one_line_errors(args: list[str], needle: str) -> None:
    proc = run_cli("run", "--source", "synthetic", *args, "--print-config")
    assert_one_line_error(proc, 2, needle)
    assert SECRET not in proc.stderr + proc.stdout


def test_password_in_url_is_redacted_when_printed() -> None:
    proc = run_cli("run", "--print-config", env={"EDGEPOSE_MQTT_URL": f"mqtt://edgepose:{SECRET}@127.0.0.1"})
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr and "mqtt://edgepose:***@127.0.0.1" in proc.stdout


def test_missing_password_file_is_a_config_error(models_dir: Path, tmp_path: Path) -> None:
    proc = run_cli("run", "--source", "synthetic", "--max-frames", "1", "--mqtt", "mqtt://u@127.0.0.1:1",
                   "--mqtt-password-file", str(tmp_path / "nope"), *model_args(models_dir))  # fmt: skip
    assert_one_line_error(proc, 2, "password file not found")


def test_discovery_configs_have_home_assistant_keys() -> None:
    topics = Topics("edgepose", "cam1")
    info = BackendInfo("ai_edge_litert", "xnnpack", 2, "m.tflite")
    configs = dict(discovery_configs(topics, info, Discovery(30.0, "squat")))
    announced = {topic for topic, payload in configs.items() if payload}
    assert announced == {
        "homeassistant/binary_sensor/edgepose_cam1/person/config",
        "homeassistant/sensor/edgepose_cam1/people/config",
        "homeassistant/binary_sensor/edgepose_cam1/fallen/config",
        "homeassistant/sensor/edgepose_cam1/reps/config",
        "homeassistant/event/edgepose_cam1/fall/config",
        "homeassistant/sensor/edgepose_cam1/score/config",
        "homeassistant/binary_sensor/edgepose_cam1/camera/config",
        "homeassistant/sensor/edgepose_cam1/fps/config",
        "homeassistant/sensor/edgepose_cam1/posture/config",
    }
    # no controls without handlers: their configs are empty (removing any announced before)
    assert {t for t, p in configs.items() if not p} == {
        f"homeassistant/{c}/edgepose_cam1/{n}/config"
        for c, n in (
            ("switch", "detection"),
            ("select", "exercise"),
            ("button", "reset_reps"),
            ("button", "snapshot"),
            ("image", "snapshot_image"),
        )
    }
    event = json.loads(configs.pop("homeassistant/event/edgepose_cam1/fall/config"))
    assert event["event_types"] == ["fall", "long_lie", "recovered"] and "expire_after" not in event
    camera = json.loads(configs.pop("homeassistant/binary_sensor/edgepose_cam1/camera/config"))
    assert camera["state_topic"] == "edgepose/cam1/camera" and "expire_after" not in camera
    unique = {check_discovery(p, topics.base)["unique_id"] for p in configs.values() if p}
    assert len(unique | {event["unique_id"], camera["unique_id"]}) == 9


# --- against a real broker ----------------------------------------------------------------------------


@pytest.mark.slow
def test_topics_schema_and_one_message_per_frame(broker: Broker, models_dir: Path, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.avi", 24)
    sub = Subscriber(broker.port)
    out = tmp_path / "out.jsonl"
    proc = mqtt_run(models_dir, broker.port, "cam1", "--source", str(video), "--stats-interval", "0.3",
                    "--output", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert "processed 24 frames" in proc.stderr and len(lines) == 24
    base = "edgepose/cam1"
    assert sub.wait_for(lambda s: len(s.on(f"{base}/pose")) >= 24 and s.on(f"{base}/status")[-1:] == [b"offline"])
    time.sleep(0.3)
    poses = sub.on(f"{base}/pose")
    assert len(poses) == 24, "one pose message per processed frame"
    assert [json.loads(p) for p in poses] == [json.loads(line) for line in lines], "same JSON as `edgepose run`"
    for payload in poses:
        check_pose(payload)
    assert all(not r for t, _, r, _ in sub.messages if t == f"{base}/pose"), "pose is not retained"
    assert sub.on(f"{base}/status") == [b"online", b"offline"]
    assert sub.on(f"{base}/person")[-1] in (b"ON", b"OFF")
    final = check_stats(sub.on(f"{base}/stats")[-1])
    # (stats are QoS 0: one due before the broker's CONNACK may be dropped and counted, so no check on that)
    assert final["frames"] == 24 and final["device"] == "cam1"
    assert not [t for t in sub.topics() if t.startswith("homeassistant/")], "discovery is opt-in"
    leaves = ("pose", "status", "stats", "person", "people", "state", "fallen", "posture", "event", "analysis",
              "camera", "detection", "exercise")  # fmt: skip
    assert sub.topics() <= {f"{base}/{leaf}" for leaf in leaves}
    sub.close()
    # what a dashboard subscribing now sees: retained status/stats/person, never a stale pose
    assert retained(broker.port, f"{base}/status") == b"offline"
    assert json.loads(retained(broker.port, f"{base}/stats") or b"{}")["frames"] == 24
    assert retained(broker.port, f"{base}/person") in (b"ON", b"OFF")
    assert retained(broker.port, f"{base}/pose", timeout=0.5) is None


@pytest.mark.slow
def test_rate_limit_and_only_person(broker: Broker, models_dir: Path, testdata: Path) -> None:
    sub = Subscriber(broker.port)
    # a file read at full speed is limited by its media time (60 frames at 30 fps: 2 s), as it would be in real
    # time: poses at 0, 0.5, 1 and 1.5 s, however fast the machine reads it
    proc = mqtt_run(models_dir, broker.port, "rate", "--source", "synthetic:320x240", "--max-frames", "60",
                    "--mqtt-max-rate", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "", "with MQTT on and no --output, no JSON lines on stdout"
    assert sub.wait_for(lambda s: s.on("edgepose/rate/status")[-1:] == [b"offline"])
    stats = json.loads(retained(broker.port, "edgepose/rate/stats") or b"{}")
    sent = len(sub.on("edgepose/rate/pose"))
    assert (sent, stats["mqtt"]["rate_limited"]) == (4, 56)
    # synthetic frames hold no person (score < min_score): nothing on pose, person OFF
    proc = mqtt_run(models_dir, broker.port, "empty", "--source", "synthetic:320x240", "--max-frames", "10",
                    "--mqtt-only-person")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sub.wait_for(lambda s: s.on("edgepose/empty/status")[-1:] == [b"offline"])
    assert sub.on("edgepose/empty/pose") == [] and sub.on("edgepose/empty/person")[-1] == b"OFF"
    proc = mqtt_run(models_dir, broker.port, "person", "--source", str(testdata / "woman_standing.png"),
                    "--mqtt-only-person")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sub.wait_for(lambda s: s.on("edgepose/person/status")[-1:] == [b"offline"])
    assert len(sub.on("edgepose/person/pose")) == 1 and sub.on("edgepose/person/person")[-1] == b"ON"
    assert check_pose(sub.on("edgepose/person/pose")[0])["score"] >= ModelConfig().min_score
    sub.close()


@pytest.mark.slow
def test_status_online_then_last_will_after_sigkill(broker: Broker, models_dir: Path, tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{broker.port}"
    run = Running(tmp_path / "run", ["--source", "synthetic:320x240", "--mqtt", url, "--device-id", "lwt",
                                     "--mqtt-max-rate", "5", *model_args(models_dir)])  # fmt: skip
    try:
        wait_retained(broker.port, "edgepose/lwt/status", b"online")
        assert run.alive()
        run.stop(signal.SIGKILL)
        took = wait_retained(broker.port, "edgepose/lwt/status", b"offline", timeout=15)
        print(f"\nLast Will 'offline' retained {took:.2f} s after SIGKILL")
    finally:
        run.stop(signal.SIGKILL)


@pytest.mark.slow
def test_broker_down_at_start_then_killed_and_restarted(models_dir: Path, tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker")  # port reserved, not started yet
    env = {"EDGEPOSE_MQTT_RECONNECT_MAX_S": "4"}
    base = "edgepose/cam3"
    run = Running(tmp_path / "run", ["--source", "synthetic:320x240", "--mqtt", f"mqtt://127.0.0.1:{broker.port}",
                                     "--device-id", "cam3", "--mqtt-max-rate", "5", "--ha-discovery",
                                     "--stats-interval", "1", *model_args(models_dir)], env=env)  # fmt: skip
    try:
        # the source and the model load first, then MQTT starts
        assert eventually(lambda: "cannot connect" in run.stderr or not run.alive(), 60), run.stderr
        assert run.alive(), run.stderr
        broker.start()
        first = wait_retained(broker.port, f"{base}/status", b"online")
        print(f"\nbroker appeared: connected within {first:.2f} s")
        # kill the broker mid-run, leave it down long enough for the backoff to reach its maximum
        broker.kill()
        time.sleep(6)
        assert run.alive(), run.stderr
        broker.start()  # same port, empty broker: no retained messages survive
        restarted = time.monotonic()
        sub = Subscriber(broker.port)
        configs = ("binary_sensor/edgepose_cam3/person", "sensor/edgepose_cam3/score", "sensor/edgepose_cam3/fps")
        discovery = [f"homeassistant/{c}/config" for c in configs]
        assert sub.wait_for(lambda s: s.on(f"{base}/status") == [b"online"] and all(s.on(t) for t in discovery))
        reconnect_s = max(ts for t, _, _, ts in sub.messages if t in (f"{base}/status", *discovery)) - restarted
        print(f"reconnect after broker restart: {reconnect_s:.2f} s (backoff maximum 4 s)")
        assert reconnect_s <= 4 + 6, "reconnects within the backoff maximum (plus slack for a busy box)"
        for topic in discovery:
            check_discovery(sub.on(topic)[0], base)
        assert sub.wait_for(lambda s: any(json.loads(p)["mqtt"]["reconnects"] >= 1 for p in s.on(f"{base}/stats")))
        stats = check_stats(sub.on(f"{base}/stats")[-1])
        assert stats["mqtt"]["dropped"] > 0, "QoS 0 telemetry while disconnected is dropped and counted"
        # Home Assistant restarts: its birth message makes edgepose re-publish discovery
        before = len(sub.on(discovery[0]))
        sub.client.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        assert sub.wait_for(lambda s: all(len(s.on(t)) > before for t in discovery)), "discovery re-published"
        assert not any(r for t, _, r, _ in sub.messages[-3:] if t in discovery), "delivered live, not stale"
        assert run.alive()
        assert run.stop(signal.SIGTERM) == 0, run.stderr
        assert sub.wait_for(lambda s: s.on(f"{base}/status")[-1:] == [b"offline"])
        sub.close()
        assert "reconnected" in run.stderr and "Traceback" not in run.stderr
    finally:
        run.stop(signal.SIGKILL)
        broker.kill()


@pytest.mark.slow
def test_offline_queue_is_bounded_and_flushed_in_order(tmp_path: Path) -> None:
    from edgepose.sinks.mqtt.client import MqttSink

    broker = Broker(tmp_path / "broker", users={"admin": "adminpw"})
    cfg = MqttConfig(url=f"mqtt://edgepose@127.0.0.1:{broker.port}", device_id="q", queue_size=3,
                     reconnect_max_s=1, password_file=str(tmp_path / "pw"))  # fmt: skip
    (tmp_path / "pw").write_text("sinkpw")
    sink = MqttSink(cfg, PipelineStats(), BackendInfo("r", "cpu", 1, "m.tflite"), 0.5, environ={})
    sink.start()  # broker down: returns after the first failed attempt
    try:
        for i, score in enumerate([0.9, 0.1, 0.9, 0.1, 0.9, 0.1]):  # six person changes, six pose messages
            sink.publish(fake_result(i, score))
        deadline = time.monotonic() + 10
        while sink.counters.dropped < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.counters.dropped == 6, "QoS 0 pose messages are dropped while disconnected"
        assert sink.counters.queue_dropped == 3, "the QoS 1 queue keeps the newest queue_size messages"
        broker.start()  # the sink's user does not exist yet: connections are refused, the subscriber listens
        sub = Subscriber(broker.port, username="admin", password="adminpw")
        broker.add_user("edgepose", "sinkpw")
        assert sub.wait_for(lambda s: len(s.on("edgepose/q/person")) >= 4)
        assert sub.on("edgepose/q/person")[:4] == [b"OFF", b"ON", b"OFF", b"OFF"], "queued changes, then state"
        assert sub.on("edgepose/q/status")[0] == b"online" and sink.counters.dropped == 6
        sub.close()
    finally:
        sink.close()
        broker.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "test-ca")
    server = make_cert(folder, "server", ca, server=True)
    client = make_cert(folder, "client", ca, server=False)
    wrong_ca = make_ca(folder, "other-ca")
    return {"ca": ca[0], "server": server[0], "server_key": server[1], "cert": client[0], "key": client[1],
            "wrong_ca": wrong_ca[0]}  # fmt: skip


@pytest.mark.slow
def test_tls_password_and_acl(pki: dict[str, Path], models_dir: Path, tmp_path: Path) -> None:
    acl = ("user admin\ntopic readwrite #\n\n"
           "user edgepose\ntopic write edgepose/+/#\ntopic read homeassistant/status\n")  # fmt: skip
    broker = Broker(tmp_path / "broker", tls=(pki["ca"], pki["server"], pki["server_key"]),
                    users={"admin": "adminpw", "edgepose": SECRET}, acl=acl).start()  # fmt: skip
    tls = ["--mqtt-ca", str(pki["ca"]), "--mqtt-cert", str(pki["cert"]), "--mqtt-key", str(pki["key"])]
    url = f"mqtts://edgepose@127.0.0.1:{broker.port}"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text(SECRET + "\n")
    admin = {"username": "admin", "password": "adminpw", "ca": pki["ca"], "cert": pki["cert"], "key": pki["key"]}
    sub = Subscriber(broker.port, **admin)
    run = Running(tmp_path / "run", ["-v", "--source", "synthetic:320x240", "--mqtt", url, "--device-id", "tls",
                                     "--mqtt-max-rate", "5", "--ha-discovery", *tls, *model_args(models_dir)],
                  env={"CREDENTIALS_DIRECTORY": str(creds)})  # fmt: skip
    try:
        wait_retained(broker.port, "edgepose/tls/status", b"online", **admin)
        assert sub.wait_for(lambda s: len(s.on("edgepose/tls/pose")) >= 3)
        cmdline = Path(f"/proc/{run.proc.pid}/cmdline").read_bytes()
        assert b"edgepose" in cmdline and SECRET.encode() not in cmdline
        time.sleep(1)
        assert run.stop() == 0
        assert SECRET not in run.stderr and SECRET not in run.out_path.read_text()
        assert "DEBUG" in run.stderr, "verbose logs were checked"
        # the discovery topics are outside the ACL: acknowledged by the broker, never delivered
        assert not [t for t in sub.topics() if t.startswith("homeassistant/")]
        assert "edgepose/tls/stats" in sub.topics()
        # --print-config shows the password file, never the password
        pw_file = tmp_path / "pw"
        pw_file.write_text(SECRET)
        shown = run_cli("run", "--mqtt", url, "--mqtt-password-file", str(pw_file), *tls, "--print-config")
        assert shown.returncode == 0 and str(pw_file) in shown.stdout and SECRET not in shown.stdout + shown.stderr
        # a password in the url (here from the environment) works, with a warning, and is never shown
        env_url = f"mqtts://edgepose:{SECRET}@127.0.0.1:{broker.port}"
        in_url = run_cli("run", "--source", "synthetic", "--max-frames", "5", "--device-id", "inurl", *tls,
                         *model_args(models_dir), env={"EDGEPOSE_MQTT_URL": env_url})  # fmt: skip
        assert in_url.returncode == 0 and "password is in the url" in in_url.stderr, in_url.stderr
        assert SECRET not in in_url.stderr and "mqtts://edgepose@127.0.0.1" in in_url.stderr
        assert sub.wait_for(lambda s: len(s.on("edgepose/inurl/pose")) == 5)
        # a wrong password is refused; the run still finishes
        (tmp_path / "bad").write_text("wrong-password")
        bad = mqtt_run(models_dir, broker.port, "badpw", "--source", "synthetic", "--max-frames", "5", *tls,
                       "--mqtt-password-file", str(tmp_path / "bad"), scheme="mqtts", user="edgepose")  # fmt: skip
        assert bad.returncode == 0, bad.stderr
        assert "not authorized" in bad.stderr.lower() and "wrong-password" not in bad.stderr
        # a broker certificate from another CA is rejected
        other = mqtt_run(models_dir, broker.port, "badca", "--source", "synthetic", "--max-frames", "5",
                         "--mqtt-ca", str(pki["wrong_ca"]), "--mqtt-cert", str(pki["cert"]), "--mqtt-key",
                         str(pki["key"]), "--mqtt-password-file", str(pw_file), scheme="mqtts",
                         user="edgepose")  # fmt: skip
        assert other.returncode == 0, other.stderr
        assert "certificate verify failed" in other.stderr.lower() and SECRET not in other.stderr
        time.sleep(0.5)
        assert not [t for t in sub.topics() if "/badpw/" in t or "/badca/" in t]
        sub.close()
    finally:
        run.stop(signal.SIGKILL)
        broker.stop()
    log = broker.log_path.read_text()
    assert "not authorised" in log.lower() or "bad user name or password" in log.lower()
    assert "Denied PUBLISH from edgepose-tls" in log and "'homeassistant/sensor/edgepose_tls/" in log, "tried, denied"
    assert SECRET not in log
