"""MoveNet's crop tracker on a clip built from the real still: follows the person, resets after loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clips import HEIGHT, WIDTH, default_script, expected, render, write_clip
from conftest import model_args, run_cli
from reference import WOMAN_TOLERANCE_PX, woman_truth

from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.families.movenet.model import full_frame_box
from edgepose.inference.families.movenet.tracker import MIN_CROP_KEYPOINT_SCORE, crop_region_for
from edgepose.inference.runtime.backend import BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.manifest import ModelFiles
from edgepose.pose import KEYPOINT_INDEX
from edgepose.sources.images import load_image


@pytest.fixture(scope="module")
def person(testdata: Path) -> np.ndarray:
    return load_image(testdata / "woman_standing.png")


def _first_frames_after_reset(script: list) -> set[int]:
    """Frames the tracker necessarily sees whole: the first, and the first after an empty stretch."""
    return {i for i, p in enumerate(script) if p is not None and (i == 0 or script[i - 1] is None)}


def test_tracker_follows_zooms_and_resets(lightning_path: Path, testdata: Path, person: np.ndarray) -> None:
    request = BackendRequest(runtime="ai_edge_litert", delegate="xnnpack", threads=2)
    estimator = MoveNetEstimator(open_backend(ModelFiles("lightning", lightning_path, None), request))
    truth = woman_truth(testdata)
    script = default_script()
    whole = full_frame_box(WIDTH, HEIGHT)
    boxes, errors = [], {}
    for index, placement in enumerate(script):
        boxes.append(estimator.tracker.region(WIDTH, HEIGHT))
        estimate = estimator.track(render(person, placement))
        if placement is not None:
            errors[index] = float(np.abs(estimate.keypoints[:, :2] - expected(truth, placement)).max())
    tracked = {i: e for i, e in errors.items() if i not in _first_frames_after_reset(script)}
    print(f"tracked frames: worst L∞ {max(tracked.values()):.1f} px, median {np.median(list(tracked.values())):.1f}")
    assert max(tracked.values()) <= WOMAN_TOLERANCE_PX

    # The crop shrinks onto the small person right after the first frame …
    assert boxes[0] == whole and boxes[1].width < 0.7 * whole.width
    # … its centre moves right while she walks right (frames 1-15) and left after she reappears.
    centres = [b.x + b.width / 2 for b in boxes]
    assert centres[15] - centres[2] > 100
    assert centres[49] - centres[38] < -30
    # … it grows while she comes closer (frames 16-27).
    assert boxes[27].width > boxes[17].width + 30
    # Lost in the empty frames: back to the full frame; found again after she reappears.
    first_empty = script.index(None)
    assert all(boxes[i] == whole for i in range(first_empty + 2, first_empty + 8))
    assert estimator.tracker.resets >= 1
    assert boxes[-1].width < 0.7 * whole.width


def test_body_range_uses_each_joints_own_score() -> None:
    """A far-away joint with a low score must not widen the crop (the stale-loop-variable bug)."""
    keypoints = np.zeros((17, 3), dtype=np.float32)
    keypoints[:, 2] = 0.9
    keypoints[:, 0] = 300.0
    keypoints[:, 1] = 200.0
    for name, (x, y) in {
        "left_shoulder": (320, 150), "right_shoulder": (280, 150), "left_hip": (315, 250), "right_hip": (285, 250),
    }.items():  # fmt: skip
        keypoints[KEYPOINT_INDEX[name], :2] = (x, y)
    keypoints[KEYPOINT_INDEX["right_ankle"]] = (620.0, 470.0, MIN_CROP_KEYPOINT_SCORE / 2)  # junk, low score
    box = crop_region_for(keypoints, 640, 480)
    # Torso y-range 100 px × 1.9 = 190 half-width; the junk ankle (320 px away) must be ignored.
    assert box.width == pytest.approx(2 * 190.0)
    keypoints[KEYPOINT_INDEX["right_ankle"], 2] = 0.9
    assert crop_region_for(keypoints, 640, 480).width > box.width


def test_no_torso_means_full_frame() -> None:
    keypoints = np.zeros((17, 3), dtype=np.float32)
    keypoints[:, 2] = 0.05
    assert crop_region_for(keypoints, 640, 480) == full_frame_box(640, 480)


@pytest.mark.slow
def test_run_on_a_clip_tracks_frame_by_frame(models_dir: Path, testdata: Path, person: np.ndarray,
                                             tmp_path: Path) -> None:  # fmt: skip
    script = default_script()
    clip = write_clip(tmp_path / "clip.avi", person, script)
    out = tmp_path / "poses.jsonl"
    proc = run_cli("run", "--source", str(clip), "--output", str(out), *model_args(models_dir))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(len(script))), "a file source must not drop frames"
    truth = woman_truth(testdata)
    skip = _first_frames_after_reset(script)
    for record, placement in zip(records, script, strict=True):
        assert (record["width"], record["height"]) == (WIDTH, HEIGHT)
        assert set(record["latency_ms"]) == {"capture", "preprocess", "invoke", "postprocess", "total"}
        if placement is None:
            assert record["score"] < 0.25, record["frame"]
            continue
        if record["frame"] in skip:
            continue
        got = np.array([[k["x"], k["y"]] for k in record["keypoints"]])
        error = np.abs(got - expected(truth, placement)).max()
        assert error <= WOMAN_TOLERANCE_PX, (record["frame"], error)
