"""sd_notify, the loop-driven watchdog, graceful SIGTERM and journald log levels, against real processes.

A real AF_UNIX datagram socket plays systemd's notify socket; ``edgepose run`` runs as a real subprocess
with the real model. The "camera" that freezes is a named pipe carrying a YUV4MPEG2 stream that the
test stops writing to: the process stays alive, its capture thread blocks in a real read, and the
watchdog pings must stop because no frame reaches the inference loop while the source seems fine (its
timeout, after which the capture thread would declare it lost and retry it, is set far beyond the test).
A camera that is missing or lost, and retried, is tests/test_no_camera.py.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SYSTEM_PYTHON, cli_env, model_args, need_seccomp, run_cli

from edgepose.health import PipelineStats
from edgepose.logs import JournalFormatter
from edgepose.pose import BackendInfo
from edgepose.sinks import notify as systemd

UNIT = ROOT / "systemd" / "edgepose.service"
STARTUP_S = 60.0
#: SIGTERM → exit, upper bound: measured 0.74 s here; ≥ 3× slack for a busy machine, below TimeoutStopSec=15.
SIGTERM_BOUND_S = 5.0


class NotifyListener:
    """A bound AF_UNIX datagram socket that records every notification with its arrival time.

    Args:
        address: A file system path, or ``@name`` for an abstract socket.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.messages: list[tuple[float, list[str]]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self._sock.settimeout(0.05)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode().split("\n")))

    def times(self, field: str) -> list[float]:
        """Arrival times of the datagrams carrying ``field`` (e.g. ``READY=1``)."""
        with self._lock:
            return [t for t, fields in self.messages if field in fields]

    def values(self, key: str) -> list[str]:
        """All values sent for ``key`` (e.g. ``STATUS``), in order."""
        with self._lock:
            return [f.split("=", 1)[1] for _, fields in self.messages for f in fields if f.startswith(key + "=")]

    def wait_for(self, field: str, timeout: float, proc: subprocess.Popen[str] | None = None) -> float:
        """Wait until ``field`` arrives; return its arrival time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.times(field):
                return found[0]
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"edgepose exited ({proc.returncode}) before {field}: {proc.communicate()[1]}")
            time.sleep(0.02)
        raise AssertionError(f"no {field} within {timeout} s; got {self.messages}")

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        self._sock.close()


class Y4mCamera:
    """Writes a YUV4MPEG2 stream into a named pipe at a steady rate until :meth:`stall`, then goes silent.

    The write end stays open while stalled, so the reader blocks in ``read()`` exactly as on a hung camera.
    """

    def __init__(self, path: Path, fps: float = 15.0, size: tuple[int, int] = (320, 240)) -> None:
        os.mkfifo(path)
        self.path = path
        self._fps = fps
        self._width, self._height = size
        self._stall = threading.Event()
        self._release = threading.Event()
        self.stalled_at: float | None = None
        self.frames = 0
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def _open(self) -> int:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline and not self._release.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # ENXIO: no reader yet
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.02)
                continue
            os.set_blocking(fd, True)
            return fd
        return -1

    def _write(self) -> None:
        fd = self._open()
        if fd < 0:
            return
        w, h = self._width, self._height
        try:
            os.write(fd, f"YUV4MPEG2 W{w} H{h} F{int(self._fps)}:1 Ip A1:1 C420jpeg\n".encode())
            chroma = np.full((h // 2, w // 2), 128, np.uint8).tobytes()
            next_due = time.monotonic()
            while not self._stall.is_set():
                luma = np.full((h, w), 40 + (self.frames * 3) % 180, np.uint8)
                luma[h // 4 : h // 2, w // 3 : w // 2] = 235
                os.write(fd, b"FRAME\n" + luma.tobytes() + chroma + chroma)
                self.frames += 1
                next_due += 1.0 / self._fps
                time.sleep(max(0.0, next_due - time.monotonic()))
            self.stalled_at = time.monotonic()
            self._release.wait()
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)

    def stall(self) -> float:
        """Stop writing (keep the pipe open); return when the last frame went out."""
        self._stall.set()
        while self.stalled_at is None and self._thread.is_alive():
            time.sleep(0.01)
        return self.stalled_at or time.monotonic()

    def close(self) -> None:
        self._stall.set()
        self._release.set()
        self._thread.join(timeout=5)


def start_run(source: str, models_dir: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "edgepose", "run", "--source", source, "--delegate", "xnnpack", "--threads", "1",
           *model_args(models_dir), *extra]  # fmt: skip
    return subprocess.Popen(cmd, env=cli_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def sigterm_and_wait(proc: subprocess.Popen[str]) -> tuple[float, str]:
    """SIGTERM the process; return how long it took to exit and its stderr."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return time.monotonic() - started, err


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.slow
def test_path_socket_ready_watchdog_freeze_and_sigterm(models_dir: Path, tmp_path: Path) -> None:
    watchdog_usec = 2_000_000
    listener = NotifyListener(str(tmp_path / "notify.sock"))
    camera = Y4mCamera(tmp_path / "camera.y4m")
    output = tmp_path / "poses.jsonl"
    env = {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": str(watchdog_usec)}
    # A read stuck for 60 s stays a stuck pipeline here: the capture thread does not give it up within the test.
    proc = start_run(str(camera.path), models_dir, env, "--output", str(output), "--source-timeout", "60")
    try:
        ready = listener.wait_for("READY=1", STARTUP_S, proc)
        time.sleep(4.0)  # frames flow: the loop pings
        stalled = camera.stall()
        time.sleep(1.0)  # frames already in the pipe and buffers drain
        frozen_from = time.monotonic()
        time.sleep(3 * watchdog_usec / 2 / 1e6)  # three missed watchdog half-periods
        frozen_until = time.monotonic()
        assert proc.poll() is None, "the process must stay alive: only the pipeline is frozen"
        took, err = sigterm_and_wait(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        camera.close()
        listener.close()

    pings = listener.times("WATCHDOG=1")
    streaming = [t for t in pings if ready <= t <= stalled]
    assert len(streaming) >= 5, listener.messages
    # systemd restarts the unit when a whole WATCHDOG_USEC passes without a ping; pings are sent every quarter
    # of it, so the bound is 4x the ping period: slack for a busy machine, and still the real failure line.
    assert max(gaps([ready, *streaming, stalled])) < watchdog_usec / 1e6, gaps(streaming)
    assert [t for t in pings if frozen_from <= t <= frozen_until] == [], "a frozen pipeline must not ping"
    assert len(listener.times("READY=1")) == 1
    assert proc.returncode == 0, err
    assert took < SIGTERM_BOUND_S, f"SIGTERM took {took:.2f} s"
    assert listener.times("STOPPING=1"), listener.messages
    assert "Traceback" not in err


@pytest.mark.slow
def test_abstract_socket_status_and_flush_on_sigterm(models_dir: Path, tmp_path: Path) -> None:
    watchdog_usec = 2_000_000  # pings every 0.5 s; a gap of a whole 2 s is what systemd would act on
    listener = NotifyListener(f"@edgepose-test-{uuid.uuid4().hex}")
    output = tmp_path / "poses.jsonl"
    env = {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": str(watchdog_usec)}
    proc = start_run("synthetic:320x240", models_dir, env, "--output", str(output))
    try:
        ready = listener.wait_for("READY=1", STARTUP_S, proc)
        time.sleep(6.0)  # long enough for a second STATUS= (every 5 s)
        took, err = sigterm_and_wait(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()

    assert proc.returncode == 0, err
    assert took < SIGTERM_BOUND_S, f"SIGTERM took {took:.2f} s"
    assert len(listener.times("READY=1")) == 1
    pings = [t for t in listener.times("WATCHDOG=1") if t >= ready]
    assert len(pings) >= 5
    assert max(gaps(pings)) < watchdog_usec / 1e6, gaps(pings)  # systemd's own line (see above)
    statuses = listener.values("STATUS")
    assert statuses[0].startswith("starting:"), statuses
    running = [s for s in statuses if " fps, " in s]
    assert len(running) >= 2, statuses
    assert re.match(r"[\d.]+ fps, delegate xnnpack, model movenet_single_pose_lightning_ptq\.tflite, \d+ frames",
                    running[-1]), running  # fmt: skip
    assert listener.times("STOPPING=1")
    # Every frame the loop processed reached the output file before the process exited.
    stopped = [s for s in statuses if s.startswith("stopped after ")]
    assert stopped, statuses
    frames = int(stopped[-1].split()[2])
    assert frames > 10
    assert len(output.read_text().splitlines()) == frames


def test_sigint_exits_zero_with_stopping(models_dir: Path, tmp_path: Path) -> None:
    listener = NotifyListener(str(tmp_path / "n.sock"))
    proc = start_run("synthetic:160x120", models_dir, {"NOTIFY_SOCKET": listener.address}, "--output", os.devnull)
    try:
        listener.wait_for("READY=1", STARTUP_S, proc)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
    assert proc.returncode == 0, err
    assert took < SIGTERM_BOUND_S
    assert listener.times("STOPPING=1")
    assert listener.times("WATCHDOG=1") == [], "no WATCHDOG_USEC, no pings"


def test_runs_and_notifies_under_the_units_seccomp_filters(models_dir: Path, tmp_path: Path) -> None:
    """The unit's SystemCallFilter=, MemoryDenyWriteExecute= and RestrictAddressFamilies= hold for a real run."""
    need_seccomp()
    listener = NotifyListener(str(tmp_path / "notify.sock"))
    output = tmp_path / "poses.jsonl"
    cmd = [SYSTEM_PYTHON, str(ROOT / "tests" / "unit_sandbox.py"), str(UNIT), "--", sys.executable, "-m", "edgepose",
           "run", "--source", "synthetic:320x240", "--max-frames", "40", "--output", str(output),
           *model_args(models_dir)]  # fmt: skip
    env = cli_env({"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "2000000"})
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        listener.close()
    assert proc.returncode == 0, proc.stderr
    assert len(output.read_text().splitlines()) == 40
    assert len(listener.times("READY=1")) == 1
    assert listener.times("WATCHDOG=1")


@pytest.mark.slow
def test_journald_level_prefixes_only_when_stderr_is_the_journal(models_dir: Path, tmp_path: Path) -> None:
    log_file = tmp_path / "stderr.log"
    with log_file.open("w") as err:
        st = os.fstat(err.fileno())
        env = cli_env({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        cmd = [sys.executable, "-m", "edgepose", "run", "--source", "synthetic:160x120", "--max-frames", "3",
               "--output", os.devnull, *model_args(models_dir)]  # fmt: skip
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, timeout=120, check=True)
        bad = subprocess.run([sys.executable, "-m", "edgepose", "run", "--threads", "999"], env=env,
                             stdout=subprocess.DEVNULL, stderr=err, timeout=60, check=False)  # fmt: skip
    lines = [ln for ln in log_file.read_text().splitlines() if ln.strip()]
    assert bad.returncode == 2
    assert any(ln.startswith("<6>") and "reading synthetic" in ln for ln in lines), lines
    assert any(ln.startswith("<3>edgepose: error:") and "threads" in ln for ln in lines), lines
    # TFLite's own C++ lines carry no prefix; every line edgepose writes does.
    ours = [ln for ln in lines if "edgepose" in ln]
    assert ours and all(re.match(r"<[2-7]>", ln) for ln in ours), ours

    plain = run_cli("run", "--source", "synthetic:160x120", "--max-frames", "2", "--output", os.devnull,
                    "--delegate", "xnnpack", *model_args(models_dir), env={"JOURNAL_STREAM": "1:1"})  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert "edgepose: INFO: reading synthetic" in plain.stderr
    assert not re.search(r"^<\d>", plain.stderr, re.M)


# --- the module's pure parts -------------------------------------------------------------------------


def test_journal_formatter_maps_every_level() -> None:
    formatter = JournalFormatter("%(message)s")
    for level, prefix in ((logging.DEBUG, "<7>"), (logging.INFO, "<6>"), (logging.WARNING, "<4>"),
                          (logging.ERROR, "<3>"), (logging.CRITICAL, "<2>")):  # fmt: skip
        record = logging.LogRecord("edgepose", level, __file__, 1, "hello", None, None)
        assert formatter.format(record) == prefix + "hello"


def test_notify_address_forms() -> None:
    assert systemd.notify_address({}) is None
    assert systemd.notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert systemd.notify_address({"NOTIFY_SOCKET": "@abc/def"}) == "\0abc/def"
    assert systemd.notify_address({"NOTIFY_SOCKET": "vsock:2:1234"}) is None
    assert systemd.notify_address({"NOTIFY_SOCKET": "relative"}) is None


def test_watchdog_usec_respects_watchdog_pid() -> None:
    assert systemd.watchdog_usec({}) == 0
    assert systemd.watchdog_usec({"WATCHDOG_USEC": "30000000"}) == 30_000_000
    assert systemd.watchdog_usec({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30_000_000
    assert systemd.watchdog_usec({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) == 0
    assert systemd.watchdog_usec({"WATCHDOG_USEC": "soon"}) == 0


def test_no_op_outside_systemd() -> None:
    stats = PipelineStats()
    info = BackendInfo("ai_edge_litert", "xnnpack", 1, "m.tflite")
    assert systemd.make_sink(stats, info, environ={}) is None
    assert systemd.notify("READY=1", environ={}) is False


def test_notify_never_blocks_without_a_listener(tmp_path: Path) -> None:
    """A manager that went away (socket path gone) must not raise or stall the caller."""
    started = time.monotonic()
    assert systemd.notify("WATCHDOG=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False
    assert time.monotonic() - started < 1.0


def test_sink_rate_limits_pings_with_a_fake_clock(tmp_path: Path) -> None:
    listener = NotifyListener(str(tmp_path / "s.sock"))
    now = [100.0]
    stats = PipelineStats()
    info = BackendInfo("ai_edge_litert", "xnnpack", 1, "m.tflite")
    sink = systemd.NotifySink(systemd.Notifier(listener.address), stats, info, watchdog_usec=4_000_000,
                              clock=lambda: now[0])  # fmt: skip
    try:
        for _ in range(100):  # 100 frames over 10 s at 10 fps
            sink.publish(None)  # type: ignore[arg-type]  # the sink never looks at the result
            now[0] += 0.1
            time.sleep(0.005)  # let the listener drain: an AF_UNIX datagram queue holds only ~10
        sink.close()
        deadline = time.monotonic() + 2
        while not listener.times("STOPPING=1") and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        listener.close()
    assert len(listener.times("READY=1")) == 1
    assert 9 <= len(listener.times("WATCHDOG=1")) <= 11  # every 1 s (WATCHDOG_USEC / 4), not every frame
    assert len(listener.values("STATUS")) == 3  # at 0 s, 5 s, and "stopped after …"
