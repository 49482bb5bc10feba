"""The frame hand-over: newest frame wins for live sources, nothing dropped for files."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import default_script, write_clip
from conftest import eventually, model_args, run_cli

from edgepose.errors import BackendUnavailableError
from edgepose.pipeline.capture import MAX_FAILED_READS, CaptureOptions, CaptureThread, Frame, FrameBuffer
from edgepose.sources.images import load_image
from edgepose.sources.opencv import open_video_file


def _frame(index: int) -> Frame:
    return Frame(index, np.zeros((2, 2, 3), np.uint8), time.time(), time.perf_counter(), 0.0)


def test_newest_frame_wins_and_drops_are_counted() -> None:
    slot = FrameBuffer(capacity=1, drop_oldest=True)
    for i in range(5):
        assert slot.put(_frame(i))
    assert slot.dropped == 4
    got = slot.get(timeout=0.1)
    assert got is not None and got.index == 4
    with pytest.raises(TimeoutError):
        slot.get(timeout=0.05)


def test_lossless_buffer_makes_the_producer_wait() -> None:
    buffer = FrameBuffer(capacity=2, drop_oldest=False)
    produced: list[int] = []

    def produce() -> None:
        for i in range(6):
            buffer.put(_frame(i))
            produced.append(i)
        buffer.finish()

    thread = threading.Thread(target=produce)
    thread.start()
    assert eventually(lambda: len(produced) >= 2, 30), "the producer never filled the buffer"
    time.sleep(0.2)  # time for a third put, were it not blocked
    assert len(produced) == 2, "the producer blocks once the buffer is full"
    received = []
    while (frame := buffer.get(timeout=2)) is not None:
        received.append(frame.index)
    thread.join(timeout=2)
    assert received == list(range(6)) and buffer.dropped == 0


def test_finish_wakes_a_blocked_producer() -> None:
    buffer = FrameBuffer(capacity=1, drop_oldest=False)
    buffer.put(_frame(0))
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(buffer.put(_frame(1))))
    thread.start()
    time.sleep(0.1)
    buffer.finish()
    thread.join(timeout=2)
    assert result == [False]


class Scripted:
    """A source whose reads follow a script: ``"frame"``, ``"fail"``, ``"end"`` or ``"hang"`` (block until released)."""

    still = False

    def __init__(self, script: list[str], live: bool, log: list[str], release: threading.Event) -> None:
        self.name = "scripted"
        self.live = live
        self._script = list(script)
        self._log = log
        self._release = release

    def open(self) -> None:
        self._log.append("open")

    def read(self) -> np.ndarray | None:
        step = self._script.pop(0) if self._script else "end"
        self._log.append(step)
        if step == "fail":
            raise OSError("device vanished")
        if step == "hang":
            self._release.wait()
            return np.zeros((2, 2, 3), np.uint8)
        return np.zeros((2, 2, 3), np.uint8) if step == "frame" else None

    def close(self) -> None:
        self._log.append("close")


def _capture(scripts: list[list[str]], live: bool, timeout_s: float = 10.0):
    log: list[str] = []
    release = threading.Event()
    sources = [Scripted(script, live, log, release) for script in scripts]
    made = iter(sources[1:])

    def reopen() -> Scripted:  # past the scripts: a source that hangs until released
        return next(made, None) or Scripted(["hang"], live, [], threading.Event())

    buffer = FrameBuffer(capacity=1, drop_oldest=False)  # lossless here, so a test sees every frame
    capture = CaptureThread(sources[0], buffer, CaptureOptions(source_timeout_s=timeout_s), reopen=reopen)
    return capture, buffer, log, release


def _drain(buffer: FrameBuffer, count: int) -> list[Frame]:
    frames = []
    while len(frames) < count:
        frame = buffer.get(timeout=30)
        assert frame is not None, "the buffer finished early"
        frames.append(frame)
    return frames


def test_a_file_that_fails_reports_the_error_and_ends() -> None:
    capture, buffer, log, _ = _capture([["frame", "fail"]], live=False)
    capture.start()
    assert _drain(buffer, 1)[0].index == 0
    assert buffer.get(timeout=30) is None
    capture.join(timeout=5)
    assert capture.error is not None and "device vanished" in str(capture.error)
    assert log == ["open", "frame", "fail", "close"]


@pytest.mark.slow
def test_a_live_source_that_fails_or_ends_is_reopened_with_a_fresh_object() -> None:
    # The third source hangs after its frames, so the state read below cannot already be "reconnecting".
    capture, buffer, log, release = _capture([["frame", "fail"], ["frame", "end"], ["frame", "frame", "hang"]],
                                             live=True)  # fmt: skip
    capture.start()
    frames = _drain(buffer, 4)
    assert [f.index for f in frames] == [0, 1, 2, 3], "frame numbers run on across reopenings"
    assert capture.state.reopens == 2
    assert capture.state.state == "ok"
    capture.stop()
    capture.join(timeout=5)
    release.set()
    assert not capture.is_alive()
    assert capture.error is None
    # A read without a frame may be one bad frame of a live source: it ends after MAX_FAILED_READS in a row.
    ended = ["open", "frame", *["end"] * MAX_FAILED_READS, "close"]
    assert log[: 4 + len(ended)] == ["open", "frame", "fail", "close", *ended]


@pytest.mark.slow
def test_a_stalled_live_source_is_abandoned_and_reopened(caplog: pytest.LogCaptureFixture) -> None:
    """A read that never returns (FFmpeg waiting on a silent server) cannot be interrupted: the watchdog
    leaves it behind and opens a fresh source; the stuck reader never delivers into the buffer again."""
    capture, buffer, log, release = _capture([["frame", "hang"], ["frame", "frame"]], live=True, timeout_s=0.5)
    caplog.set_level(logging.WARNING)
    capture.start()
    frames = _drain(buffer, 3)
    assert capture.state.reopens >= 1  # the second source may have ended and been reopened already
    first_loss = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "no frame for 0.5 s" in first_loss, first_loss
    release.set()  # the stuck read returns now, long after it was abandoned
    assert eventually(lambda: log.count("close") >= 2, 30), log  # it closes its source in its own thread
    capture.stop()
    capture.join(timeout=5)
    assert [f.index for f in frames] == [0, 1, 2]
    assert buffer.get(timeout=1) is None, "the abandoned reader's late frame was not delivered"
    assert log.count("close") == 2, "the abandoned reader closed its own source when its read returned"


@pytest.mark.slow
def test_stop_during_the_reopen_backoff_ends_at_once() -> None:
    capture, buffer, _log, _ = _capture([["fail"]] * 50, live=True)
    capture.start()
    deadline = time.monotonic() + 30
    while capture.state.reopens < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    capture.stop()  # the third wait is 2 s long; the stop must not wait it out
    capture.join(timeout=1.5)
    assert not capture.is_alive()
    assert buffer.get(timeout=1) is None


@pytest.fixture
def http_clip(tmp_path: Path, testdata: Path) -> Iterator[str]:
    """Serve a clip over real HTTP from a local server."""
    write_clip(tmp_path / "clip.avi", load_image(testdata / "woman_standing.png"), default_script()[:20])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
    server.shutdown()


@pytest.mark.slow
def test_http_stream_source(models_dir: Path, http_clip: str) -> None:
    proc = run_cli("run", "--source", http_clip, "--max-frames", "5", *model_args(models_dir))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 5
    assert all((r["width"], r["height"]) == (640, 480) for r in records)


def test_a_live_source_that_cannot_work_here_is_not_reopened() -> None:
    """A missing package (picamera2 off a Pi) is no outage: the run ends with the error at once."""

    class NoPackage(Scripted):
        def open(self) -> None:
            raise BackendUnavailableError("picamera2 is not available")

    log: list[str] = []
    buffer = FrameBuffer(capacity=1, drop_oldest=True)
    capture = CaptureThread(NoPackage([], True, log, threading.Event()), buffer)
    capture.start()
    assert buffer.get(timeout=10) is None
    capture.join(timeout=5)
    assert isinstance(capture.error, BackendUnavailableError)
    assert capture.state.reopens == 0


def _mp4(path: Path, size: tuple[int, int], frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
    rng = np.random.default_rng(5)
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 40 + 5 * i, np.uint8)
        frame[: size[1] // 2] = rng.integers(0, 255, (size[1] // 2, size[0], 3), dtype=np.uint8)
        writer.write(frame)
    writer.release()
    return path


def test_paced_video_files_up_to_720p_are_decoded_by_one_thread_into_the_same_frames(tmp_path: Path) -> None:
    small = _mp4(tmp_path / "small.mp4", (640, 480), 12)
    capture = open_video_file(str(small), one_thread=True)
    assert capture.getBackendName() == "FFMPEG" and capture.get(cv2.CAP_PROP_N_THREADS) == 1
    default = open_video_file(str(small), one_thread=False)  # a file read at full speed: FFmpeg's own threads
    for _ in range(12):  # FFmpeg's own threads and one thread decode the very same pixels
        (ok_one, one), (ok_many, many) = capture.read(), default.read()
        assert ok_one and ok_many and np.array_equal(one, many)
    assert not capture.read()[0]
    capture.release()
    default.release()
    big = _mp4(tmp_path / "big.mp4", (1296, 736), 2)  # past 1280×720: FFmpeg's choice of threads stays
    capture = open_video_file(str(big), one_thread=True)
    reference = cv2.VideoCapture(str(big))
    assert capture.isOpened() and capture.get(cv2.CAP_PROP_N_THREADS) == reference.get(cv2.CAP_PROP_N_THREADS)
    assert capture.read()[0]
    capture.release()
    reference.release()
    assert not open_video_file(str(tmp_path / "missing.mp4"), one_thread=True).isOpened()
