"""Idle mode and --max-fps: the model runs at a trickle in an empty scene, wakes at once, and a cap holds."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import BACKGROUND, HEIGHT, WIDTH, Placement, default_script, render, write_clip
from conftest import TESTDATA, model_args, run_cli

from edgepose.config import IdleConfig
from edgepose.pipeline.idle import (
    ACTIVE,
    IDLE,
    MOTION_SIZE,
    UNCHANGED_RECHECK_S,
    IdleGate,
    MotionDetector,
    shrink,
)
from edgepose.sources.images import load_image

FPS = 30.0


def _empty(seed: int) -> np.ndarray:
    """An empty room with a little sensor noise (a quarter of the clip size: motion is measured at 80×60)."""
    rng = np.random.default_rng(seed)
    shape = (HEIGHT // 4, WIDTH // 4, 3)
    frame = np.full(shape, BACKGROUND, np.int16) + rng.integers(-3, 4, shape)
    return frame.clip(0, 255).astype(np.uint8)


def _drive(gate: IdleGate, frames: list[np.ndarray], start: float, present: bool = False) -> list[float]:
    """Feed frames at 30 fps; return the times the model ran (``present`` is what each run finds)."""
    runs = []
    for i, frame in enumerate(frames):
        now = start + i / FPS
        if gate.should_run(now, frame):
            runs.append(now)
            gate.observe(now, present)
    return runs


def test_empty_scene_goes_idle_after_idle_after_s_and_runs_at_most_idle_fps() -> None:
    gate = IdleGate(IdleConfig(after_s=10.0, fps=2.0), start=0.0)
    frames = [_empty(i) for i in range(int(25 * FPS))]  # 25 s of an empty room
    runs = _drive(gate, frames, 0.0)
    assert gate.state == IDLE and gate.idles == 1
    active_runs = [t for t in runs if t < 10.0]
    assert len(active_runs) == 300, "every frame of the first 10 s ran the model"
    idle_runs = [t for t in runs if t > 10.0 + 1 / FPS]
    # The room does not change: after the first idle run, one a second (UNCHANGED_RECHECK_S), not idle_fps.
    assert 15 / UNCHANGED_RECHECK_S - 2 <= len(idle_runs) <= 15 / UNCHANGED_RECHECK_S + 1, "it keeps looking"
    assert all(b - a >= UNCHANGED_RECHECK_S - 1 / FPS for a, b in itertools.pairwise(idle_runs)), idle_runs
    assert gate.wakes == 0, "sensor noise is not motion"


def _far_away(frame: np.ndarray, seed: int) -> np.ndarray:
    """The empty room with a small dark figure in one corner: a change in one cell, not motion over the picture."""
    out = frame.copy()
    rows, cols = out.shape[0] // 12, out.shape[1] // 16  # 1/192 of the picture
    out[10 : 10 + rows, 10 : 10 + cols] = 20 + np.random.default_rng(seed).integers(0, 3, (rows, cols, 1))
    return out


def test_a_changed_picture_gets_idle_fps_runs_an_unchanged_one_one_a_second() -> None:
    gate = IdleGate(IdleConfig(after_s=1.0, fps=2.0), start=0.0)
    _drive(gate, [_empty(i) for i in range(60)], 0.0)
    assert gate.state == IDLE
    unchanged: list[float] = []  # the same room, until half a second after its second run
    i = 0
    while len(unchanged) < 2 or 2.0 + i / FPS < unchanged[-1] + 0.5:
        unchanged += _drive(gate, [_empty(100 + i)], 2.0 + i / FPS)
        i += 1
    assert unchanged[1] - unchanged[0] >= UNCHANGED_RECHECK_S - 1 / FPS, unchanged
    # Something small appears half a second after the last run: too little to count as motion over the whole
    # picture, so no wake...
    appeared = 2.0 + i / FPS
    runs = _drive(gate, [_far_away(_empty(200 + i), i) for i in range(90)], appeared)
    assert gate.wakes == 0 and gate.motion.level < gate.settings.motion_threshold
    # ...but its cell changed since the last run: the next run comes at idle_fps, not a second after the last.
    assert runs and runs[0] - unchanged[-1] <= 1 / gate.settings.fps + 1 / FPS, (unchanged, runs)
    # Once a run has seen it (and found nobody), that picture is the unchanged one again.
    assert all(b - a >= UNCHANGED_RECHECK_S - 1 / FPS for a, b in itertools.pairwise(runs)), runs


def test_a_body_still_being_decided_on_keeps_idle_fps_runs_on_an_unchanged_picture() -> None:
    gate = IdleGate(IdleConfig(after_s=1.0, fps=2.0), start=0.0)
    _drive(gate, [_empty(i) for i in range(60)], 0.0)
    assert gate.state == IDLE
    runs = []
    for i in range(90):  # 3 s of the same picture; every run finds a body the analytics have not taken yet
        now = 2.0 + i / FPS
        if gate.should_run(now, _empty(400 + i)):
            runs.append(now)
            gate.observe(now, present=False, deciding=True)
    assert len(runs) >= 2 * 3 - 1, runs
    assert all(b - a <= 1 / gate.settings.fps + 1 / FPS for a, b in itertools.pairwise(runs)), runs


def test_a_picture_that_keeps_changing_gets_idle_fps_runs() -> None:
    gate = IdleGate(IdleConfig(after_s=1.0, fps=2.0), start=0.0)
    _drive(gate, [_empty(i) for i in range(60)], 0.0)
    # A flickering screen in a corner: a different cell picture every frame, never motion over the picture.
    flicker = [_empty(300 + i) for i in range(150)]
    for i, frame in enumerate(flicker):
        frame[10:22, 10:26] = 40 if i % 2 else 200
    runs = _drive(gate, flicker, 2.0)
    assert gate.wakes == 0
    assert 2 * 5 - 2 <= len(runs) <= 2 * 5 + 1, runs  # 5 s at idle_fps


def test_motion_wakes_at_once_and_a_person_keeps_it_active() -> None:
    gate = IdleGate(IdleConfig(after_s=1.0, fps=2.0), start=0.0)
    _drive(gate, [_empty(i) for i in range(60)], 0.0)
    assert gate.state == IDLE
    person = load_image(TESTDATA / "woman_standing.png")
    visit = render(person, Placement(0.5, 200, 100))
    assert gate.should_run(2.5, visit), "the first frame that shows her runs the model"
    assert gate.state == ACTIVE and gate.wakes == 1
    gate.observe(2.5, present=True)
    runs = _drive(gate, [visit] * 90, 2.5 + 1 / FPS, present=True)
    assert len(runs) == 90 and gate.state == ACTIVE


def test_motion_detector_ignores_noise_and_sees_a_person(testdata: Path) -> None:
    detector = MotionDetector(threshold=6.0, rate=0.05)
    assert not detector.moved(_empty(0))
    assert not any(detector.moved(_empty(i)) for i in range(1, 30))
    person = load_image(testdata / "woman_standing.png")
    assert detector.moved(render(person, Placement(0.5, 200, 100)))


def test_the_motion_copy_is_the_area_average_of_the_frame_up_to_rounding(testdata: Path) -> None:
    frame = render(load_image(testdata / "woman_standing.png"), Placement(0.5, 200, 100))
    for image in (frame, frame[:, :, 1].copy(), cv2.resize(frame, (1280, 720))):
        small = shrink(image, MOTION_SIZE).astype(np.int16)
        direct = cv2.resize(image, MOTION_SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)
        assert small.shape == direct.shape
        if (
            image.shape[1] % MOTION_SIZE[0] == 0
            and image.shape[1] // MOTION_SIZE[0] == image.shape[0] // MOTION_SIZE[1]
        ):
            assert np.abs(small - direct).max() <= 2, "a power-of-two factor: only the rounding of each halving differs"
        else:  # 1280×720 to 80×60: halved to 160×90 first, so the blocks' edges fall elsewhere
            assert np.abs(small - direct).mean() < 1.0


def test_disabled_idle_never_idles() -> None:
    gate = IdleGate(IdleConfig(enabled=False, after_s=1.0), start=0.0)
    runs = _drive(gate, [_empty(i) for i in range(120)], 0.0)
    assert len(runs) == 120 and gate.state == ACTIVE


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def visit_clip(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """4 s of an empty room, then the test person steps in for 3 s (15 fps)."""
    empty = 60
    script: list[Placement | None] = [None] * empty + [Placement(0.55, 150 + 2 * i, 60) for i in range(45)]
    path = tmp_path_factory.mktemp("idle") / "visit.avi"
    write_clip(path, load_image(testdata / "woman_standing.png"), script, fps=15.0)
    return path, empty


@pytest.mark.slow
def test_idle_on_a_clip_wakes_within_the_bound_counted_in_frames(
    models_dir: Path, visit_clip: tuple[Path, int]
) -> None:
    clip, appears = visit_clip
    proc = run_cli("run", "--source", str(clip), "--realtime", *model_args(models_dir),
                   env={"EDGEPOSE_IDLE_AFTER_S": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = _records(proc.stdout)
    idle_part = [r for r in records if 30 <= r["frame"] < appears]  # 2 s after going idle, before she enters
    assert len(idle_part) <= 2 * 2 + 2, "while idle the model ran about twice a second"
    seen = [r["frame"] for r in records if r["frame"] >= appears and r["score"] >= 0.2]
    wake_bound_frames = round(0.5 * 15)  # 0.5 s at 15 fps
    assert seen and seen[0] <= appears + wake_bound_frames, (seen[:3], appears)
    # Active once she is there: far more model runs than idle's two a second would give over those 2.5 s
    # (about 5). Not "every frame": --realtime drops the frames a busy machine cannot keep up with.
    late = [r for r in records if r["frame"] >= appears + wake_bound_frames]
    assert len(late) >= 12, len(late)


def test_idle_off_processes_every_frame_of_the_empty_part(models_dir: Path, visit_clip: tuple[Path, int]) -> None:
    clip, _ = visit_clip
    proc = run_cli("run", "--source", str(clip), "--idle", "off", "--max-frames", "40", *model_args(models_dir),
                   env={"EDGEPOSE_IDLE_AFTER_S": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [r["frame"] for r in _records(proc.stdout)] == list(range(40))


@pytest.mark.slow
def test_max_fps_caps_the_processed_rate_by_the_frames_own_clock(
    models_dir: Path, testdata: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "clip.avi", load_image(testdata / "woman_standing.png"), default_script(), fps=15.0)
    proc = run_cli("run", "--source", str(clip), "--realtime", "--max-fps", "5", "--idle", "off",
                   *model_args(models_dir))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    frames = [r["frame"] for r in _records(proc.stdout)]
    span_s = (frames[-1] - frames[0]) / 15.0  # the file's own clock
    assert len(frames) <= 5 * span_s + 2, (len(frames), span_s)
    assert len(frames) >= 5, "it still processes"


@pytest.mark.slow
def test_bad_idle_and_max_fps_values_are_config_errors(models_dir: Path) -> None:
    for flags, needle in ((["--max-fps", "nan"], "max_fps"), (["--idle", "maybe"], "invalid choice")):
        proc = run_cli("run", "--source", "synthetic", *flags, *model_args(models_dir))
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    proc = run_cli("run", "--source", "synthetic", *model_args(models_dir), env={"EDGEPOSE_IDLE_FPS": "0"})
    assert proc.returncode == 2 and "idle.fps" in proc.stderr
