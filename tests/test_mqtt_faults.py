"""MQTT faults injected for real: a broker that never answers, one that hangs, one killed twice, a full inbox.

Every broker is a real mosquitto on a free loopback port (tests/broker.py); "hung" is that mosquitto
stopped with SIGSTOP (its sockets stay open, nothing is answered), "silent" is a listening socket that
never accepts. Time bounds are upper bounds with wide slack, never speeds.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from broker import Broker, Subscriber, retained
from conftest import eventually, model_args
from test_mqtt import Running, check_discovery, check_stats, fake_result, mqtt_run, wait_retained

from edgepose.config import MqttConfig
from edgepose.health import PipelineStats
from edgepose.pose import BackendInfo
from edgepose.sinks.mqtt.homeassistant import Discovery, discovery_configs
from edgepose.sinks.mqtt.topics import Topics

if TYPE_CHECKING:
    from edgepose.sinks.mqtt.client import MqttSink

INFO = BackendInfo("ai_edge_litert", "xnnpack", 2, "m.tflite")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener completes TCP handshakes (kernel backlog) but never accepts or answers."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        yield int(srv.getsockname()[1])


def make_sink(port: int, device: str, **cfg: Any) -> tuple[MqttSink, PipelineStats]:
    """An MQTT sink for ``mqtt://127.0.0.1:<port>`` (min score 0.5) and the stats it reports into."""
    from edgepose.sinks.mqtt.client import MqttSink

    stats = PipelineStats()
    config = MqttConfig(url=f"mqtt://127.0.0.1:{port}", device_id=device, reconnect_max_s=1, **cfg)
    return MqttSink(config, stats, INFO, 0.5, environ={}), stats


# --- start-up wait and close deadline -------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_during_the_startup_wait_for_a_silent_broker(
    silent_port: int, models_dir: Path, tmp_path: Path
) -> None:
    """SIGTERM while ``start()`` waits (up to 5 s) for a broker that never answers: exit at once.

    Measured: 4.8-5 s from the signal to the exit before the fix (the whole start-up wait), ~0.3 s after.
    """
    run = Running(tmp_path / "run", ["--source", "synthetic:320x240", "--mqtt", f"mqtt://127.0.0.1:{silent_port}",
                                     "--device-id", "silent", *model_args(models_dir)])  # fmt: skip
    try:
        assert eventually(lambda: "MQTT: publishing to" in run.stderr, 60), run.stderr  # start() now waits
        time.sleep(0.2)
        signalled = time.monotonic()
        code = run.stop(signal.SIGTERM, timeout=30)
        took = time.monotonic() - signalled
        print(f"\nexit {took:.2f} s after SIGTERM during the broker wait")
        err = run.stderr
        assert code == 0, err
        assert "SIGTERM received" in err and "Traceback" not in err
        assert "still connecting" not in err, "the start-up wait ran to its end despite the stop request"
        assert err.index("SIGTERM received") < err.index("stop requested while connecting")
        assert took < 3.0, "exits long before the 5 s start-up wait would have ended"
    finally:
        run.stop(signal.SIGKILL)


@pytest.mark.slow
def test_close_keeps_one_deadline_with_a_hung_broker(tmp_path: Path) -> None:
    """A broker that stops answering mid-run: ``close(timeout_s)`` returns within its one deadline."""
    broker = Broker(tmp_path / "broker").start()
    sink, _ = make_sink(broker.port, "hung")
    sink.start()
    try:
        wait_retained(broker.port, "edgepose/hung/status", b"online")
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGSTOP)  # sockets stay open; no PUBACK, no PINGRESP ever
        for i in range(50):
            sink.publish(fake_result(i, 0.9 if i % 2 else 0.1))
        started = time.monotonic()
        sink.close(timeout_s=1.0)
        took = time.monotonic() - started
        print(f"\nclose(timeout_s=1.0) against a hung broker took {took:.2f} s")
        assert took < 3.0, "close() overran its deadline"
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            broker.proc.send_signal(signal.SIGCONT)
        sink.close()
        broker.kill()


