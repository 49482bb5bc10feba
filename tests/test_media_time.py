"""Media time: the analytics follow the frames' own clock, not the wall clock (NTP steps it) nor the reading speed."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from clips import FALL_EMPTY_S, FALL_PLAN, Placement, render, write_fall_clip
from conftest import model_args, run_cli
from stickfigure import FPS, HEIGHT, T0, WIDTH, Noise, empty_keypoints, noisy, squat, total
from test_capture import Scripted

from edgepose.analytics import Analytics
from edgepose.config import AnalyticsConfig, ModelConfig, SmoothingConfig, SourceConfig
from edgepose.health import PipelineStats
from edgepose.pipeline.capture import CaptureOptions, CaptureThread, Frame, FrameBuffer
from edgepose.pipeline.loop import Service, ServiceOptions
from edgepose.pose import PoseResult
from edgepose.sources.opencv import OpenCVSource

HOUR = 3600.0
#: The visit of the injected-timestamp stream: seconds in view, seconds of empty room after.
VISIT_S, EMPTY_S = 4.0, 3.0


def _visit(step_s: float, step_at_s: float = 2.0) -> list[PoseResult]:
    """A person walking right for VISIT_S, then the empty room; the wall clock steps by ``step_s`` at ``step_at_s``."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(round((VISIT_S + EMPTY_S) * FPS)):
        t = i / FPS
        kps = noisy(squat(175.0, x=200.0 + 60.0 * t), rng, Noise()) if t < VISIT_S else empty_keypoints(rng)
        wall = T0 + t + (step_s if t >= step_at_s else 0.0)
        out.append(PoseResult(frame=i, ts=wall, width=WIDTH, height=HEIGHT, keypoints=kps, media_s=t))
    return out


def _x(keypoints: np.ndarray) -> float:
    """Where the person is across: the median x of the keypoints scoring at least 0.3."""
    return float(np.median(keypoints[keypoints[:, 2] >= 0.3, 0]))


def _analyse(results: list[PoseResult]) -> list[PoseResult]:
    analytics = Analytics(AnalyticsConfig(), SmoothingConfig())
    return [analytics.update(result) for result in results]


@pytest.mark.parametrize("step_s", [-HOUR, HOUR])
def test_a_wall_clock_step_changes_nothing_the_analytics_conclude(step_s: float) -> None:
    steady, stepped = _analyse(_visit(0.0)), _analyse(_visit(step_s))
    events = [(r, e) for r in stepped for e in r.events]
    assert [e["type"] for _, e in events] == ["person_entered", "person_left"]
    (came, entered), (went, left) = events
    assert abs(entered["media_s"] - 0.5) <= 2.5 / FPS, entered  # enter_s after the person appears
    assert abs(left["media_s"] - (VISIT_S + 2.0)) <= 2.5 / FPS, left  # leave_s after the person goes
    assert left["visit_s"] == pytest.approx(VISIT_S - 0.5 + 2.0, abs=0.1)
    assert (entered["ts"], left["ts"]) == (round(came.ts, 6), round(went.ts, 6))  # ts: the frame's wall clock
    assert [r.events for r in steady] == [
        tuple({**e, "ts": round(r.ts, 6)} for e in s.events) for r, s in zip(steady, stepped, strict=True)
    ]
    # the smoothing neither froze (-1 h) nor reset (+1 h): the keypoints are those of the steady clock ...
    assert all(np.array_equal(a.keypoints, b.keypoints) for a, b in zip(steady, stepped, strict=True))
    # ... and follow the walk after the step
    after = [_x(r.keypoints) for r in stepped if 2.0 <= (r.media_s or 0.0) < VISIT_S]
    assert after[-1] - after[0] > 60.0, (after[0], after[-1])  # 120 px walked in those 2 s


def test_without_media_time_the_analytics_fall_back_to_ts() -> None:
    """A PoseResult built without ``media_s`` (an old recording) is timed by its ``ts``, as before."""
    old = [PoseResult(r.frame, T0 + r.frame / FPS, r.width, r.height, r.keypoints) for r in _visit(0.0)]
    events = [e for r in _analyse(old) for e in r.events]
    assert [e["type"] for e in events] == ["person_entered", "person_left"]
    assert "media_s" not in events[1] and abs(events[1]["ts"] - T0 - (VISIT_S + 2.0)) <= 2.5 / FPS


# --- the capture thread stamps the frames ---------------------------------------------------------------------


def _drain(buffer: FrameBuffer, count: int) -> list[Frame]:
    frames = []
    while len(frames) < count:
        frame = buffer.get(timeout=30)
        assert frame is not None, "the buffer finished early"
        frames.append(frame)
    return frames


def _tiny_clip(path: Path, frames: int, fps: float) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    return path


