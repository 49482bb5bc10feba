"""Skeleton drawing and privacy modes, shared by the preview and the screen."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.config import ZoneConfig
from edgepose.pose import Pose, PoseResult
from edgepose.sinks.drawing import (
    CANVAS_COLOR,
    EDGE_COLOR,
    FALLEN_COLOR,
    LABEL_BACKGROUND,
    LABEL_COLOR,
    PERSON_COLORS,
    SAFE_ZONE_COLOR,
    ZONE_COLOR,
    render,
    score_color,
)


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


def _tracked(x0: float, y0: float, x1: float, y1: float, person: int) -> Pose:
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[:, 0] = np.linspace(x0, x1, 17)
    keypoints[:, 1] = np.linspace(y0, y1, 17)
    keypoints[:, 2] = 0.9
    return Pose(keypoints, 0.9, (x0, y0, x1, y1), id=person)


def test_zones_ids_postures_and_a_fallen_person() -> None:
    door = ZoneConfig("door", ((0.05, 0.05), (0.45, 0.05), (0.45, 0.45), (0.05, 0.45)))
    bed = ZoneConfig("bed", ((0.55, 0.05), (0.95, 0.05), (0.95, 0.3), (0.55, 0.3)), falls=False)
    standing, lying = _tracked(200, 110, 260, 200, 1), _tracked(40, 190, 150, 215, 2)
    people = [{"id": 1, "present": True, "posture": "standing", "fallen": False, "zones": []},
              {"id": 2, "present": True, "posture": "lying", "fallen": True, "zones": ["door"]}]  # fmt: skip

    def drawn(who: list[dict[str, object]], zones: tuple[ZoneConfig, ...] = (door, bed)) -> np.ndarray:
        state = {"present": True, "fallen": True, "people": who, "zones": {}}
        return render(PoseResult(0, 0.0, 320, 240, standing.keypoints, {}, None, (standing, lying), state=state),
                      "skeleton", 0.2, zones, labels=True)  # fmt: skip

    out = drawn(people)
    # the zones: outlines (amber; green where lying is no alarm) with their names inside, under the people
    assert tuple(out[round(0.05 * 239), 80]) == ZONE_COLOR and tuple(out[round(0.45 * 239), 80]) == ZONE_COLOR
    assert (
        tuple(out[round(0.05 * 239), 240]) == SAFE_ZONE_COLOR and tuple(out[40, round(0.95 * 319)]) == SAFE_ZONE_COLOR
    )
    name = out[16:30, 18:60].reshape(-1, 3)
    assert (np.abs(name.astype(int) - ZONE_COLOR).sum(axis=1) < 60).sum() > 10, "the zone's name in its colour"
    assert (drawn(people, ())[16:30, 18:60] == CANVAS_COLOR).all(), "no zones, no outlines"
    # the fallen person: a red box around them, and a red label band
    pad = 3 + 2  # the joint radius and the line thickness at 320×240
    assert tuple(out[215 + pad, 95]) == FALLEN_COLOR and tuple(out[200, 150 + pad]) == FALLEN_COLOR
    # the person standing: a black band with white text above the box, no red box
    band = out[80:108, 200:300].reshape(-1, 3)
    assert (band == LABEL_BACKGROUND).all(axis=1).sum() > 50 and (band == LABEL_COLOR).all(axis=1).sum() > 10
    assert not (out[100:205, 190:270] == FALLEN_COLOR).all(axis=2).any()
    # the label says the posture: another posture, other pixels; no analytics (no state), no labels at all
    sitting = [dict(people[0], posture="sitting"), people[1]]
    assert (drawn(sitting)[80:108, 200:300] != out[80:108, 200:300]).any()
    plain = render(PoseResult(0, 0.0, 320, 240, standing.keypoints, {}, None, (standing, lying)), "skeleton", 0.2)
    unlabelled = render(PoseResult(0, 0.0, 320, 240, standing.keypoints, {}, None, (standing, lying),
                                   state={"people": people}), "skeleton", 0.2)  # fmt: skip
    assert (unlabelled == plain).all(), "snapshots and the screen: the skeletons alone"
    assert (plain[80:104, 200:300] == CANVAS_COLOR).all() and not (plain == FALLEN_COLOR).all(axis=2).any()