# --- the person state ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_person_change_lost_to_a_full_inbox_is_sent_later(tmp_path: Path) -> None:
    """ON → OFF arrives while the inbox is full: it must still reach the broker once there is room.

    The worker is not running yet while the inbox is filled: exactly what a worker starved of CPU by
    inference looks like to ``publish`` (every put fails), without depending on the machine's speed.
    """
    from edgepose.sinks.mqtt.client import INBOX_SIZE

    broker = Broker(tmp_path / "broker")  # down at first
    sink, _ = make_sink(broker.port, "full", queue_size=4)
    frame = 0
    while sink.counters.overflow == 0:
        sink.publish(fake_result(frame, 0.9))
        frame += 1
    assert frame <= INBOX_SIZE
    sink.publish(fake_result(frame, 0.1))  # the room empties: ON → OFF cannot be queued
    assert sink.counters.overflow == 4, "the person change, the people count and the pose message were refused"
    sink.start()  # broker down: returns after the refused attempt
    try:

        def catch_up() -> bool:  # the room stays empty; frames keep coming while the worker drains the inbox
            nonlocal frame
            drained = sink.depths()["inbox"] == 0
            frame += 1
            sink.publish(fake_result(frame, 0.1))
            return drained

        assert eventually(catch_up), "the worker drained the inbox"
        broker.start()
        sub = Subscriber(broker.port, ("edgepose/full/#",))
        assert sub.wait_for(lambda s: b"online" in s.on("edgepose/full/status"))
        wait_retained(broker.port, "edgepose/full/person", b"OFF", timeout=15)
        assert sub.wait_for(lambda s: s.on("edgepose/full/person")[-1:] == [b"OFF"])
        wait_retained(broker.port, "edgepose/full/people", b"0", timeout=15)
        sub.close()
    finally:
        sink.close()
        broker.kill()


# --- Home Assistant ---------------------------------------------------------------------------------------


def test_discovery_expires_only_entities_on_topics_refreshed_on_a_schedule() -> None:
    topics = Topics("edgepose", "cam1")
    base = topics.base

    def configs(stats_interval_s: float = 30.0) -> dict[str, dict[str, Any]]:
        pairs = discovery_configs(topics, INFO, Discovery(stats_interval_s, "squat"))
        return {topic.split("/")[-2]: json.loads(payload) for topic, payload in pairs if payload}

    every = configs()
    assert "expire_after" not in every.pop("fall"), "the fall event entity is stateless"
    assert "expire_after" not in every.pop("camera"), "sent on change only; its availability follows the process"
    expected = {"person": 90, "people": 90, "score": 90, "fps": 90, "fallen": 90, "reps": 90, "posture": 90}
    assert {k: c["expire_after"] for k, c in every.items()} == expected
    # the pose score comes from stats, so neither --mqtt-only-person nor --mqtt-max-rate changes its expiry
    assert every["score"]["state_topic"] == f"{base}/stats"
    assert configs(10.0)["score"]["expire_after"] == 60 and configs(100.0)["score"]["expire_after"] == 300


@pytest.mark.slow
def test_only_person_discovery_sent_by_the_cli(models_dir: Path, tmp_path: Path) -> None:
    with Broker(tmp_path / "broker") as broker:
        proc = mqtt_run(models_dir, broker.port, "quiet", "--source", "synthetic:320x240", "--max-frames", "3",
                        "--mqtt-only-person", "--ha-discovery")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        node = "edgepose_quiet"
        score = json.loads(retained(broker.port, f"homeassistant/sensor/{node}/score/config") or b"{}")
        person = json.loads(retained(broker.port, f"homeassistant/binary_sensor/{node}/person/config") or b"{}")
        assert score["state_topic"] == "edgepose/quiet/stats", "from stats: refreshed while the room is empty too"
        assert score["expire_after"] == person["expire_after"]
        assert check_discovery(json.dumps(person).encode(), "edgepose/quiet")["expire_after"] >= 60


# --- broker killed and restarted twice ------------------------------------------------------------------


