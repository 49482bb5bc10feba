"""BlazePose on the real models and photos: MediaPipe's own reference, the truth file, channel order and input range."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from clips import HEIGHT, WIDTH
from reference import (
    BLAZEPOSE_TOLERANCE,
    WOMAN_TOLERANCE_PX,
    blazepose_reference,
    blazepose_worst_error,
    linf_px,
    woman_truth,
)

from edgepose.errors import ModelError
from edgepose.inference.factory import open_stages, stage_files
from edgepose.inference.families.blazepose.detector import check_detector
from edgepose.inference.families.blazepose.estimator import BlazePoseEstimator, BlazePoseOptions
from edgepose.inference.families.blazepose.family import BLAZEPOSE
from edgepose.inference.families.blazepose.landmarks import check_landmark_model
from edgepose.inference.runtime.backend import BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.manifest import ModelFiles
from edgepose.pose import KEYPOINT_NAMES, LANDMARK_NAMES, Pose, PoseResult
from edgepose.sinks.drawing import CANVAS_COLOR, EDGE_COLOR, render
from edgepose.sources.images import load_image

PHOTOS = ("woman_standing.png", "squat.bmp")
#: Our own bound on the landmarks' visibility against MediaPipe's (we reach about 0.006; the wrong input
#: conventions below miss it by 2× or more). The reference itself only bounds x and y.
VISIBILITY_TOLERANCE = 0.02


def open_estimator(
    models: Path, delegate: str = "xnnpack", options: BlazePoseOptions | None = None
) -> BlazePoseEstimator:
    request = BackendRequest(runtime="ai_edge_litert", delegate=delegate, threads=2)
    detector, landmarks = open_stages(BLAZEPOSE, stage_files(BLAZEPOSE, "blazepose", models), request, "blazepose")
    return BlazePoseEstimator(detector, landmarks, options)


@pytest.fixture(scope="module")
def estimator(blazepose_models: Path) -> BlazePoseEstimator:
    return open_estimator(blazepose_models)


@pytest.fixture(scope="module")
def photos(testdata: Path) -> dict[str, np.ndarray]:
    return {name: load_image(testdata / name) for name in PHOTOS}


def _errors(estimator: BlazePoseEstimator, photos: dict[str, np.ndarray], testdata: Path,
            swap_channels: bool = False) -> dict[str, tuple[float, float]]:  # fmt: skip
    """Worst x/y error and worst visibility error against MediaPipe's reference, per photo."""
    out = {}
    for name, image in photos.items():
        fed = np.ascontiguousarray(image[:, :, ::-1]) if swap_channels else image
        estimate = estimator.still(fed)
        assert len(estimate.poses) == 1, name
        landmarks = estimate.poses[0].landmarks
        assert landmarks is not None and landmarks.shape == (33, 5)
        reference = blazepose_reference(testdata, name)
        height, width = image.shape[:2]
        worst = blazepose_worst_error(landmarks, width, height, reference)
        out[name] = (worst, float(np.abs(landmarks[:, 3] - reference[:, 3]).max()))
    return out


@pytest.mark.parametrize("delegate", ["xnnpack", "cpu"])
def test_photos_match_mediapipe_reference(blazepose_models: Path, photos: dict[str, np.ndarray], testdata: Path,
                                          delegate: str) -> None:  # fmt: skip
    estimator = open_estimator(blazepose_models, delegate)
    assert estimator.backend.info.delegate == estimator.detector.info.delegate == delegate
    errors = _errors(estimator, photos, testdata)
    for name, (worst, visibility) in errors.items():
        print(f"{name} ({delegate}): worst |d| {worst:.4f} (tolerance {BLAZEPOSE_TOLERANCE}), "
              f"visibility {visibility:.4f}")  # fmt: skip
        assert worst <= BLAZEPOSE_TOLERANCE, name
        assert visibility <= VISIBILITY_TOLERANCE, name


def test_derived_keypoints_within_21px_of_truth(estimator: BlazePoseEstimator, photos: dict[str, np.ndarray],
                                                testdata: Path) -> None:  # fmt: skip
    pose = estimator.still(photos["woman_standing.png"]).poses[0]
    error = linf_px(pose.keypoints, woman_truth(testdata))
    print(f"woman_standing.png, 17 keypoints from the 33 landmarks: L∞ = {error:.1f} px (bound {WOMAN_TOLERANCE_PX})")
    assert error <= WOMAN_TOLERANCE_PX
    assert pose.landmarks is not None
    # The keypoints are the landmarks they come from, the score each one's visibility.
    for index, name in enumerate(KEYPOINT_NAMES):
        row = pose.landmarks[LANDMARK_NAMES.index(name)]
        assert pose.keypoints[index].tolist() == pytest.approx([row[0], row[1], row[3]])
    assert pose.score > 0.99, "the pose flag"
    x0, y0, x1, y1 = pose.box
    assert 0 <= x0 < x1 <= 384 and 0 <= y0 < y1 <= 640


