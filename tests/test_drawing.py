"""Skeleton drawing and privacy modes, shared by the preview and the screen."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.pose import Pose, PoseResult
from edgepose.sinks.drawing import CANVAS_COLOR, EDGE_COLOR, PERSON_COLORS, render, score_color


def photo() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)


def result(image: np.ndarray | None, scores: list[float] | None = None) -> PoseResult:
    keypoints = np.zeros((17, 3))
    keypoints[:, 0] = np.linspace(40, 280, 17)
    keypoints[:, 1] = 120
    keypoints[:, 2] = scores or [0.9] * 17
    return PoseResult(0, 0.0, 320, 240, keypoints, {}, image)


def test_score_colours_run_red_yellow_green() -> None:
    assert score_color(0.0) == (0, 0, 255)
    assert score_color(0.5) == (0, 255, 255)
    assert score_color(1.0) == (0, 255, 0)
    assert score_color(2.0) == (0, 255, 0)


def test_joints_edges_and_threshold() -> None:
    scores = [0.9] * 17
    scores[3] = 0.1
    out = render(result(photo(), scores), "video", 0.2)
    kp = result(None, scores).keypoints
    for i in range(17):
        x, y = round(kp[i, 0]), round(kp[i, 1])
        if i == 3:
            assert tuple(out[y, x]) != score_color(0.9)
        else:
            assert tuple(out[y, x]) == score_color(0.9)
    # Edge 5-6 (shoulders) is drawn: its midpoint is cyan.
    mx, my = round((kp[5, 0] + kp[6, 0]) / 2), 120
    assert tuple(out[my, mx]) == EDGE_COLOR


def test_privacy_modes() -> None:
    image = photo()
    video = render(result(image), "video", 0.2)
    skeleton = render(result(image), "skeleton", 0.2)
    blur = render(result(image), "blur", 0.2)
    assert video.shape == skeleton.shape == blur.shape == (240, 320, 3)
    assert (video[10:30, 10:30] == image[10:30, 10:30]).all()
    assert (skeleton[10:30, 10:30] == CANVAS_COLOR).all(), "skeleton mode shows no picture"
    # Blur keeps the average colour but none of the detail.
    patch = blur[10:60, 10:60].astype(float)
    assert patch.std() < image[10:60, 10:60].astype(float).std() / 4
    assert abs(patch.mean() - image.astype(float).mean()) < 20
    assert image.sum() == photo().sum(), "the source frame is never drawn on"
    with pytest.raises(ValueError):
        render(result(image), "x-ray", 0.2)


def test_missing_image_gives_a_blank_canvas() -> None:
    out = render(result(None), "video", 0.2)
    assert out.shape == (240, 320, 3) and (out[5, 5] == CANVAS_COLOR).all()


def test_each_person_gets_their_own_edge_colour() -> None:
    first = result(None).keypoints.astype(np.float32)
    second = first.copy()
    second[:, 1] = 200
    poses = (Pose.from_keypoints(first, score=0.9), Pose.from_keypoints(second, score=0.6))
    out = render(PoseResult(0, 0.0, 320, 240, first, {}, None, poses), "skeleton", 0.2)
    mx = round((first[5, 0] + first[6, 0]) / 2)
    assert tuple(out[120, mx]) == PERSON_COLORS[0] == EDGE_COLOR, "the best pose keeps the usual colour"
    assert tuple(out[200, mx]) == PERSON_COLORS[1]
    assert len(set(PERSON_COLORS)) == len(PERSON_COLORS)
    nobody = render(PoseResult(0, 0.0, 320, 240, first * 0, {}, None, ()), "skeleton", 0.2)
    assert (nobody == CANVAS_COLOR).all(), "no pose, nothing drawn"
