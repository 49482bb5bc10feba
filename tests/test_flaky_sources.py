"""Sources that misbehave: a camera with broken frames, one that changes its size, reopened and looped sources."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import Placement, default_script, render, write_clip
from conftest import cli_env, eventually, model_args, run_cli
from mjpeg_server import jpeg, serving

from edgepose.config import ModelConfig, SourceConfig
from edgepose.config.rendering import redact_url
from edgepose.errors import SourceError
from edgepose.health import PipelineStats
from edgepose.inference.estimator import Estimator
from edgepose.pipeline.capture import CaptureOptions, CaptureThread, Frame, FrameBuffer
from edgepose.pipeline.loop import Service, ServiceOptions
from edgepose.pose import PoseResult
from edgepose.sources import open_source
from edgepose.sources.images import load_image
from edgepose.sources.mjpeg import MjpegSource
from edgepose.sources.opencv import OpenCVSource

SMALL = (640, 480)
LARGE = (1280, 720)


@pytest.fixture(scope="module")
def person(testdata: Path) -> np.ndarray:
    """woman_standing.png (BGR, 384×640)."""
    return load_image(testdata / "woman_standing.png")


def _picture(person: np.ndarray, size: tuple[int, int], scale: float, x: int, y: int) -> np.ndarray:
    """The person pasted at ``scale`` with its top-left corner at (x, y) on a plain background of ``size``."""
    frame = np.empty((size[1], size[0], 3), np.uint8)
    frame[:] = (96, 112, 104)
    small = cv2.resize(person, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame[y : y + small.shape[0], x : x + small.shape[1]] = small
    return frame


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metrics(port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    return {s.name: s.value for family in text_string_to_metric_families(body) for s in family.samples}


def _scrape(port: int) -> dict[str, float] | None:
    try:
        return _metrics(port)
    except OSError:
        return None


# ---------------------------------------------------------------- a flaky camera


def _drain(buffer: FrameBuffer, done: threading.Event, frames: list[Frame]) -> None:
    while not done.is_set():
        try:
            frame = buffer.get(timeout=0.1)
        except TimeoutError:
            continue
        if frame is None:
            return
        frames.append(frame)


@pytest.mark.slow
@pytest.mark.parametrize("content_length", [True, False], ids=["content-length", "boundary-only"])
def test_a_flaky_mjpeg_camera_loses_only_its_bad_frames(person: np.ndarray, content_length: bool) -> None:
    """One part in five is noise: each is one decode error; every good frame still arrives, nothing is reopened."""
    picture = jpeg(_picture(person, SMALL, 0.6, 200, 40))
    with serving(lambda n: None if n % 5 == 4 else picture, count=60, fps=30, content_length=content_length) as server:
        cfg = SourceConfig(source=server.url)
        buffer = FrameBuffer(capacity=1, drop_oldest=False)  # lossless: every frame the source gives is seen
        capture = CaptureThread(open_source(server.url, cfg), buffer, CaptureOptions(source_timeout_s=10),
                                reopen=lambda: open_source(server.url, cfg))  # fmt: skip
        done = threading.Event()
        frames: list[Frame] = []
        drain = threading.Thread(target=_drain, args=(buffer, done, frames))
        capture.start()
        drain.start()
        try:
            assert eventually(server.finished, 30), "the server never sent its parts"
            assert eventually(lambda: len(frames) >= server.good, 10), (len(frames), server.good)
        finally:
            done.set()
            capture.stop()
            capture.join(timeout=5)
            drain.join(timeout=5)
    assert (server.good, server.bad) == (48, 12)
    assert len(frames) == server.good, "every good frame became a frame"
    assert capture.state.decode_errors == server.bad
    assert capture.state.reopens == 0 and server.connections == 1
    assert all(f.image.shape == (480, 640, 3) for f in frames)


@pytest.mark.slow
def test_a_flaky_camera_end_to_end_results_and_metrics(models_dir: Path, person: np.ndarray, tmp_path: Path) -> None:
    """`edgepose run` on the flaky camera: a result per good frame, decode errors in /metrics, no reopen,
    and nothing from the native decoders on stderr."""
    picture = jpeg(_picture(person, SMALL, 0.6, 200, 40))
    port = _free_port()
    with serving(lambda n: None if n % 5 == 4 else picture, count=50, fps=10) as server:
        err = (tmp_path / "err").open("w+")
        args = ["run", "--source", server.url, "--preview", str(port), "--output", "-", *model_args(models_dir)]
        proc = subprocess.Popen([sys.executable, "-m", "edgepose", *args], stdout=subprocess.PIPE, stderr=err,
                                text=True, env=cli_env())  # fmt: skip
        try:
            assert eventually(server.finished, 60), "the server never sent its parts"
            # The last part is a bad one: wait for it to be counted too, not only for the good frames.
            seen = eventually(lambda: (m := _scrape(port)) is not None and m["edgepose_frames_total"]
                              + m["edgepose_dropped_frames_total"] >= server.good
                              and m["edgepose_decode_errors_total"] >= server.bad, 20)  # fmt: skip
            metrics = _metrics(port)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            err.seek(0)
            stderr = err.read()
    assert seen, (metrics, stderr)
    results = [json.loads(line) for line in out.splitlines()]
    assert proc.returncode == 0, stderr
    assert len(results) + metrics["edgepose_dropped_frames_total"] == server.good == 40
    assert len(results) >= server.good // 2, "most good frames gave a result"
    assert metrics["edgepose_decode_errors_total"] == server.bad == 10
    assert metrics["edgepose_source_reopens_total"] == 0 and "reopening" not in stderr
    native = [line for line in stderr.splitlines() if not line.startswith("edgepose: ")]
    assert not native, "libjpeg's and FFmpeg's own lines stay off stderr without -v"


def test_a_live_opencv_source_skips_isolated_failed_reads() -> None:
    """OpenCV's read() says False for a broken frame of a live stream: that is no end, unless it repeats."""
    release = threading.Event()

    class Flaky:
        name, live, still = "flaky", True, False

        def __init__(self) -> None:
            self.script = ["frame", "none", "frame", "none", "none", "frame"]

        def open(self) -> None:
            pass

        def read(self) -> np.ndarray | None:
            if not self.script:
                release.wait()  # like a camera waiting for its next frame
                return None
            return np.zeros((2, 2, 3), np.uint8) if self.script.pop(0) == "frame" else None

        def close(self) -> None:
            pass

    buffer = FrameBuffer(capacity=1, drop_oldest=False)
    capture = CaptureThread(Flaky(), buffer, CaptureOptions(source_timeout_s=30))
    capture.start()
    try:
        frames = [buffer.get(timeout=10) for _ in range(3)]
    finally:
        capture.stop()
        release.set()
        capture.join(timeout=5)
    assert [frame.index for frame in frames if frame is not None] == [0, 1, 2]
    assert capture.state.reopens == 0
    assert capture.state.decode_errors == 3