def test_models_get_rgb_in_their_own_ranges(estimator: BlazePoseEstimator, photos: dict[str, np.ndarray]) -> None:
    """What the estimator writes into both inputs: RGB, [-1, 1] for the detector and [0, 1] for the landmarks.

    The person stands on a coloured background whose red and blue differ, so a BGR tensor or a wrong
    range cannot match; the detector's letterbox pad is black (-1), the landmark ROI repeats the edge.
    """
    bgr = (40, 120, 220)  # a warm orange, in OpenCV's order
    frame = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    frame[:] = bgr
    person = photos["woman_standing.png"]
    small = person[::2, ::2]
    frame[100 : 100 + small.shape[0], 200 : 200 + small.shape[1]] = small
    estimator.reset()
    assert estimator.track(frame).poses, "the person is found on the coloured background"
    detector_input = np.array(estimator.detector.input_tensor())
    landmark_input = np.array(estimator.backend.input_tensor())
    rgb = np.array(bgr[::-1], dtype=np.float32)
    assert detector_input[0, 0].tolist() == [-1.0, -1.0, -1.0], "letterbox pad above the 4:3 frame"
    assert detector_input[112, 0] == pytest.approx(rgb / 127.5 - 1.0, abs=1e-5), "the frame's left edge"
    assert landmark_input[0, 0] == pytest.approx(rgb / 255.0, abs=1e-5), "the ROI's corner (background)"
    assert detector_input.min() >= -1.0 and detector_input.max() <= 1.0
    assert landmark_input.min() >= 0.0 and landmark_input.max() <= 1.0


def test_wrong_channel_order_or_range_fails_the_reference(blazepose_models: Path, photos: dict[str, np.ndarray],
                                                          testdata: Path) -> None:  # fmt: skip
    """The reference checks see the input conventions: each deliberately wrong variant fails them."""
    right = open_estimator(blazepose_models)
    bgr = _errors(right, photos, testdata, swap_channels=True)
    print("fed BGR:", bgr)
    assert max(worst for worst, _ in bgr.values()) > BLAZEPOSE_TOLERANCE
    assert max(vis for _, vis in bgr.values()) > VISIBILITY_TOLERANCE
    variants = {
        "landmarks in [0, 255]": BlazePoseOptions(landmark_range=(0.0, 255.0)),
        "landmarks in [-1, 1]": BlazePoseOptions(landmark_range=(-1.0, 1.0)),
        "detector in [0, 1]": BlazePoseOptions(detector_range=(0.0, 1.0)),
    }
    for label, options in variants.items():
        right.options = options
        errors = _errors(right, photos, testdata)
        print(f"{label}:", errors)
        assert max(vis for _, vis in errors.values()) > VISIBILITY_TOLERANCE, label
    right.options = BlazePoseOptions(landmark_range=(0.0, 255.0))
    assert max(worst for worst, _ in _errors(right, photos, testdata).values()) > BLAZEPOSE_TOLERANCE


def test_empty_frame_has_no_pose(estimator: BlazePoseEstimator) -> None:
    frame = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
    runs = estimator.detector_runs
    estimate = estimator.still(frame)
    assert estimate.poses == ()
    assert estimate.keypoints.tolist() == np.zeros((17, 3)).tolist()
    assert estimator.detector_runs == runs + 1
    assert math.isfinite(estimate.invoke_ms) and estimate.invoke_ms > 0


def test_model_checks_reject_other_models(lightning_path: Path, blazepose_models: Path) -> None:
    request = BackendRequest(runtime="ai_edge_litert", delegate="xnnpack", threads=1)
    movenet = ModelFiles("lightning", lightning_path, None)
    with pytest.raises(ModelError, match="BlazePose's detector"):
        open_backend(movenet, request, check=check_detector)
    with pytest.raises(ModelError, match="BlazePose's landmark model"):
        open_backend(movenet, request, check=check_landmark_model)
    detector, _ = stage_files(BLAZEPOSE, "blazepose", blazepose_models)
    with pytest.raises(ModelError, match="BlazePose's landmark model"):
        open_backend(detector, request, check=check_landmark_model)


def test_edgetpu_is_refused_for_float_models(blazepose_models: Path) -> None:
    files = stage_files(BLAZEPOSE, "blazepose", blazepose_models)
    request = BackendRequest(runtime="ai_edge_litert", delegate="edgetpu")
    with pytest.raises(ModelError, match="float32 and cannot run on the Coral EdgeTPU"):
        open_stages(BLAZEPOSE, files, request, "blazepose")


def test_preview_draws_the_33_point_skeleton(estimator: BlazePoseEstimator, photos: dict[str, np.ndarray]) -> None:
    image = photos["woman_standing.png"]
    height, width = image.shape[:2]
    pose = estimator.still(image).poses[0]
    assert pose.landmarks is not None
    with_landmarks = PoseResult(0, 0.0, width, height, pose.keypoints, image=image, poses=(pose,))
    coco_only = PoseResult(
        0, 0.0, width, height, pose.keypoints, image=image, poses=(Pose.from_keypoints(pose.keypoints),)
    )
    drawn = render(with_landmarks, "skeleton", 0.2)
    plain = render(coco_only, "skeleton", 0.2)
    # Toes, heels and fingers exist only among the 33 landmarks: drawn there, not in the 17-point skeleton.
    for name in ("left_foot_index", "right_foot_index", "left_pinky", "right_index"):
        x, y = (round(float(v)) for v in pose.landmarks[LANDMARK_NAMES.index(name), :2])
        assert drawn[y, x].tolist() != list(CANVAS_COLOR), name
        assert plain[y, x].tolist() == list(CANVAS_COLOR), name
    heel, toe = (pose.landmarks[LANDMARK_NAMES.index(n), :2] for n in ("left_heel", "left_foot_index"))
    mx, my = (round(float(v)) for v in (heel + toe) / 2)
    assert drawn[my, mx].tolist() == list(EDGE_COLOR), "the heel-toe edge"
    assert (drawn != plain).any(axis=2).sum() > (plain != CANVAS_COLOR).any(axis=2).sum() * 0.2