@pytest.mark.slow
def test_person_changes_during_two_broker_outages_are_not_lost(tmp_path: Path) -> None:
    """The room changes while the broker is down, twice: the retained person state follows each time.

    The first outage holds one change; in the second the state flaps on every frame, far more changes
    than the offline queue holds (5): the queue stays at its bound, the overflow is counted, and the
    last state still wins once the broker is back.
    """
    broker = Broker(tmp_path / "broker").start()
    sink, stats = make_sink(broker.port, "kill2", queue_size=5, stats_interval_s=1.0)
    mode = ["on"]
    done = threading.Event()

    def feed() -> None:  # a pipeline at ~25 fps
        frame = 0
        while not done.is_set():
            present = mode[0] == "on" or (mode[0] == "flap" and frame % 2 == 0)
            sink.publish(fake_result(frame, 0.9 if present else 0.1))
            frame += 1
            time.sleep(0.04)

    feeder = threading.Thread(target=feed, daemon=True)
    sink.start()
    feeder.start()
    base = "edgepose/kill2"
    try:
        wait_retained(broker.port, f"{base}/person", b"ON")
        # outage 1: the room empties while the broker is down
        broker.kill()
        assert eventually(lambda: not stats.mqtt_connected, 10)
        mode[0] = "off"
        assert eventually(lambda: sink.depths()["queued"] == 1, 10), "the OFF change waits for the broker"
        broker.start()  # empty broker: the retained state must come from edgepose again
        sub = Subscriber(broker.port, (f"{base}/#",))
        assert sub.wait_for(lambda s: len(s.on(f"{base}/pose")) >= 5), "pose resumed after outage 1"
        wait_retained(broker.port, f"{base}/person", b"OFF")
        wait_retained(broker.port, f"{base}/status", b"online")
        assert eventually(lambda: sink.counters.reconnects == 1)
        sub.close()
        # outage 2: the state flaps on every frame, then someone stays
        broker.kill()
        assert eventually(lambda: not stats.mqtt_connected, 10)
        mode[0] = "flap"
        depth = []
        for _ in range(30):
            time.sleep(0.05)
            depth.append(sink.depths()["queued"])
        mode[0] = "on"
        assert max(depth) == 5, f"the offline queue stays at its bound: {depth}"
        assert sink.counters.queue_dropped > 0, "older changes beyond the bound are dropped and counted"
        broker.start()
        sub = Subscriber(broker.port, (f"{base}/#",))
        assert sub.wait_for(lambda s: len(s.on(f"{base}/pose")) >= 5), "pose resumed after outage 2"
        wait_retained(broker.port, f"{base}/person", b"ON")
        wait_retained(broker.port, f"{base}/status", b"online")
        assert eventually(lambda: sink.counters.reconnects == 2)
        assert sub.wait_for(lambda s: s.on(f"{base}/person")[-1:] == [b"ON"]), "the last state sent is the current one"
        sub.close()
        c = sink.counters
        assert c.dropped > 0, "pose messages while down were dropped and counted"
        assert c.overflow == 0
        assert eventually(lambda: sink.depths()["queued"] == 0), "the offline queue was flushed"
        assert sink.depths()["inbox"] < 100
    finally:
        done.set()
        feeder.join(5)
        sink.close()
        broker.kill()


@pytest.mark.slow
def test_run_survives_the_broker_killed_and_restarted_twice(models_dir: Path, tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker").start()
    base = "edgepose/twice"
    run = Running(tmp_path / "run", ["--source", "synthetic:320x240", "--mqtt", f"mqtt://127.0.0.1:{broker.port}",
                                     "--device-id", "twice", "--mqtt-max-rate", "5", "--stats-interval", "1",
                                     *model_args(models_dir)], env={"EDGEPOSE_MQTT_RECONNECT_MAX_S": "2",
                                                                    "EDGEPOSE_MQTT_QUEUE_SIZE": "10"})  # fmt: skip
    try:
        wait_retained(broker.port, f"{base}/status", b"online", timeout=60)
        wait_retained(broker.port, f"{base}/person", b"OFF")  # synthetic frames hold nobody
        last_dropped = 0
        for outage in (1, 2):
            broker.kill()
            time.sleep(3)
            assert run.alive(), run.stderr
            broker.start()  # same port, empty broker: nothing retained survives
            sub = Subscriber(broker.port, (f"{base}/#",))

            def reconnected(s: Subscriber, n: int = outage) -> bool:
                return any(json.loads(p)["mqtt"]["reconnects"] == n for p in s.on(f"{base}/stats"))

            assert sub.wait_for(reconnected), f"stats after reconnect {outage}"
            assert sub.wait_for(lambda s: len(s.on(f"{base}/pose")) >= 3), f"pose resumed after outage {outage}"
            wait_retained(broker.port, f"{base}/status", b"online")
            wait_retained(broker.port, f"{base}/person", b"OFF")  # QoS 1 retained state is back
            stats = check_stats(next(p for p in reversed(sub.on(f"{base}/stats")) if reconnected_one(p, outage)))
            mq = stats["mqtt"]
            assert mq["dropped"] > last_dropped, "pose messages during the outage are dropped and counted"
            assert mq["queued"] <= 10 and mq["inbox"] < 100 and mq["overflow"] == 0, mq
            last_dropped = mq["dropped"]
            sub.close()
        assert run.stop(signal.SIGTERM) == 0, run.stderr
        assert retained(broker.port, f"{base}/status") == b"offline"
        assert run.stderr.count("reconnected to") == 2 and "Traceback" not in run.stderr
    finally:
        run.stop(signal.SIGKILL)
        broker.kill()


def reconnected_one(payload: bytes, n: int) -> bool:
    return bool(json.loads(payload)["mqtt"]["reconnects"] == n)
