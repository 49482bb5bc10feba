"""Idle mode at the capture: frames it will not look at are not decoded, and picamera2's main stream rests.

The OpenCV test counts decodes on a real video file read by the real ``OpenCVSource``. picamera2 is absent
here: a thin fake at its API boundary (``Picamera2``: configure, start, ``capture_array``, ``capture_buffer``,
``capture_metadata``) counts which stream each frame was taken from. Both run the real loop and model.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest
from clips import BACKGROUND, HEIGHT, WIDTH, Placement, render
from conftest import TESTDATA

from edgepose.config import IdleConfig, ModelConfig, SourceConfig
from edgepose.health import PipelineStats
from edgepose.inference.estimator import Estimator
from edgepose.pipeline.loop import Service, ServiceOptions
from edgepose.pose import PoseResult
from edgepose.sources.images import load_image
from edgepose.sources.opencv import OpenCVSource

FPS = 30.0


class _Recorder:
    """A sink that keeps the results and the stats' mode at each."""

    def __init__(self, stats: PipelineStats) -> None:
        self.results: list[PoseResult] = []
        self.modes: list[str] = []
        self._stats = stats

    def start(self) -> None:
        """Nothing to start."""

    def publish(self, result: PoseResult) -> None:
        self.results.append(result)
        self.modes.append(self._stats.mode)

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture(scope="module")
def estimator(models_dir: Path) -> Iterator[Estimator]:
    from edgepose.inference.factory import open_estimator

    estimator = open_estimator(ModelConfig(models_dir=str(models_dir)))
    yield estimator
    estimator.close()


def _empty_room(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.int16) + rng.integers(-2, 3, (HEIGHT, WIDTH, 3))
    return frame.clip(0, 255).astype(np.uint8)


