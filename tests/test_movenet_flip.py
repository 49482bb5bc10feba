"""Flip averaging: the mirror image's prediction maps back with left and right swapped, and it helps on the photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import model_args, run_cli
from evalset import write_eval_set
from reference import WOMAN_TOLERANCE_PX, woman_truth

from edgepose.config import build_config
from edgepose.errors import ConfigError
from edgepose.eval import coco
from edgepose.eval.predict import evaluate, predict
from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.families.movenet.flip import FLIP_INDEX, mirror_input, unflip
from edgepose.inference.families.movenet.model import decode, full_frame_box
from edgepose.inference.runtime.backend import BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.manifest import ModelFiles
from edgepose.pose import KEYPOINT_INDEX, KEYPOINT_NAMES
from edgepose.sources.images import load_image


@pytest.fixture(scope="module")
def estimator(lightning_path: Path) -> MoveNetEstimator:
    request = BackendRequest(runtime="ai_edge_litert", delegate="xnnpack", threads=2)
    return MoveNetEstimator(open_backend(ModelFiles("lightning", lightning_path, None), request))


def mirror_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Keypoints of an image mapped onto its mirror image, written out name by name."""
    out = np.empty_like(keypoints)
    for i, name in enumerate(KEYPOINT_NAMES):
        other = name.replace("left", "@").replace("right", "left").replace("@", "right")
        out[KEYPOINT_INDEX[other]] = (width - keypoints[i, 0], keypoints[i, 1], keypoints[i, 2])
    return out


def test_flip_index_swaps_left_and_right() -> None:
    assert FLIP_INDEX[KEYPOINT_INDEX["nose"]] == KEYPOINT_INDEX["nose"]
    assert FLIP_INDEX[KEYPOINT_INDEX["left_wrist"]] == KEYPOINT_INDEX["right_wrist"]
    assert FLIP_INDEX[KEYPOINT_INDEX["right_ankle"]] == KEYPOINT_INDEX["left_ankle"]
    assert (FLIP_INDEX[FLIP_INDEX] == np.arange(17)).all()


def test_unflip_maps_a_mirrored_output_back(testdata: Path) -> None:
    """MoveNet's raw output for the mirror image of a pose, unflipped and decoded, is the pose in source pixels."""
    truth = np.column_stack([woman_truth(testdata), np.linspace(0.3, 0.9, 17)])
    box = full_frame_box(384, 640)
    mirrored = mirror_keypoints(truth, 384)
    raw = np.column_stack([(mirrored[:, 1] - box.y) / box.height, (mirrored[:, 0] - box.x) / box.width, mirrored[:, 2]])
    assert decode(unflip(raw), box) == pytest.approx(truth.astype(np.float32), abs=1e-3)


def test_mirror_input_flips_columns() -> None:
    tensor = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    expected = tensor[:, ::-1].copy()
    mirror_input(tensor)
    assert (tensor == expected).all()


def test_mirrored_image_prediction_maps_back(estimator: MoveNetEstimator, testdata: Path) -> None:
    """The model on the mirrored photo, mapped back: the same pixel positions, left still left."""
    image = load_image(testdata / "woman_standing.png")
    truth = woman_truth(testdata)
    direct = estimator.still(image, tta="none").keypoints
    on_mirror = estimator.still(np.ascontiguousarray(cv2.flip(image, 1)), tta="none").keypoints
    back = mirror_keypoints(on_mirror, image.shape[1])
    error = np.abs(back[:, :2] - truth).max()
    print(f"mirrored photo mapped back: L∞ {error:.1f} px from truth, {np.abs(back - direct)[:, :2].max():.1f} px "
          "from the direct prediction")  # fmt: skip
    assert error <= WOMAN_TOLERANCE_PX
    for side, other in (("left", "right"), ("right", "left")):
        for joint in ("wrist", "ankle", "shoulder"):
            got = back[KEYPOINT_INDEX[f"{side}_{joint}"], :2]
            same = np.hypot(*(got - truth[KEYPOINT_INDEX[f"{side}_{joint}"]]))
            swapped = np.hypot(*(got - truth[KEYPOINT_INDEX[f"{other}_{joint}"]]))
            assert same < swapped / 3, (side, joint, same, swapped)