def test_mjpeg_source_basics(person: np.ndarray) -> None:
    assert redact_url("http://admin:s3cret@cam.lan:8080/video") == "http://admin:***@cam.lan:8080/video"
    assert redact_url("http://cam.lan/video") == "http://cam.lan/video"
    picture = jpeg(_picture(person, SMALL, 0.6, 200, 40))
    with serving(lambda n: picture, fps=50, auth="admin:s3cret") as server:
        url = server.url.replace("http://", "http://admin:s3cret@")
        source = MjpegSource(url, SourceConfig(timeout_s=5))
        assert "s3cret" not in source.name
        source.open()
        try:
            assert source.read().shape == (480, 640, 3)
            assert source.grab()
            assert source.read().shape == (480, 640, 3)
        finally:
            source.close()
        wrong = MjpegSource(server.url, SourceConfig(timeout_s=5))
        with pytest.raises(SourceError, match=r"401.*user and password"):
            wrong.open()


# ---------------------------------------------------------------- a camera that changes its size


@pytest.mark.slow
def test_a_camera_that_changes_its_size(models_dir: Path, person: np.ndarray, testdata: Path) -> None:
    """640×480, then 1280×720: results carry the true size and keypoints in the new frame's pixels."""
    small, large = _picture(person, SMALL, 0.6, 200, 40), _picture(person, LARGE, 1.0, 700, 40)
    parts = jpeg(small), jpeg(large)
    with serving(lambda n: parts[n >= 15], fps=10) as server:
        proc = run_cli("run", "--source", server.url, "--max-frames", "40", *model_args(models_dir), timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    sizes = [(r["width"], r["height"]) for r in results]
    assert sizes[0] == SMALL and sizes[-1] == LARGE
    assert sizes == sorted(sizes), "one change, from small to large"
    changes = [line for line in proc.stderr.splitlines() if "frame size" in line]
    assert len(changes) == 1 and "640x480 to 1280x720" in changes[0], proc.stderr
    # The person is pasted unscaled at (700, 40): the truth's own pixels, shifted. The reference allows 21 px.
    truth = np.loadtxt(testdata / "woman_standing_truth.csv", delimiter=",", skiprows=1).reshape(17, 2)
    truth += np.array([700.0, 40.0])
    last = np.array([[k["x"], k["y"]] for k in results[-1]["keypoints"]])
    error = np.abs(last - truth).max(axis=1)
    assert error.max() <= 21, f"keypoints in the 1280×720 frame's pixels: {error.round(1)}"


# ---------------------------------------------------------------- reopened and looped sources


class _Recorder:
    """A sink that keeps the results."""

    def __init__(self) -> None:
        self.results: list[PoseResult] = []

    def start(self) -> None:
        """Nothing to start."""

    def publish(self, result: PoseResult) -> None:
        self.results.append(result)

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture(scope="module")
def estimator(models_dir: Path) -> Iterator[Estimator]:
    from edgepose.inference.factory import open_estimator

    estimator = open_estimator(ModelConfig(models_dir=str(models_dir)))
    yield estimator
    estimator.close()


def _fresh(estimator: Estimator, image: np.ndarray) -> np.ndarray:
    """What tracking gives for ``image`` as the first frame of a video."""
    estimator.reset()
    return estimator.track(image).keypoints


@pytest.mark.slow
def test_a_looped_file_starts_the_tracker_afresh(estimator: Estimator, person: np.ndarray, tmp_path: Path) -> None:
    """The clip ends with the person on the right and starts with them on the left: the first frame of the
    second pass must not be looked at through the last frame's crop."""
    script = default_script()
    clip = write_clip(tmp_path / "clip.avi", person, script)
    recorder = _Recorder()
    source = open_source(str(clip), SourceConfig())
    options = ServiceOptions(loop=True, max_frames=len(script) + 1)
    service = Service(source, estimator, [recorder], options, PipelineStats(),
                      reopen=lambda: open_source(str(clip), SourceConfig()))  # fmt: skip
    service.run(threading.Event())
    results = recorder.results
    assert [r.frame for r in results] == list(range(len(script) + 1))
    first = cv2.VideoCapture(str(clip)).read()[1]
    expected = _fresh(estimator, first)
    np.testing.assert_allclose(results[0].keypoints, expected, atol=1e-6)
    np.testing.assert_allclose(results[len(script)].keypoints, expected, atol=1e-6,
                               err_msg="the second pass started from the last frame's crop")  # fmt: skip


class _Camera:
    """A live source giving one picture, ``count`` times (then it is lost), or for ever when ``count`` is 0."""

    still = False
    live = True

    def __init__(self, image: np.ndarray, count: int) -> None:
        self.name = "camera"
        self._image = image
        self._left = count or -1

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        time.sleep(0.02)
        if self._left == 0:
            raise SourceError("camera unplugged")
        self._left -= 1
        return self._image.copy()

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_a_reopened_camera_starts_the_tracker_afresh(estimator: Estimator, person: np.ndarray) -> None:
    right = render(person, Placement(0.5, 380, 100))  # what the camera saw before it was lost
    left = render(person, Placement(0.55, 40, 60))  # what it sees once it is back
    expected_before, expected_after = _fresh(estimator, right), _fresh(estimator, left)
    recorder = _Recorder()
    stats = PipelineStats()
    service = Service(_Camera(right, 8), estimator, [recorder], ServiceOptions(max_frames=12), stats,
                      reopen=lambda: _Camera(left, 0))  # fmt: skip
    service.run(threading.Event())
    assert stats.source.reopens == 1
    before = [r for r in recorder.results if r.frame < 8]  # the first opening gave frames 0 to 7
    after = [r for r in recorder.results if r.frame >= 8]
    assert before and after, [r.frame for r in recorder.results]
    np.testing.assert_allclose(before[0].keypoints, expected_before, atol=1e-6)
    assert not np.allclose(expected_before, expected_after, atol=1.0), "the two pictures differ"
    np.testing.assert_allclose(after[0].keypoints, expected_after, atol=1e-6,
                               err_msg="the reopened camera's first frame used the lost camera's crop")  # fmt: skip


# ---------------------------------------------------------------- FFmpeg's own lines


@pytest.mark.slow
def test_ffmpeg_lines_stay_off_stderr_unless_verbose(models_dir: Path, person: np.ndarray, tmp_path: Path) -> None:
    """A video with broken pictures: FFmpeg conceals them, and says so on stderr; only -v lets that through."""
    clip = write_clip(tmp_path / "clip.avi", person, default_script()[:20])
    data = bytearray(clip.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]
    noise = np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    for start in starts[4::5]:
        data[start + 700 : start + 2700] = noise
    broken = tmp_path / "broken.avi"
    broken.write_bytes(bytes(data))
    quiet = run_cli("run", "--source", str(broken), *model_args(models_dir))
    verbose = run_cli("run", "--source", str(broken), "-v", *model_args(models_dir))
    assert quiet.returncode == 0 and verbose.returncode == 0, quiet.stderr + verbose.stderr
    assert len(quiet.stdout.splitlines()) == 20
    assert "[mjpeg @" in verbose.stderr, "the video really makes FFmpeg complain"
    assert "[mjpeg @" not in quiet.stderr, quiet.stderr


def test_a_stream_password_never_reaches_the_logs_or_the_stats(caplog: pytest.LogCaptureFixture) -> None:
    """An rtsp:// URL with a password names the stream in logs, STATUS and the MQTT stats' reason: redacted."""
    source = OpenCVSource("rtsp://admin:s3cret@127.0.0.1:9/stream", SourceConfig(timeout_s=1.0), live=True)
    assert source.name == "rtsp://admin:***@127.0.0.1:9/stream"
    with pytest.raises(SourceError) as failed:
        source.open()
    assert "s3cret" not in str(failed.value) and "admin:***@" in str(failed.value)
    assert "s3cret" not in caplog.text
