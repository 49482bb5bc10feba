"""The screen sink under SDL's dummy video driver: real pygame, real model, pixels checked on the surface."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_one_line_error, model_args, needs, run_cli

from edgepose.config import DisplayConfig, ModelConfig
from edgepose.pose import SKELETON_EDGES, PoseResult
from edgepose.sinks.drawing import EDGE_COLOR, score_color, sizes
from edgepose.sinks.screen import ScreenSink, fit

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
try:
    import pygame
except ImportError:  # the test extra installs it; without it every test here skips (a failure under .ci/run)
    pygame = None
pytestmark = needs("pygame", pygame is not None, "pip install 'edgepose[display]'")

BACKGROUND = (128, 128, 128)
MIN_SCORE = 0.2


@pytest.fixture(autouse=True)
def dummy_video(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")


@pytest.fixture(scope="module")
def person(testdata: Path) -> np.ndarray:
    rgba = cv2.imread(str(testdata / "woman_standing.png"), cv2.IMREAD_UNCHANGED)
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    frame = rgba[:, :, :3].astype(np.float32) * alpha + np.array(BACKGROUND, np.float32) * (1 - alpha)
    return np.ascontiguousarray(frame.round().astype(np.uint8))


@pytest.fixture(scope="module")
def result(person: np.ndarray, models_dir: Path) -> PoseResult:
    """The real model's pose of the photo."""
    from edgepose.inference.factory import open_estimator

    estimator = open_estimator(ModelConfig(models_dir=str(models_dir)))
    estimate = estimator.still(person)
    height, width = person.shape[:2]
    return PoseResult(0, time.time(), width, height, estimate.keypoints, {"total": 1.0}, person)


@pytest.fixture
def sinks() -> Iterator[list[ScreenSink]]:
    made: list[ScreenSink] = []
    yield made
    for sink in made:
        sink.close()


