"""The JSON-lines sink: a queue of serialised lines bounded in bytes, drops for live sources, backpressure for
files, and nothing left unwritten without a word; and `edgepose run` with a reader that stops reading.

The stalled reader is real: a named pipe (or stdout's pipe) whose read end is open and never read, so the
writer thread blocks in ``write()`` once the kernel's pipe buffer is full.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import http.server
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from clips import Placement, render
from conftest import ROOT, cli_env, eventually, model_args

from edgepose.errors import OutputClosed, SinkError
from edgepose.health import PipelineStats
from edgepose.pose import PoseResult, keypoints_to_json, printed_keypoints
from edgepose.sinks import jsonl
from edgepose.sinks.jsonl import JsonlSink
from edgepose.sources.images import load_image

#: A small bound, so that a handful of lines fill the queue.
SMALL = 16 * 1024
#: The smallest pipe buffer Linux gives (one page): the writer blocks after a line or two.
PIPE_BYTES = 4096


def _result(frame: int, image: np.ndarray | None = None) -> PoseResult:
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[:, 0] = frame % 640
    return PoseResult(frame, 1_700_000_000.0 + frame, 640, 480, keypoints, {"invoke": 5.0}, image)


def _line_bytes() -> int:
    return len(json.dumps(_result(0).to_dict())) + 1


class Fifo:
    """A named pipe with its read end open: nobody reads until the test says so."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a reader exists, so the sink's open does not block
        fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self.data = b""

    def drain(self) -> bytes:
        """Read what is in the pipe now."""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self.fd, 65536):
                self.data += chunk
        return self.data

    def read_in_background(self, pause_s: float = 0.001) -> Reader:
        """Start reading, a pipe buffer at a time with ``pause_s`` between."""
        return Reader(self, pause_s)

    def lines(self) -> list[dict[str, Any]]:
        """The complete lines read so far."""
        return [json.loads(line) for line in self.data.split(b"\n")[:-1]]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Reader:
    """A thread that drains a :class:`Fifo` until stopped, then drains it one last time."""

    def __init__(self, fifo: Fifo, pause_s: float) -> None:
        self._fifo, self._pause_s = fifo, pause_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.wait(self._pause_s):
            self._fifo.drain()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self._fifo.drain()


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Fifo]:
    pipe = Fifo(tmp_path / "out.jsonl")
    yield pipe
    pipe.close()  # a writer still blocked gets EPIPE and ends: before the next test, which must not see its log
    for thread in threading.enumerate():
        if thread.name == "edgepose-jsonl":
            thread.join(timeout=10)


@contextlib.contextmanager
def closed_stdout() -> Iterator[None]:
    """File descriptor 1 is a pipe whose reader went away (``| head`` after it exited).

    Entered inside the test: pytest's own capture puts its file back on descriptor 1 between test phases.
    """
    saved = os.dup(1)
    read, write = os.pipe()
    os.dup2(write, 1)
    os.close(write)
    os.close(read)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == jsonl.__name__ and r.levelno >= logging.ERROR]


def _warnings(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and needle in r.getMessage()]


def _stuck_after_one_line(sink: JsonlSink) -> Callable[[], bool]:
    """The writer wrote one line: the second (longer than the pipe's room left) blocks it for good."""
    assert 2 * _line_bytes() > PIPE_BYTES > _line_bytes()
    return lambda: sink.written == 1


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- live sources: bounded in bytes, drops counted


def test_live_queue_holds_lines_only_bounded_in_bytes(fifo: Fifo) -> None:
    """The queue holds serialised lines, never the results and their frames, and never more than its bound."""
    stats = PipelineStats()
    sink = JsonlSink(str(fifo.path), lossless=False, counters=stats.output, max_bytes=SMALL)
    sink.start()
    frames: list[weakref.ref[np.ndarray]] = []
    for frame in range(200):
        image = np.zeros((480, 640, 3), np.uint8)
        frames.append(weakref.ref(image))
        sink.publish(_result(frame, image))
        del image
        assert stats.output.queued_bytes <= SMALL
    gc.collect()
    assert not [ref for ref in frames if ref() is not None], "the sink keeps no frame, queued or not"
    assert sink.dropped > 0 and sink.accepted + sink.dropped == 200
    assert stats.output.queued_bytes > SMALL - 2 * _line_bytes(), "the writer is stuck: the queue is full"
    assert stats.snapshot()["output"] == {"dropped": sink.dropped, "queued_bytes": stats.output.queued_bytes}


