"""Accuracy of the real Lightning INT8 model on real photos, against the references' own tolerances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import model_args, run_cli
from reference import (
    CORAL_TOLERANCE,
    WOMAN_TOLERANCE_PX,
    coral_reference,
    coral_worst_error,
    linf_px,
    woman_truth,
)

from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.families.movenet.model import full_frame_box, preprocess_into
from edgepose.inference.runtime.backend import BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.manifest import ModelFiles
from edgepose.pose import KEYPOINT_NAMES
from edgepose.sources.images import load_image


@pytest.fixture(scope="module")
def estimator(lightning_path: Path) -> MoveNetEstimator:
    request = BackendRequest(runtime="ai_edge_litert", delegate="xnnpack", threads=2)
    return MoveNetEstimator(open_backend(ModelFiles("lightning", lightning_path, None), request))


def test_squat_matches_coral_reference(estimator: MoveNetEstimator, testdata: Path) -> None:
    image = load_image(testdata / "squat.bmp")
    keypoints = estimator.still(image).keypoints
    worst = coral_worst_error(keypoints, image.shape[1], image.shape[0], coral_reference(testdata))
    print(f"squat.bmp: worst |d| = {worst:.4f} (Coral's tolerance {CORAL_TOLERANCE})")
    assert worst <= CORAL_TOLERANCE


def test_woman_standing_within_21px(estimator: MoveNetEstimator, testdata: Path) -> None:
    image = load_image(testdata / "woman_standing.png")
    keypoints = estimator.still(image).keypoints
    error = linf_px(keypoints, woman_truth(testdata))
    print(f"woman_standing.png: L∞ = {error:.1f} px (bound {WOMAN_TOLERANCE_PX})")
    assert error <= WOMAN_TOLERANCE_PX
    assert keypoints[:, 2].min() > 0.3


def test_rgba_png_alpha_is_dropped(testdata: Path) -> None:
    image = load_image(testdata / "woman_standing.png")
    assert image.shape == (640, 384, 3) and image.dtype == np.uint8


def test_model_input_is_rgb() -> None:
    """A pure-blue BGR frame must arrive in the tensor as (0, 0, 255): would fail if BGR were fed."""
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    frame[:] = (255, 0, 0)  # blue, in OpenCV's BGR order
    dst = np.zeros((32, 32, 3), dtype=np.uint8)
    preprocess_into(frame, full_frame_box(64, 48), dst)
    inside = dst[16, 16]
    assert inside.tolist() == [0, 0, 255]
    assert dst[0, 16].tolist() == [0, 0, 0], "the letterbox pad above the frame is black"


def test_bgr_fed_frames_fail_the_reference(estimator: MoveNetEstimator, testdata: Path) -> None:
    """The squat check is sensitive to channel order: the same photo with channels swapped fails it."""
    image = load_image(testdata / "squat.bmp")
    swapped = np.ascontiguousarray(image[:, :, ::-1])
    keypoints = estimator.still(swapped).keypoints
    worst = coral_worst_error(keypoints, image.shape[1], image.shape[0], coral_reference(testdata))
    print(f"squat.bmp fed as BGR: worst |d| = {worst:.4f}")
    assert worst > CORAL_TOLERANCE


def test_infer_cli_prints_the_documented_schema(models_dir: Path, testdata: Path) -> None:
    images = [testdata / "squat.bmp", testdata / "woman_standing.png"]
    proc = run_cli("infer", *model_args(models_dir), *map(str, images))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["image"] == str(images[0])
    assert (first["width"], first["height"]) == (500, 610)
    assert (second["width"], second["height"]) == (384, 640)
    for record in (first, second):
        assert set(record) == {"image", "width", "height", "score", "keypoints", "poses", "backend"}
        assert [k["name"] for k in record["keypoints"]] == list(KEYPOINT_NAMES)
        assert all(set(k) == {"name", "x", "y", "score"} for k in record["keypoints"])
        assert 0.0 <= record["score"] <= 1.0
        assert record["backend"] == {
            "runtime": "ai_edge_litert",
            "delegate": "xnnpack",
            "threads": record["backend"]["threads"],
            "model": "movenet_single_pose_lightning_ptq.tflite",
        }
    keypoints = np.array([[k["x"], k["y"], k["score"]] for k in second["keypoints"]])
    assert linf_px(keypoints, woman_truth(testdata)) <= WOMAN_TOLERANCE_PX
