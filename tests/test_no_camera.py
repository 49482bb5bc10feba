"""A camera that is missing at start, or lost mid-run: the service is up, says so, keeps trying and picks it up.

Through the real ``edgepose run`` with the real model, a real AF_UNIX socket playing systemd's notify socket
(:class:`test_systemd.NotifyListener`), a real mosquitto and the real preview server. The camera is an MJPEG
server on a port fixed in advance: nothing listens there at first (every opening fails: connection
refused), then it starts, as a network camera that boots later or a USB camera being plugged in.
In-process tests check the parts: the source's state, the heartbeat sink, the capture thread's give-up,
and that a hung loop stops the pings while the capture thread retries.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from broker import Broker, Subscriber, free_port
from conftest import eventually
from mjpeg_server import MjpegServer, jpeg
from test_systemd import STARTUP_S, UNIT, NotifyListener, start_run

from edgepose.config import LIMITS, SourceConfig, build_config
from edgepose.errors import SourceError
from edgepose.health import PipelineStats, SourceState
from edgepose.pipeline.capture import CaptureOptions, CaptureThread, FrameBuffer
from edgepose.pose import BackendInfo
from edgepose.sinks import notify as systemd

WATCHDOG_USEC = 2_000_000
#: systemd acts when a whole WATCHDOG_USEC passes without a ping; the pings go out every quarter of it.
PING_GAP_LIMIT_S = WATCHDOG_USEC / 1e6
PICTURE = jpeg(np.full((240, 320, 3), 90, np.uint8))


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


class Run:
    """``edgepose run`` on an MJPEG URL, with the notify socket, the preview and MQTT stats every 0.5 s."""

    def __init__(self, tmp_path: Path, models_dir: Path, camera_port: int) -> None:
        self.listener = NotifyListener(str(tmp_path / "notify.sock"))
        self.broker = Broker(tmp_path / "broker").start()
        self.subscriber = Subscriber(self.broker.port, ("edgepose/nocam/stats",))
        self.preview = free_port()
        env = {"NOTIFY_SOCKET": self.listener.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
        self.proc = start_run(f"http://127.0.0.1:{camera_port}/stream", models_dir, env, "--preview",
                              str(self.preview), "--mqtt", f"mqtt://127.0.0.1:{self.broker.port}", "--device-id",
                              "nocam", "--stats-interval", "0.5", "--output", os.devnull)  # fmt: skip

    def stats(self) -> dict[str, Any]:
        """The newest MQTT stats message (``{}`` before the first)."""
        found = self.subscriber.on("edgepose/nocam/stats")
        return json.loads(found[-1]) if found else {}

    def statuses(self, text: str) -> list[str]:
        return [s for s in self.listener.values("STATUS") if text in s]

    def alive(self) -> bool:
        assert self.proc.poll() is None, f"edgepose exited ({self.proc.returncode}): {self.proc.communicate()[1]}"
        return True

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.subscriber.client.loop_stop()
        self.broker.stop()
        self.listener.close()
        return self.proc.returncode, err


@pytest.fixture
def service(tmp_path: Path, models_dir: Path) -> Iterator[tuple[Run, int]]:
    port = free_port()
    run = Run(tmp_path, models_dir, port)
    try:
        yield run, port
    finally:
        run.stop()


def _pings(run: Run, start: float, end: float) -> list[float]:
    return [t for t in run.listener.times("WATCHDOG=1") if start <= t <= end]


@pytest.mark.slow
def test_no_camera_at_start_is_ready_says_so_keeps_pinging_and_picks_it_up(service: tuple[Run, int]) -> None:
    run, port = service
    ready = run.listener.wait_for("READY=1", STARTUP_S, run.proc)
    # Up without a camera: the capture thread keeps trying (four failed openings, about 3.5 s of backoff).
    assert eventually(lambda: run.alive() and (run.stats().get("source") or {}).get("reopens", 0) >= 3, 60), run.stats()
    waiting = run.stats()
    assert waiting["frames"] == 0 and waiting["frame_age_s"] is None
    assert waiting["source"]["state"] == "waiting", waiting
    assert "Connection refused" in waiting["source"]["reason"]
    assert waiting["source"]["down_s"] > 0
    status = run.statuses("waiting for the camera")
    assert status and "cannot open http://127.0.0.1" in status[-1], run.listener.values("STATUS")
    code, text = healthz(run.preview)
    assert code == 503 and "waiting for the camera for" in text, text
    assert "127.0.0.1" not in text, "/healthz answers anyone: it names no address"
    before_camera = time.monotonic()
    pings = _pings(run, ready, before_camera)
    assert len(pings) >= 5, run.listener.messages
    assert max(gaps([ready, *pings, before_camera])) < PING_GAP_LIMIT_S, gaps(pings)
    assert run.proc.poll() is None

    camera = MjpegServer(lambda n: PICTURE, fps=15, port=port).start()  # the camera appears
    try:
        assert eventually(lambda: run.alive() and healthz(run.preview)[0] == 200, 60), healthz(run.preview)
        assert eventually(lambda: run.stats().get("frames", 0) > 0 and run.stats()["source"]["state"] == "ok", 30)
        assert eventually(lambda: bool(run.statuses(" fps, ")), 30), run.listener.values("STATUS")
        back = run.stats()["source"]
        assert back["down_s"] is None and back["retry_in_s"] is None and back["reopens"] >= 4
        assert camera.connections == 1, "the camera is opened once, when it is there"
    finally:
        code, err = run.stop()
        camera.close()
    assert len(run.listener.times("READY=1")) == 1
    assert code == 0, err
    assert "is there now" in err, err
    # The journal gets the first failure as a warning, not one warning per retry.
    assert err.count("WARNING: http://127.0.0.1") == 1, err


@pytest.mark.slow
def test_a_camera_lost_mid_run_is_reported_pinged_while_retried_and_taken_back(service: tuple[Run, int]) -> None:
    run, port = service
    camera = MjpegServer(lambda n: PICTURE, fps=15, port=port).start()
    # (the camera starts right after edgepose: its first openings may fail; it is ready once frames come)
    try:
        assert eventually(lambda: run.alive() and bool(run.statuses(" fps, ")), STARTUP_S), run.listener.values(
            "STATUS"
        )
        assert healthz(run.preview)[0] == 200
    finally:
        camera.close()  # unplugged
    lost = time.monotonic()
    assert eventually(lambda: run.alive() and bool(run.statuses("camera lost")), 60), run.listener.values("STATUS")
    assert eventually(lambda: (run.stats().get("source") or {}).get("state") == "reconnecting", 30), run.stats()
    assert eventually(lambda: "camera lost" in healthz(run.preview)[1], 30), healthz(run.preview)
    assert healthz(run.preview)[0] == 503
    assert eventually(lambda: run.stats()["source"]["reopens"] >= 3, 60), run.stats()
    before_camera = time.monotonic()
    pings = _pings(run, lost, before_camera)
    assert len(pings) >= 5 and max(gaps([lost, *pings, before_camera])) < PING_GAP_LIMIT_S, gaps(pings)
    camera = MjpegServer(lambda n: PICTURE, fps=15, port=port).start()  # plugged in again
    try:
        assert eventually(lambda: run.alive() and run.stats()["source"]["state"] == "ok", 60), run.stats()
        assert eventually(lambda: healthz(run.preview)[0] == 200, 30)
    finally:
        code, err = run.stop()
        camera.close()
    assert code == 0, err
    assert "is back" in err and "reopening in" in err, err
    assert len(run.listener.times("READY=1")) == 1


# --- the parts, in-process ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_source_state_tells_waiting_from_lost_with_its_times() -> None:
    clock = Clock()
    state = SourceState(clock)
    assert state.to_dict() == {"state": "opening", "reason": "", "reopens": 0, "decode_errors": 0, "down_s": None,
                               "retry_in_s": None}  # fmt: skip
    state.lost("cannot open camera 0", 0.5, since=clock.now)
    clock.now += 0.2
    assert state.state == "waiting" and state.retrying
    assert state.to_dict()["down_s"] == 0.2 and state.to_dict()["retry_in_s"] == 0.3
    assert state.headline() == "waiting for the camera for 0 s, next try in 1 s"
    clock.now += 124.8
    state.trying()
    assert state.headline() == "waiting for the camera for 2 min 5 s, trying now"
    assert state.delivering() == "waiting"
    assert state.to_dict()["down_s"] is None and not state.retrying and state.headline() == "frames arriving"
    state.lost("no frame for 10 s", 8.0, since=clock.now - 10)
    assert state.state == "reconnecting", "it delivered before: lost, not waiting"
    assert state.headline() == "camera lost 10 s ago, next try in 8 s"
    clock.now += 3 * 3600
    state.lost("cannot open camera 0", 30.0, since=clock.now)  # the series goes on: down since the first loss
    assert state.headline().startswith("camera lost 3 h 0 min ago")
    state.end()
    assert state.state == "ended" and state.to_dict()["down_s"] is None


def _sink(listener: NotifyListener, stats: PipelineStats, clock: Clock) -> systemd.NotifySink:
    info = BackendInfo("ai_edge_litert", "xnnpack", 1, "m.tflite")
    return systemd.NotifySink(systemd.Notifier(listener.address), stats, info, watchdog_usec=4_000_000, clock=clock)


def test_the_heartbeat_beats_while_the_source_is_retried_and_not_while_it_seems_fine(tmp_path: Path) -> None:
    listener = NotifyListener(str(tmp_path / "s.sock"))
    clock = Clock()
    stats = PipelineStats()
    stats.source = SourceState(clock)
    sink = _sink(listener, stats, clock)
    try:
        sink.alive()  # still opening: no READY yet, nothing to say
        stats.source.lost("cannot open camera 0: check it is connected", 0.5, since=clock.now)
        for _ in range(40):  # 10 s of the loop's 0.25 s polls
            sink.alive()
            clock.now += 0.25
            time.sleep(0.005)  # let the listener drain: an AF_UNIX datagram queue holds only ~10
        # every second (WATCHDOG_USEC / 4) of the fake clock while waiting, not at every poll
        assert eventually(lambda: len(listener.times("WATCHDOG=1")) == 10, 5), listener.messages
        stats.source.delivering()  # frames again, then one is late: the loop polls, nothing is down
        sink.publish(None)  # type: ignore[arg-type]  # the sink never looks at the result
        for _ in range(40):
            sink.alive()
            clock.now += 0.25
        stats.source.lost("no frame for 10 s", 0.5, since=clock.now - 10)
        sink.alive()
        sink.close()
        assert eventually(lambda: bool(listener.times("STOPPING=1")), 5)
    finally:
        listener.close()
    assert listener.messages[0][1][:2] == ["READY=1", "WATCHDOG=1"], listener.messages
    assert len(listener.times("WATCHDOG=1")) == 10 + 2, "one for the frame, none while it seemed fine, one once lost"
    statuses = listener.values("STATUS")
    assert statuses[0] == "waiting for the camera for 0 s, next try in 1 s: cannot open camera 0: check it is connected"
    assert len([s for s in statuses if s.startswith("waiting for the camera")]) == 2  # at 0 s, and 5 s later
    assert statuses[-3].startswith("0.0 fps, delegate xnnpack"), statuses  # at once when frames came back
    assert statuses[-2] == "camera lost 10 s ago, next try in 1 s: no frame for 10 s", statuses  # at once
    assert len(listener.times("READY=1")) == 1


class Camera:
    """A live source that cannot be opened its first ``absent`` times (the camera is not there), then delivers.

    With ``frames``, only the opening right after those delivers, that many frames, and is then unplugged for
    good: its next read fails, and so does every opening after it.
    """

    still = False
    live = True
    name = "camera 0"

    def __init__(self, openings: list[int], absent: int, frames: int | None = None) -> None:
        self._openings = openings
        self._absent = absent
        self._left = frames

    def open(self) -> None:
        self._openings.append(1)
        opening = len(self._openings)
        if opening <= self._absent or (self._left is not None and opening > self._absent + 1):
            raise SourceError("cannot open camera 0: check it is connected")

    def read(self) -> np.ndarray:
        time.sleep(0.02)
        if self._left is not None:
            if self._left == 0:
                raise SourceError("camera 0 unplugged")
            self._left -= 1
        return np.zeros((48, 64, 3), np.uint8)

    def close(self) -> None:
        pass


def test_a_camera_that_fails_to_open_three_times_is_used_once_it_opens() -> None:
    openings: list[int] = []
    buffer = FrameBuffer(capacity=1, drop_oldest=True)
    capture = CaptureThread(Camera(openings, absent=3), buffer, reopen=lambda: Camera(openings, absent=3))
    capture.start()
    try:
        assert eventually(lambda: capture.state.reopens >= 1, 10)
        assert capture.state.state == "waiting", "a camera that was never there is waited for, not reconnected"
        frame = buffer.get(timeout=30)  # the backoff: 0.5 + 1 + 2 s
        assert frame is not None and frame.opening == 3
        assert eventually(lambda: capture.state.state == "ok", 5)
    finally:
        capture.stop()
        capture.join(timeout=5)
    assert len(openings) == 4 and capture.state.reopens == 3 and capture.error is None


@pytest.mark.slow
def test_a_camera_down_for_give_up_s_ends_the_run_for_a_fresh_start() -> None:
    openings: list[int] = []
    buffer = FrameBuffer(capacity=1, drop_oldest=True)
    options = CaptureOptions(give_up_s=2.0)
    capture = CaptureThread(Camera(openings, absent=99), buffer, options, reopen=lambda: Camera(openings, absent=99))
    capture.start()
    assert buffer.get(timeout=30) is None, "the capture thread ended"
    capture.join(timeout=5)
    assert isinstance(capture.error, SourceError)
    assert "camera 0: no frame for " in str(capture.error) and "restart_after_s" in str(capture.error)
    assert "cannot open camera 0" in str(capture.error)
    assert capture.state.state == "ended" and len(openings) >= 3


def _unit(key: str) -> float:
    """A plain-seconds (or count) setting of systemd/edgepose.service."""
    values = [ln.split("=", 1)[1].strip() for ln in UNIT.read_text().splitlines() if ln.startswith(key + "=")]
    assert len(values) == 1, (key, values)
    return float(values[0])


def test_the_source_timings_fit_the_unit() -> None:
    # The shortest restart_after_s, plus RestartSec, keeps the restarts within StartLimitBurst per interval.
    shortest = LIMITS[("source", "restart_after_s")].low + _unit("RestartSec")
    assert shortest * _unit("StartLimitBurst") >= _unit("StartLimitIntervalSec")
    # A camera read that hangs is given up and retried by the capture thread before the watchdog would fire;
    # its first opening, given up as late, still ends before TimeoutStartSec.
    assert SourceConfig.timeout_s < _unit("WatchdogSec") and SourceConfig.timeout_s < _unit("TimeoutStartSec") / 2
    assert SourceConfig.restart_after_s > _unit("WatchdogSec")


def test_restart_after_s_applies_under_systemd_only(tmp_path: Path) -> None:
    from edgepose.commands.run import service_options

    config = build_config(None, environ={"EDGEPOSE_SOURCE_RESTART_AFTER_S": "900"})
    assert service_options(config, {"NOTIFY_SOCKET": "/run/systemd/notify"}).give_up_s == 900
    assert service_options(config, {}).give_up_s == 0, "outside systemd nothing starts it again: it waits"
    default = build_config(None, environ={})
    assert service_options(default, {"NOTIFY_SOCKET": "@x"}).give_up_s == default.source.restart_after_s == 600


@pytest.mark.slow
def test_a_hung_loop_stops_the_pings_while_the_capture_thread_retries(models_dir: Path, tmp_path: Path) -> None:
    """The capture thread is alive and trying, but the loop is stuck in a sink: no pings, so systemd restarts it."""
    from edgepose.config import ModelConfig
    from edgepose.inference.factory import open_estimator
    from edgepose.pipeline.loop import Service as Loop
    from edgepose.pipeline.loop import ServiceOptions

    class Hung:
        """A sink whose publish blocks (a broken display driver, say) until released."""

        def __init__(self) -> None:
            self.entered = threading.Event()
            self.release = threading.Event()

        def start(self) -> None:
            pass

        def publish(self, result: object) -> None:
            self.entered.set()
            self.release.wait()

        def close(self) -> None:
            pass

    listener = NotifyListener(str(tmp_path / "n.sock"))
    stats = PipelineStats()
    estimator = open_estimator(ModelConfig(models_dir=str(models_dir)))
    heartbeat = systemd.NotifySink(systemd.Notifier(listener.address), stats, estimator.info, 400_000)  # every 0.1 s
    hung = Hung()
    openings: list[int] = []
    # Not there twice, then one frame (the loop hangs on it), then unplugged: retried while the loop hangs.
    loop = Loop(Camera(openings, absent=2, frames=1), estimator, [hung, heartbeat], ServiceOptions(), stats,
                reopen=lambda: Camera(openings, absent=2, frames=1))  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        ready = listener.wait_for("READY=1", 30)  # no camera yet: ready, and pinging while it is retried
        assert hung.entered.wait(30), "the camera never delivered"
        stuck = time.monotonic()
        assert eventually(lambda: stats.source.state == "reconnecting", 10), "the camera was not lost"
        retried = stats.source.reopens
        time.sleep(1.5)  # fifteen ping periods
        stuck_until = time.monotonic()
        assert thread.is_alive()
        assert stats.source.reopens > retried, "the capture thread kept trying while the loop hung"
    finally:
        stop.set()
        hung.release.set()
        thread.join(timeout=10)
        estimator.close()
        listener.close()
    pings = listener.times("WATCHDOG=1")
    assert [t for t in pings if ready <= t < stuck], "pinged while the camera was waited for"
    # (a ping sent just before the hang may be received a little after it)
    assert [t for t in pings if stuck + 0.3 <= t <= stuck_until] == [], "a hung loop must not ping"