def test_flip_is_the_average_of_the_two_passes(estimator: MoveNetEstimator, testdata: Path) -> None:
    """still(tta="flip") = the shifted passes combined with their mirror images' passes mapped back (same crops)."""
    image = load_image(testdata / "woman_standing.png")
    single = estimator.still(image, tta="none").keypoints
    flipped = estimator.still(image, tta="flip").keypoints
    assert np.abs(flipped[:, :2] - single[:, :2]).max() > 0.5, "the mirror pass changes the result"
    on_mirror = mirror_keypoints(estimator.still(np.ascontiguousarray(cv2.flip(image, 1)), tta="none").keypoints, 384)
    # Not equal: the mirrored photo gets its own crop, but each flipped keypoint lies between the unmirrored
    # passes' combination and the mirrored photo's (within a few pixels of slack for that crop difference).
    low = np.minimum(single[:, :2], on_mirror[:, :2]) - 4
    high = np.maximum(single[:, :2], on_mirror[:, :2]) + 4
    assert ((flipped[:, :2] >= low) & (flipped[:, :2] <= high)).all()


@pytest.mark.slow
def test_flip_not_worse_than_a_single_pass(estimator: MoveNetEstimator, testdata: Path, tmp_path: Path) -> None:
    """On the shared photos and their views (tests/evalset.py), flip averaging lowers the error."""
    folder = tmp_path / "set"
    dataset = coco.load(write_eval_set(testdata, folder))
    figures = {}
    for tta in ("none", "flip"):
        predictions = predict(dataset, folder, lambda crop, tta=tta: estimator.still(crop, tta=tta).keypoints)
        figures[tta] = evaluate(dataset, predictions)
    for tta, ev in figures.items():
        s = ev.summary
        print(f"tta {tta}: {s.persons} persons, AP {ev.ap['ap']:.3f}, mean OKS {s.mean_oks:.4f}, PCK {s.pck:.3f}, "
              f"mean error {s.mean_error_px:.2f} px, worst {s.worst_keypoints[0].error_px:.1f} px")  # fmt: skip
    none, flip = figures["none"].summary, figures["flip"].summary
    assert flip.mean_error_px <= none.mean_error_px
    assert flip.mean_oks >= none.mean_oks
    for name in ("woman_standing.png", "squat.png"):
        one = {t: next(p for p in ev.persons if p.name.startswith(name)) for t, ev in figures.items()}
        print(f"{name}: mean error {np.nanmean(one['none'].errors):.2f} px → {np.nanmean(one['flip'].errors):.2f} px")
        assert np.nanmean(one["flip"].errors) <= np.nanmean(one["none"].errors)


def test_tta_config_key_is_validated() -> None:
    assert build_config(environ={"EDGEPOSE_MODEL_TTA": "none"}).model.tta == "none"
    assert build_config(environ={}).model.tta == "flip"
    with pytest.raises(ConfigError, match="tta must be one of none, flip"):
        build_config(environ={"EDGEPOSE_MODEL_TTA": "mirror"})


def _keypoints(stdout: str) -> np.ndarray:
    record = json.loads(stdout.splitlines()[0])
    return np.array([[k["x"], k["y"], k["score"]] for k in record["keypoints"]])


@pytest.mark.slow
def test_infer_and_image_sources_flip_by_default(models_dir: Path, testdata: Path, tmp_path: Path) -> None:
    """infer and run on an image flip by default; --tta none and EDGEPOSE_MODEL_TTA=none give the single pass."""
    photo = str(testdata / "woman_standing.png")
    default = run_cli("infer", *model_args(models_dir), photo)
    single = run_cli("infer", *model_args(models_dir), "--tta", "none", photo)
    by_env = run_cli("infer", *model_args(models_dir), photo, env={"EDGEPOSE_MODEL_TTA": "none"})
    for proc in (default, single, by_env):
        assert proc.returncode == 0, proc.stderr
    assert np.abs(_keypoints(default.stdout) - _keypoints(single.stdout))[:, :2].max() > 0.5
    assert (_keypoints(by_env.stdout) == _keypoints(single.stdout)).all()
    run = run_cli("run", *model_args(models_dir), "--source", photo, "--output", str(tmp_path / "out.jsonl"))
    assert run.returncode == 0, run.stderr
    assert _keypoints((tmp_path / "out.jsonl").read_text()) == pytest.approx(_keypoints(default.stdout), abs=0.01)