def test_file_frames_carry_the_container_time_and_keep_increasing_across_loops(tmp_path: Path) -> None:
    clip = _tiny_clip(tmp_path / "tiny.avi", 5, 10.0)

    def source() -> OpenCVSource:
        return OpenCVSource(str(clip), SourceConfig(), live=False)

    buffer = FrameBuffer(capacity=1, drop_oldest=False)
    capture = CaptureThread(source(), buffer, CaptureOptions(loop=True), reopen=source)
    capture.start()
    try:
        frames = _drain(buffer, 12)
    finally:
        capture.stop()
        capture.join(timeout=5)
    assert [f.index for f in frames] == list(range(12))
    assert [f.media_s for f in frames] == pytest.approx([i / 10.0 for i in range(12)], abs=1e-6)


def test_a_file_without_timestamps_is_timed_by_frame_number_and_rate() -> None:
    source = Scripted(["frame"] * 6, live=False, log=[], release=threading.Event())
    source.fps = 20.0  # type: ignore[attr-defined]  # a file that says its rate but gives no timestamps
    buffer = FrameBuffer(capacity=1, drop_oldest=False)
    capture = CaptureThread(source, buffer, CaptureOptions())
    capture.start()
    frames = _drain(buffer, 6)
    capture.join(timeout=5)
    assert [f.media_s for f in frames] == pytest.approx([i / 20.0 for i in range(6)])


@pytest.mark.slow
def test_a_live_source_is_timed_by_a_monotonic_clock_across_reopenings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wall clock goes back an hour at every read; the media time goes on, across a reopening too."""
    wall = [time.time()]

    def stepping_wall_clock() -> float:
        wall[0] -= HOUR
        return wall[0]

    release = threading.Event()
    first = Scripted(["frame", "frame", "fail"], live=True, log=[], release=release)
    second = Scripted(["frame", "frame", "hang"], live=True, log=[], release=release)
    buffer = FrameBuffer(capacity=1, drop_oldest=False)
    capture = CaptureThread(first, buffer, CaptureOptions(), reopen=lambda: second)
    monkeypatch.setattr(time, "time", stepping_wall_clock)
    capture.start()
    try:
        frames = _drain(buffer, 4)
    finally:
        capture.stop()
        capture.join(timeout=5)
        release.set()
    assert capture.state.reopens == 1
    assert all(b.ts < a.ts for a, b in itertools.pairwise(frames)), "the wall clock did step back"
    media = [f.media_s for f in frames]
    assert media == sorted(media) and media[0] >= 0.0
    assert media[2] - media[1] >= 0.5, media  # the reopening waited 0.5 s, and the media time went on


# --- the real pipeline: a camera whose wall clock NTP steps ---------------------------------------------------


class SteppingCamera:
    """A live source: a person walking right for ``person_s``, then the empty room, a frame every 1/30 s.

    Halfway through the visit it steps the wall clock by ``step_s``; it sets ``stop`` once the room has been
    empty for ``give_up_s`` (the analytics should have said ``person_left`` long before).
    """

    live = True
    still = False
    name = "stepping camera"

    def __init__(self, person: np.ndarray, step_s: float, wall: list[float], stop: threading.Event) -> None:
        self._person = person
        self._step_s = step_s
        self._wall = wall
        self._stop = stop
        self.person_s, self.give_up_s = 1.5, 10.0
        self._frames = 0
        self.stepped_at: float | None = None  # media time of the step, on this source's clock

    def open(self) -> None:
        self._started = time.monotonic()

    def read(self) -> np.ndarray:
        due = self._started + self._frames / 30.0
        time.sleep(max(0.0, due - time.monotonic()))
        self._frames += 1
        t = time.monotonic() - self._started
        if self.stepped_at is None and t >= self.person_s / 2:
            self._wall[0] += self._step_s
            self.stepped_at = t
        if t > self.person_s + self.give_up_s:
            self._stop.set()
        return render(self._person, Placement(0.5, 40 + 4 * self._frames, 140) if t < self.person_s else None)

    def close(self) -> None:
        """Nothing to release."""


class Collector:
    """A sink keeping every result; sets ``stop`` at ``person_left``."""

    def __init__(self, stop: threading.Event) -> None:
        self.results: list[PoseResult] = []
        self._stop = stop

    def start(self) -> None:
        """Nothing to start."""

    def publish(self, result: PoseResult) -> None:
        self.results.append(result)
        if any(e["type"] == "person_left" for e in result.events):
            self._stop.set()

    def close(self) -> None:
        """Nothing to release."""


@pytest.mark.slow
@pytest.mark.parametrize("step_s", [-HOUR, HOUR])
def test_a_camera_keeps_its_timing_when_ntp_steps_the_wall_clock(
    step_s: float, models_dir: Path, testdata: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgepose.inference.factory import open_estimator

    person = np.ascontiguousarray(cv2.imread(str(testdata / "woman_standing.png"))[:, :, :3])
    real_time = time.time
    wall = [0.0]
    monkeypatch.setattr(time, "time", lambda: real_time() + wall[0])
    stop = threading.Event()
    camera = SteppingCamera(person, step_s, wall, stop)
    collector = Collector(stop)
    smoothing = SmoothingConfig()
    estimator = open_estimator(ModelConfig(models_dir=str(models_dir)), smoothing.crop_alpha)
    try:
        service = Service(camera, estimator, [collector], ServiceOptions(), PipelineStats(),
                          analytics=Analytics(AnalyticsConfig(), smoothing))  # fmt: skip
        service.run(stop)
    finally:
        estimator.close()
    results = collector.results
    jumps = [b.ts - a.ts for a, b in itertools.pairwise(results)]
    assert any(abs(jump - step_s) < 60 for jump in jumps), "the wall clock stepped during the visit"
    events = [e for r in results for e in r.events]
    assert [e["type"] for e in events] == ["person_entered", "person_left"], events
    entered, left = events
    assert 1.0 <= left["visit_s"] <= 30.0, left  # shown 1.5 s, less enter_s (0.5), plus leave_s (2), not an hour
    assert left["media_s"] - entered["media_s"] == pytest.approx(left["visit_s"], abs=0.002)
    # the smoothing follows the walk after the step, it does not freeze
    assert camera.stepped_at is not None
    walking = [_x(r.keypoints) for r in results
               if r.media_s is not None and camera.stepped_at < r.media_s < camera.person_s - 0.1
               and r.score >= 0.3]  # fmt: skip
    assert len(walking) >= 3 and walking[-1] - walking[0] > 10.0, walking


# --- a file read faster than it plays -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fall_clip(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> Path:
    """The woman_standing photo (its alpha as the mask) falling, lying, getting up and leaving, at 15 fps."""
    person = cv2.imread(str(testdata / "woman_standing.png"), cv2.IMREAD_UNCHANGED)
    return write_fall_clip(tmp_path_factory.mktemp("fall") / "fall.avi", person)


@pytest.fixture(scope="module")
def full_speed(fall_clip: Path, models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The JSON lines of ``run`` over the fall clip, every frame processed as fast as the model goes."""
    out = tmp_path_factory.mktemp("full") / "poses.jsonl"
    proc = run_cli("run", "--source", str(fall_clip), "--output", str(out), *model_args(models_dir))
    assert proc.returncode == 0, proc.stderr
    return out