def test_live_drops_warn_at_most_once_a_minute(fifo: Fifo, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    sink = JsonlSink(str(fifo.path), lossless=False, max_bytes=SMALL, clock=clock)
    sink.start()
    frame = 0

    def publish(count: int) -> None:
        nonlocal frame
        for _ in range(count):
            sink.publish(_result(frame))
            frame += 1

    with caplog.at_level(logging.WARNING):
        publish(100)
        first = sink.dropped
        assert first > 0
        clock.now += 30.0
        publish(50)
        assert len(_warnings(caplog, "not keeping up")) == 1, "one warning for the first minute of drops"
        clock.now += 31.0
        before = sink.dropped
        publish(50)
        warnings = _warnings(caplog, "not keeping up")
    assert len(warnings) == 2, warnings
    assert "lines dropped: 1 (1 since the last warning" in warnings[0], warnings
    assert f"lines dropped: {before + 1} ({before} since the last warning" in warnings[1], warnings
    assert "stdout" not in warnings[1] and str(fifo.path) in warnings[1]


# ---------------------------------------------------------------- files: backpressure, nothing lost


def test_file_source_waits_for_the_writer_and_loses_nothing(fifo: Fifo) -> None:
    stats = PipelineStats()
    sink = JsonlSink(str(fifo.path), lossless=True, counters=stats.output, max_bytes=SMALL)
    sink.start()
    total = 300
    loop = threading.Thread(target=lambda: [sink.publish(_result(i)) for i in range(total)], daemon=True)
    loop.start()
    assert eventually(lambda: stats.output.queued_bytes > SMALL - 2 * _line_bytes(), timeout=10)
    assert loop.is_alive() and sink.accepted < total, "the loop waits while the reader does not read"
    assert stats.output.queued_bytes <= SMALL and sink.dropped == 0
    reader = fifo.read_in_background()
    loop.join(timeout=30)
    assert not loop.is_alive(), "reading lets the loop on"
    sink.close(timeout_s=30)
    reader.stop()
    assert [r["frame"] for r in fifo.lines()] == list(range(total)), "every line, in order"
    assert sink.failure is None and sink.dropped == 0 and stats.output.queued_bytes == 0


def test_a_waiting_loop_gives_up_on_stop_and_close_counts_what_was_not_written(
    fifo: Fifo, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    sink = JsonlSink(str(fifo.path), lossless=True, stop=stop, max_bytes=SMALL)
    sink.start()
    total = 100
    loop = threading.Thread(target=lambda: [sink.publish(_result(i)) for i in range(total)], daemon=True)
    loop.start()
    assert eventually(lambda: sink.counters.queued_bytes > SMALL - 2 * _line_bytes(), timeout=10)
    assert sink.refused == 0 and loop.is_alive()
    stop.set()  # SIGTERM while the loop waits for the writer
    loop.join(timeout=10)
    assert not loop.is_alive(), "the stop event ends the wait"
    assert sink.refused == total - sink.accepted > 0
    assert eventually(_stuck_after_one_line(sink), timeout=10)
    with caplog.at_level(logging.WARNING):
        sink.close(timeout_s=0.3)
    unwritten = total - sink.written
    assert isinstance(sink.failure, SinkError)
    assert f"{unwritten} results were not written to {fifo.path}" in str(sink.failure), sink.failure
    assert _errors(caplog) == [str(sink.failure)], "one ERROR line with the count"


def test_close_with_a_stalled_writer_reports_the_unwritten_count(fifo: Fifo, caplog: pytest.LogCaptureFixture) -> None:
    sink = JsonlSink(str(fifo.path), lossless=False, max_bytes=SMALL)
    sink.start()
    for frame in range(60):
        sink.publish(_result(frame))
    assert eventually(_stuck_after_one_line(sink), timeout=10)
    with caplog.at_level(logging.WARNING):
        sink.close(timeout_s=0.3)
    unwritten = 60 - sink.dropped - sink.written
    assert unwritten > 0 and sink.dropped > 0
    assert isinstance(sink.failure, SinkError)
    assert str(sink.failure).startswith(f"{unwritten} results were not written to {fifo.path} at shutdown")
    assert f"{sink.written} were" in str(sink.failure)
    assert _errors(caplog) == [str(sink.failure)]
    assert _warnings(caplog, f"{sink.dropped} lines were dropped in all"), "the drops are summed up at close"


def test_close_waits_for_a_slow_reader_that_reads(fifo: Fifo) -> None:
    """A writer that makes progress is waited for (within the budget): a slow disk loses nothing."""
    sink = JsonlSink(str(fifo.path), lossless=True, max_bytes=SMALL)
    sink.start()
    lines = SMALL // _line_bytes()  # they fit: nobody waits; the pipe takes one or two
    for frame in range(lines):
        sink.publish(_result(frame))
    reader = fifo.read_in_background(pause_s=0.02)
    sink.close(timeout_s=30)
    reader.stop()
    assert sink.failure is None
    assert [r["frame"] for r in fifo.lines()] == list(range(lines))


# ---------------------------------------------------------------- write failures


def test_stdout_closed_by_its_reader_ends_quietly(caplog: pytest.LogCaptureFixture) -> None:
    sink = JsonlSink("-", lossless=True, max_bytes=SMALL)
    with closed_stdout(), caplog.at_level(logging.WARNING):
        sink.start()
        for frame in range(50):
            sink.publish(_result(frame))
        assert eventually(lambda: sink.failure is not None, timeout=10)
        sink.close(timeout_s=5)
    assert isinstance(sink.failure, OutputClosed) and sink.failure.exit_code == 0
    assert sink.written == 0
    assert _errors(caplog) == [], "no ERROR, and no count of unwritten lines: the reader went away"


def test_a_full_disk_fails_once_and_never_holds_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    """/dev/full: every write fails with ENOSPC. A loop waiting for space is let go when the writer fails."""
    sink = JsonlSink("/dev/full", lossless=True, max_bytes=_line_bytes())
    sink.start()
    with caplog.at_level(logging.WARNING):
        for frame in range(50):
            sink.publish(_result(frame))  # the second line waits for the first, whose write fails
        sink.close(timeout_s=5)
    assert isinstance(sink.failure, SinkError)
    assert "cannot write results to /dev/full: No space left on device (after 0 lines" in str(sink.failure)
    assert _errors(caplog) == [str(sink.failure)], "one ERROR: no second one about the lines not written"


# ---------------------------------------------------------------- `edgepose run` with a reader that stops reading

#: RSS growth allowed while the reader is stalled: the queue's bound plus allocator noise. Before the
#: queue held serialised lines only, every result kept its 640x480 frame (0.9 MB) queued: 26 MB/s at 30 fps.
RSS_SLACK_MB = 64
#: systemd kills the service this long after SIGTERM.
STOP_TIMEOUT_S = float(
    re.search(r"^TimeoutStopSec=(\d+)", (ROOT / "systemd" / "edgepose.service").read_text(), re.M)[1]
)


class MjpegCamera:
    """A network camera: an endless MJPEG stream over HTTP, 640x480 at 30 fps, a person in view."""

    def __init__(self, picture: np.ndarray, fps: float = 30.0) -> None:
        jpeg = cv2.imencode(".jpg", picture)[1].tobytes()
        part = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n"
        closed = self._closed = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                with contextlib.suppress(OSError):
                    while not closed.wait(1.0 / fps):
                        self.wfile.write(part)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/cam.mjpg"

    def close(self) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StalledRun:
    """`edgepose run --output -` whose stdout is a pipe nobody reads, with the preview on for /metrics."""

    def __init__(self, tmp: Path, models_dir: Path, *args: str) -> None:
        self.port = _free_port()
        self.err = (tmp / "run.err").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgepose", "run", *args, "--output", "-", "--preview", str(self.port),
             *model_args(models_dir)],
            stdout=subprocess.PIPE, stderr=self.err, env=cli_env(),
        )  # fmt: skip
        self.rss_at_start: int | None = None

    def rss_mb(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)[1]) // 1024

    def metrics(self) -> dict[str, float]:
        """The preview's /metrics (an empty dict while it is not up yet); checks the memory on each call."""
        assert self.proc.poll() is None, self.stderr()
        if self.rss_at_start is not None:
            grown = self.rss_mb() - self.rss_at_start
            assert grown < RSS_SLACK_MB, f"RSS grew by {grown} MB while the reader was stalled"
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                body = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
        except OSError:
            return {}
        return {name: float(value) for name, value in re.findall(r"^(edgepose_\w+) (\S+)$", body, re.M)}

    def wait(self, predicate: Any, timeout: float = 180) -> dict[str, float]:
        """Poll /metrics until ``predicate(metrics)`` holds; return those metrics."""
        seen: dict[str, float] = {}

        def check() -> bool:
            nonlocal seen
            seen = self.metrics()
            return bool(seen) and bool(predicate(seen))

        assert eventually(check, timeout=timeout), (seen, self.stderr())
        return seen

    def sigterm(self) -> tuple[float, list[bytes]]:
        """SIGTERM; return how long the exit took and the complete lines that reached stdout."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        took = time.monotonic() - started
        assert self.proc.stdout is not None
        return took, self.proc.stdout.read().split(b"\n")[:-1]

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _unwritten(stderr: str) -> int:
    errors = [ln for ln in stderr.splitlines() if ln.startswith("edgepose: error:")]
    assert len(errors) == 1, stderr
    found = re.fullmatch(r"edgepose: error: (\d+) results were not written to stdout at shutdown \(.*\)", errors[0])
    assert found, errors[0]
    return int(found[1])


def _processed(stderr: str) -> int:
    found = re.search(r"processed (\d+) frames", stderr)
    assert found, stderr
    return int(found[1])


@pytest.mark.slow
def test_live_stream_and_a_stalled_reader_keep_memory_flat_drop_count_and_fail_at_sigterm(
    models_dir: Path, testdata: Path, tmp_path: Path
) -> None:
    camera = MjpegCamera(render(load_image(testdata / "woman_standing.png"), Placement(0.55, 200, 40)))
    run = StalledRun(tmp_path, models_dir, "--source", camera.url, "--idle", "off")
    try:
        run.wait(lambda m: m["edgepose_frames_total"] >= 60)  # the pipe (64 KiB) is full: the writer is stuck
        run.rss_at_start = run.rss_mb()
        dropping = run.wait(lambda m: m.get("edgepose_output_dropped_lines_total", 0) > 0)
        later = run.wait(lambda m: m["edgepose_frames_total"] >= dropping["edgepose_frames_total"] + 150)
        assert jsonl.QUEUE_BYTES - 16 * 1024 < later["edgepose_output_queued_bytes"] <= jsonl.QUEUE_BYTES
        assert later["edgepose_output_dropped_lines_total"] >= 150, "every line past the bound is dropped"
        took, lines = run.sigterm()
    finally:
        run.kill()
        camera.close()
    err = run.stderr()
    assert run.proc.returncode == 1, err
    assert took < STOP_TIMEOUT_S, f"SIGTERM took {took:.1f} s; systemd kills after {STOP_TIMEOUT_S:g} s"
    assert "Traceback" not in err
    warnings = [ln for ln in err.splitlines() if "the reader is not keeping up" in ln]
    assert 1 <= len(warnings) <= 3, warnings  # once a minute at most: the test takes a minute or two
    dropped = int(re.search(r"stdout: (\d+) lines were dropped in all", err)[1])
    assert dropped >= later["edgepose_output_dropped_lines_total"]
    assert _unwritten(err) + dropped + len(lines) == _processed(err), "every result is written, dropped or counted"
    assert [json.loads(line)["frame"] for line in lines] == sorted(json.loads(line)["frame"] for line in lines)


@pytest.mark.slow
def test_file_source_and_a_stalled_reader_wait_drop_nothing_and_fail_at_sigterm(
    models_dir: Path, tmp_path: Path
) -> None:
    """Synthetic frames are read as a file is: lossless. The loop waits for the writer; SIGTERM ends the wait."""
    run = StalledRun(tmp_path, models_dir, "--source", "synthetic:320x240")
    try:
        run.wait(lambda m: m["edgepose_frames_total"] >= 40)
        run.rss_at_start = run.rss_mb()
        full = run.wait(lambda m: m.get("edgepose_output_queued_bytes", 0) > jsonl.QUEUE_BYTES - 16 * 1024)
        assert full["edgepose_output_dropped_lines_total"] == 0
        took, lines = run.sigterm()
    finally:
        run.kill()
    err = run.stderr()
    assert run.proc.returncode == 1, err
    assert took < STOP_TIMEOUT_S, f"SIGTERM took {took:.1f} s; systemd kills after {STOP_TIMEOUT_S:g} s"
    assert "dropped in all" not in err and "not keeping up" not in err, err
    assert _unwritten(err) + len(lines) == _processed(err), "every result is written or counted"
    assert [json.loads(line)["frame"] for line in lines] == list(range(len(lines)))


def test_printed_keypoints_are_what_round_prints_for_the_models_float32_keypoints() -> None:
    rng = np.random.default_rng(11)
    xy = np.concatenate([rng.uniform(-40, 2000, 3000), np.arange(-800, 8000) / 8])  # k/8: exact ties at 0.01
    scores = np.concatenate([np.arange(33) / 32, rng.uniform(0, 1, len(xy) - 33)])  # odd/32: exact ties at 1e-4
    keypoints = np.stack([xy, xy[::-1], scores], axis=1).astype(np.float32)
    expected = [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in keypoints.tolist()]
    assert printed_keypoints(keypoints).tolist() == expected
    line = keypoints_to_json(keypoints[:17])
    assert [[k["x"], k["y"], k["score"]] for k in line] == expected[:17]
    again = printed_keypoints(np.array([[k["x"], k["y"], k["score"]] for k in line]))
    assert again.tolist() == expected[:17], "a printed value read back prints the same (analyze on run's lines)"