class _CountingVideo(OpenCVSource):
    """The real OpenCV source of a file, counting decodes (``read``) and undecoded takes (``grab``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path), SourceConfig(), live=False)
        self.reads = 0
        self.grabs = 0

    def read(self) -> np.ndarray | None:
        self.reads += 1
        return super().read()

    def grab(self) -> bool:
        self.grabs += 1
        return super().grab()


@pytest.mark.slow
def test_idle_mode_grabs_the_frames_it_will_not_look_at_without_decoding_them(
    estimator: Estimator, tmp_path: Path
) -> None:
    seconds = 5
    clip = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    for i in range(int(FPS * seconds)):
        writer.write(_empty_room(i))
    writer.release()
    source = _CountingVideo(clip)
    stats = PipelineStats()
    recorder = _Recorder(stats)
    options = ServiceOptions(realtime=True, idle=IdleConfig(after_s=1.0, fps=2.0, check_fps=10.0))
    Service(source, estimator, [recorder], options, stats).run(threading.Event())
    assert stats.mode == "idle"
    taken = source.reads + source.grabs
    assert taken >= FPS * seconds - 1, "every frame of the file was taken, decoded or not"
    assert source.grabs > 0, "frames idle mode does not look at are grabbed"
    # Active for the first second (30 decodes), then about 10 of every 30 frames decoded: far below all of them.
    assert source.reads < taken * 0.6, (source.reads, source.grabs)


class _FakePicamera2:
    """picamera2's ``Picamera2`` at its API boundary: a 30 fps camera that counts what is taken from which stream.

    The scene is an empty room until ``enter_after_lores`` low-resolution pictures were taken, then the test
    person stands in it. Every call that takes a frame (``capture_array``, ``capture_buffer``,
    ``capture_metadata``) consumes one.
    """

    instances: ClassVar[list[_FakePicamera2]] = []
    enter_after_lores = 10**9

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self.config: dict[str, Any] = {}
        self.main = 0
        self.lores = 0
        self.metadata = 0
        self.frames = 0
        self.entered_at: int | None = None
        self._next = time.monotonic()
        self._person = render(load_image(TESTDATA / "woman_standing.png"), Placement(0.55, 200, 60))
        self._empty = render(load_image(TESTDATA / "woman_standing.png"), None)
        _FakePicamera2.instances.append(self)

    def create_video_configuration(self, main: dict[str, Any], lores: dict[str, Any] | None = None,
                                   **kwargs: Any) -> dict[str, Any]:  # fmt: skip
        return {"main": dict(main), "lores": dict(lores) if lores else None, **kwargs}

    def configure(self, config: dict[str, Any]) -> None:
        self.config = config
        if config["lores"] is not None:
            # libcamera pads rows: the reader must use the stride
            config["lores"]["stride"] = config["lores"]["size"][0] + 32

    def stream_configuration(self, name: str) -> dict[str, Any]:
        stream: dict[str, Any] = self.config[name]
        return stream

    def start(self) -> None:
        self._next = time.monotonic()

    def _frame(self) -> np.ndarray:
        self._next += 1.0 / FPS
        time.sleep(max(0.0, self._next - time.monotonic()))
        self.frames += 1
        present = self.lores >= self.enter_after_lores
        if present and self.entered_at is None:
            self.entered_at = self.frames
        return self._person if present else self._empty

    def capture_array(self, name: str = "main") -> np.ndarray:
        assert name == "main"
        self.main += 1
        return self._frame().copy()

    def capture_buffer(self, name: str = "main") -> np.ndarray:
        assert name == "lores"
        self.lores += 1
        bgr = self._frame()
        width, height = self.config["lores"]["size"]
        stride = self.config["lores"]["stride"]
        small = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
        yuv = cv2.cvtColor(small, cv2.COLOR_BGR2YUV_I420)  # Y plane, then U and V at a quarter each
        y_plane = np.zeros((height, stride), np.uint8)
        y_plane[:, :width] = yuv[:height]
        return np.concatenate([y_plane.ravel(), np.full(stride * height // 2, 128, np.uint8)])

    def capture_metadata(self) -> dict[str, Any]:
        self.metadata += 1
        self._frame()
        return {"SensorTimestamp": self.frames}

    def stop(self) -> None:
        """Nothing to stop."""

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[_FakePicamera2]:
    module = types.ModuleType("picamera2")
    module.__spec__ = importlib.machinery.ModuleSpec("picamera2", None)
    module.Picamera2 = _FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    _FakePicamera2.instances = []
    _FakePicamera2.enter_after_lores = 10**9
    return _FakePicamera2


def _run_for(source: Any, estimator: Estimator, seconds: float) -> tuple[_Recorder, PipelineStats]:
    stats = PipelineStats()
    recorder = _Recorder(stats)
    options = ServiceOptions(idle=IdleConfig(after_s=1.0, fps=2.0, check_fps=10.0))
    stop = threading.Event()
    service = Service(source, estimator, [recorder], options, stats)
    runner = threading.Thread(target=service.run, args=(stop,), daemon=True)
    runner.start()
    runner.join(timeout=seconds)
    stop.set()
    runner.join(timeout=5)
    return recorder, stats


@pytest.mark.slow
def test_picamera_idles_on_the_lores_stream_and_takes_main_only_for_model_runs(
    estimator: Estimator, fake_picamera2: type[_FakePicamera2]
) -> None:
    from edgepose.sources.picamera import PicameraSource

    recorder, stats = _run_for(PicameraSource(0, SourceConfig()), estimator, 4.0)
    camera = fake_picamera2.instances[0]
    assert camera.config["lores"]["format"] == "YUV420", "a low-resolution stream is configured"
    assert stats.mode == "idle"
    assert camera.lores > 0, "idle mode looked at the lores stream"
    idle_runs = recorder.modes.count("idle")
    assert idle_runs >= 1, "the model still runs now and then while idle"
    # While idle every main frame is one the model ran on; frames nobody looks at touch neither stream.
    active = len(recorder.results) - idle_runs
    assert camera.main <= active + idle_runs + stats.dropped + 1, (camera.main, active, idle_runs)
    assert camera.metadata > 0, "frames between the looks are only waited for"


@pytest.mark.slow
def test_picamera_wakes_from_the_lores_stream_within_half_a_second(
    estimator: Estimator, fake_picamera2: type[_FakePicamera2]
) -> None:
    from edgepose.sources.picamera import PicameraSource

    fake_picamera2.enter_after_lores = 15  # about 1.5 s into idle (10 looks a second)
    recorder, _ = _run_for(PicameraSource(0, SourceConfig()), estimator, 5.0)
    camera = fake_picamera2.instances[0]
    assert camera.entered_at is not None, "the person stepped in"
    seen = [r.frame for r in recorder.results if r.frame + 1 >= camera.entered_at and r.score >= 0.2]
    assert seen, "the person was found"
    assert seen[0] + 1 - camera.entered_at <= round(0.5 * FPS), (seen[0], camera.entered_at)
    assert recorder.modes[-1] == "active"
