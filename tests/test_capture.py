"""The frame hand-over: newest frame wins for live sources, nothing dropped for files."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from clips import default_script, write_clip
from conftest import model_args, run_cli

from edgepose.pipeline.capture import CaptureThread, Frame, FrameBuffer
from edgepose.sources.images import load_image


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
    time.sleep(0.2)
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


def test_capture_thread_reports_source_errors() -> None:
    class Failing:
        name, live, still = "failing", True, False

        def open(self) -> None: ...

        def read(self) -> np.ndarray:
            raise OSError("device vanished")

        def close(self) -> None: ...

    buffer = FrameBuffer(capacity=1, drop_oldest=True)
    capture = CaptureThread(Failing(), buffer)
    capture.start()
    assert buffer.get(timeout=5) is None
    capture.join(timeout=2)
    assert capture.error is not None and "device vanished" in str(capture.error)


@pytest.fixture
def http_clip(tmp_path: Path, testdata: Path) -> Iterator[str]:
    """Serve a clip over real HTTP from a local server."""
    write_clip(tmp_path / "clip.avi", load_image(testdata / "woman_standing.png"), default_script()[:20])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
    server.shutdown()


def test_http_stream_source(models_dir: Path, http_clip: str) -> None:
    proc = run_cli("run", "--source", http_clip, "--max-frames", "5", *model_args(models_dir))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 5
    assert all((r["width"], r["height"]) == (640, 480) for r in records)