def _events(lines: Iterator[str] | list[str]) -> list[dict[str, Any]]:
    return [e for line in lines if line.strip() for e in json.loads(line)["events"]]


#: The fall clip's events, in order.
FALL_EVENTS = ["person_entered", "fall", "recovered", "person_left"]


@pytest.mark.slow
def test_a_file_read_at_full_speed_is_timed_as_in_realtime(full_speed: Path, fall_clip: Path, models_dir: Path) -> None:
    fast = _events(full_speed.read_text().splitlines())
    assert [e["type"] for e in fast] == FALL_EVENTS
    shown = round(total(*FALL_PLAN) * 15) / 15
    person_left = fast[-1]
    assert 2.0 - 1e-3 <= person_left["media_s"] - shown <= 2.0 + 1.5 / 15, (
        person_left
    )  # leave_s of video after she went
    assert person_left["media_s"] <= shown + FALL_EMPTY_S
    fall = fast[1]
    assert 2.0 + 0.6 / 2 + 2.0 <= fall["media_s"] <= 2.0 + 0.6 + 2.0 + 0.2, fall  # fall_down_s of video after the turn
    paced = run_cli("run", "--source", str(fall_clip), "--realtime", *model_args(models_dir), timeout=300)
    assert paced.returncode == 0, paced.stderr
    slow = _events(paced.stdout.splitlines())
    assert [e["type"] for e in slow] == FALL_EVENTS
    for a, b in zip(fast, slow, strict=True):  # the paced run may drop frames: slack of a few
        assert abs(a["media_s"] - b["media_s"]) <= 0.5, (a, b)
    assert abs(fast[-1]["visit_s"] - slow[-1]["visit_s"]) <= 0.5


@pytest.mark.slow
def test_analyze_replays_a_recording_with_the_timing_of_run(full_speed: Path) -> None:
    """The full-speed run's ``ts`` covers a fraction of the video; ``analyze`` follows ``media_s`` as run did."""
    lines = full_speed.read_text().splitlines()
    replay = run_cli("analyze", str(full_speed))
    assert replay.returncode == 0, replay.stderr
    replayed = replay.stdout.splitlines()
    assert len(replayed) == len(lines)
    assert _events(replayed) == _events(lines)
    assert [e["type"] for e in _events(replayed)] == FALL_EVENTS
    assert [json.loads(line)["state"] for line in replayed] == [json.loads(line)["state"] for line in lines]
