"""Faults a camera box meets when nobody watches: each reproduced through the real CLI and survived."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from clips import default_script, write_clip
from conftest import cli_env, model_args, run_cli

from edgepose.sources.images import load_image
from edgepose.sources.mjpeg import USER_AGENT

CLIP_FPS = 15.0


@pytest.fixture(scope="module")
def clip(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 50-frame tracking clip at 15 fps (3.3 s)."""
    folder = tmp_path_factory.mktemp("clip")
    return write_clip(folder / "clip.avi", load_image(testdata / "woman_standing.png"), default_script(), CLIP_FPS)


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_realtime_file_is_paced_at_its_frame_rate_and_ends(models_dir: Path, clip: Path) -> None:
    frames = len(default_script())
    proc = run_cli("run", "--source", str(clip), "--realtime", *model_args(models_dir), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "reopening" not in proc.stderr and "reconnecting" not in proc.stderr
    records = _records(proc.stdout)
    numbers = [r["frame"] for r in records]
    assert numbers == sorted(set(numbers)) and numbers[-1] < frames, "each source frame at most once, in order"
    assert numbers[-1] >= frames - 2, "it reached the end of the file"
    # Paced: the results cannot come much faster than the file's own clock. Frames are due on the file's
    # schedule from the start, so a first frame that came late shortens the span: a lower bound with slack
    # (unpaced, the whole file takes a tenth of its duration).
    span = records[-1]["ts"] - records[0]["ts"]
    assert span >= 0.5 * (numbers[-1] - numbers[0]) / CLIP_FPS, span


@pytest.mark.slow
def test_realtime_with_max_frames_takes_the_newest_frames(models_dir: Path, clip: Path) -> None:
    proc = run_cli("run", "--source", str(clip), "--realtime", "--max-frames", "10", *model_args(models_dir))
    assert proc.returncode == 0, proc.stderr
    records = _records(proc.stdout)
    assert len(records) == 10
    span = records[-1]["ts"] - records[0]["ts"]
    assert span >= 0.5 * (records[-1]["frame"] - records[0]["frame"]) / CLIP_FPS, span  # as above


@pytest.mark.parametrize("source", ["synthetic:160x120", "clip"])
def test_a_full_disk_under_output_ends_the_run_loudly(models_dir: Path, clip: Path, source: str) -> None:
    """/dev/full is the kernel's full disk: every write fails with ENOSPC."""
    spec = str(clip) if source == "clip" else source
    proc = run_cli("run", "--source", spec, "--output", "/dev/full", *model_args(models_dir), timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgepose: error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], proc.stderr
    assert "/dev/full" in errors[0]


class SilentServer:
    """A TCP server that accepts connections and never answers: FFmpeg hangs in open against it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.mark.slow
def test_sigterm_while_a_stream_hangs_in_open_exits_within_the_budget(models_dir: Path) -> None:
    server = SilentServer()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgepose", "run", "--source", f"http://127.0.0.1:{server.port}/cam.mjpg",
             "--source-timeout", "60", *model_args(models_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not server.conns:  # FFmpeg connected and now waits for an answer that never comes
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        time.sleep(1.0)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        server.close()
    assert proc.returncode == 0, stderr
    assert took < 10.0, f"SIGTERM took {took:.1f} s (the shutdown budget is 10 s; FFmpeg's own timeout is 60 s here)"


class StallingStream:
    """Serves a clip over HTTP; the first connection gets part of it, then silence on an open socket.

    edgepose's own look at the content type of an HTTP source (is it MJPEG?) is answered but not counted:
    ``connections`` are FFmpeg's.
    """

    def __init__(self, clip: Path) -> None:
        self.data = clip.read_bytes()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            request = conn.recv(65536)
            head = f"HTTP/1.0 200 OK\r\nContent-Type: video/x-msvideo\r\nContent-Length: {len(self.data)}\r\n\r\n"
            if f"User-Agent: {USER_AGENT}\r\n".encode() in request:
                conn.sendall(head.encode())
                conn.close()
                return
            self.connections += 1
            stall = self.connections == 1
            body = self.data[: len(self.data) // 2] if stall else self.data
            conn.sendall(head.encode() + body)
            if stall:
                self.held.append(conn)  # keep it open and silent
                return
        except OSError:
            pass
        conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def _healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


@pytest.mark.slow
def test_a_stalled_stream_is_detected_reopened_and_healthz_says_so(models_dir: Path, clip: Path) -> None:
    stream = StallingStream(clip)
    preview = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgepose", "run", "--source", f"http://127.0.0.1:{stream.port}/clip.avi",
         "--source-timeout", "2", "--preview", str(preview), "--output", "-", *model_args(models_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env({"EDGEPOSE_SOURCE_STALE_AFTER_S": "1"}),
    )  # fmt: skip
    # /healthz answers from its first 200 on: the 503 it gives before the first frame says nothing of the stall
    statuses: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while stream.connections < 2:  # the stall was noticed and the stream opened again
            assert time.monotonic() < deadline and proc.poll() is None, "the stalled stream was never reopened"
            status = _healthz(preview)
            if statuses or status == 200:
                statuses.append(status)
            time.sleep(0.25)
        while _healthz(preview) != 200:  # frames flow again
            assert time.monotonic() < deadline and proc.poll() is None, "frames never resumed"
            time.sleep(0.25)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        stream.close()
    assert proc.returncode == 0, err
    assert statuses, "healthz never said 200 while the first part of the stream played"
    assert 503 in statuses, f"healthz reported the stall after frames had flowed: {statuses}"
    # FFmpeg's read timeout (set to the source timeout) or the watchdog, whichever fires first, ends the stall.
    assert "stopped delivering frames; reopening in" in err or "no frame for 2 s; reopening in" in err, err
    assert "is back" in err
    numbers = [r["frame"] for r in _records(out)]
    assert numbers == sorted(numbers) and len(numbers) >= 2  # healthz 200 after the reopening: frames resumed