def wait_drawn(sink: ScreenSink, count: int = 1, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while sink.drawn < count:
        assert time.monotonic() < deadline, "nothing was drawn"
        time.sleep(0.01)


def draw_once(sinks: list[ScreenSink], config: DisplayConfig, result: PoseResult) -> tuple[ScreenSink, np.ndarray]:
    """Start a screen sink, publish one result, wait until it is drawn; return the sink and its surface."""
    sink = ScreenSink(config, MIN_SCORE)
    sinks.append(sink)
    sink.start()
    sink.publish(result)
    wait_drawn(sink)
    surface = sink.snapshot()
    assert surface is not None
    return sink, surface


def rgb(bgr: tuple[int, int, int]) -> np.ndarray:
    return np.array(bgr[::-1])


def near(surface: np.ndarray, x: float, y: float, color: np.ndarray, reach: int, tolerance: int = 12) -> bool:
    cx, cy = round(x), round(y)
    patch = surface[cy - reach : cy + reach + 1, cx - reach : cx + reach + 1].reshape(-1, 3).astype(int)
    return bool(np.abs(patch - color).max(axis=1).min() <= tolerance)


def check_skeleton(surface: np.ndarray, result: PoseResult, scale: float, ox: int, oy: int) -> None:
    """Joints in their score colour at the keypoints, edges' midpoints in the edge colour."""
    points = result.keypoints
    confident = [i for i in range(17) if points[i, 2] >= 0.4]
    assert len(confident) >= 12, points
    for i in confident:
        x, y, s = points[i]
        assert near(surface, ox + x * scale, oy + y * scale, rgb(score_color(s)), 1), f"joint {i}"
    checked = 0
    for a, b in SKELETON_EDGES:
        if points[a, 2] >= 0.4 and points[b, 2] >= 0.4 and np.hypot(*(points[a, :2] - points[b, :2])) > 40:
            mx, my = (points[a, :2] + points[b, :2]) / 2
            assert near(surface, ox + mx * scale, oy + my * scale, rgb(EDGE_COLOR), 2), f"edge {a}-{b}"
            checked += 1
    assert checked >= 8


def test_window_shows_the_frame_with_the_skeleton(
    result: PoseResult, person: np.ndarray, sinks: list[ScreenSink]
) -> None:
    sink, surface = draw_once(sinks, DisplayConfig(enabled=True), result)
    height, width = person.shape[:2]
    assert surface.shape == (height, width, 3), "the window takes the frame's size"
    assert sink.placement == (1.0, 0, 0, width, height)
    check_skeleton(surface, result, 1.0, 0, 0)
    # Away from the skeleton the picture is the photo itself (RGB on screen, BGR in memory).
    assert np.abs(surface[5, 5].astype(int) - person[5, 5, ::-1]).max() <= 2
    # Control: the same checks fail on the photo without the overlay.
    with pytest.raises(AssertionError):
        check_skeleton(np.ascontiguousarray(person[:, :, ::-1]), result, 1.0, 0, 0)


def test_fullscreen_scales_and_centres(result: PoseResult, person: np.ndarray, sinks: list[ScreenSink]) -> None:
    sink, surface = draw_once(sinks, DisplayConfig(enabled=True, fullscreen=True), result)
    screen = (surface.shape[1], surface.shape[0])
    assert screen == (1024, 768)  # the dummy driver's desktop
    height, width = person.shape[:2]
    scale, ox, oy, w, h = fit((width, height), screen)
    assert sink.placement == (scale, ox, oy, w, h) and h == 768 and ox > 0
    check_skeleton(surface, result, scale, ox, oy)
    assert (surface[:, : ox - 1] == 0).all(), "letterbox bars are black"
    _, radius = sizes(width, height)
    assert radius >= 3


def test_skipped_keypoints_are_not_drawn(result: PoseResult, sinks: list[ScreenSink]) -> None:
    keypoints = result.keypoints.copy()
    keypoints[9, 2] = 0.05  # left wrist: below the threshold
    low = PoseResult(1, result.ts, result.width, result.height, keypoints, {}, result.image)
    _, surface = draw_once(sinks, DisplayConfig(enabled=True), low)
    x, y, _ = keypoints[9]
    assert not near(surface, x, y, rgb(score_color(0.05)), 2)
    assert np.abs(surface[round(y), round(x)].astype(int) - result.image[round(y), round(x), ::-1]).max() <= 2


def test_publish_never_waits_for_drawing(result: PoseResult, sinks: list[ScreenSink]) -> None:
    sink = ScreenSink(DisplayConfig(enabled=True), MIN_SCORE)
    sinks.append(sink)
    sink.start()
    for _ in range(2000):
        sink.publish(result)
    wait_drawn(sink)
    time.sleep(0.2)
    # Publishing replaced the pending result instead of waiting for each drawing: far fewer were drawn.
    assert sink.drawn < 2000, "only the newest result is drawn"


def test_esc_and_q_quit(result: PoseResult, sinks: list[ScreenSink]) -> None:
    for key in (pygame.K_ESCAPE, pygame.K_q):
        stop = threading.Event()
        sink = ScreenSink(DisplayConfig(enabled=True), MIN_SCORE, on_quit=stop.set)
        sinks.append(sink)
        sink.start()
        sink.publish(result)
        wait_drawn(sink)
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))
        assert stop.wait(5), f"key {key} did not quit"
        sink.close()


@pytest.mark.slow
def test_cli_display_under_the_dummy_driver(models_dir: Path, person: np.ndarray, tmp_path: Path) -> None:
    image = tmp_path / "woman.png"
    cv2.imwrite(str(image), person)
    env = {"SDL_VIDEODRIVER": "dummy"}
    proc = run_cli("run", "--source", str(image), "--display", *model_args(models_dir), env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "", "the display is the only sink: no JSON, and no pygame banner on stdout"
    assert "display: dummy driver" in proc.stderr

    proc = run_cli("run", "--source", str(image), "--display", *model_args(models_dir),
                   env={"SDL_VIDEODRIVER": "no-such-driver"})  # fmt: skip
    assert_one_line_error(proc, 1, "cannot open the display")


def test_quit_hook_sets_the_runs_stop_event() -> None:
    """The display's on_quit (from its own thread) stops a foreground run through the SIGINT handler."""
    code = (
        "import threading, time\n"
        "from edgepose.commands import run\n"
        "stop = threading.Event()\n"
        "run.install_signal_handlers(stop)\n"
        "threading.Thread(target=run._quit_foreground_run).start()\n"
        "deadline = time.monotonic() + 5\n"
        "while not stop.is_set() and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print('stopped' if stop.is_set() else 'running')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "stopped", proc.stderr
