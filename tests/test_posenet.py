"""PoseNet multi-pose: the prepared models, Coral's reference poses, two people side by side, max_people."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import LIGHTNING, MIRROR, POSENET, POSENET_EDGETPU, assert_one_line_error, run_cli
from reference import CORAL_MIN_SCORE, CORAL_TOLERANCE, WOMAN_TOLERANCE_PX, coral_reference, woman_truth

from edgepose.errors import ModelError
from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.families.posenet.estimator import PoseNetEstimator
from edgepose.inference.families.posenet.model import output_order
from edgepose.inference.families.posenet.prepare import DECODER_INPUTS, DECODER_OP, strip_posenet_decoder
from edgepose.inference.runtime.backend import Backend, BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.inference.runtime.interpreters import make_interpreter
from edgepose.inference.runtime.runtimes import find_runtime
from edgepose.manifest import ModelFiles, load_manifest
from edgepose.pose import Pose
from edgepose.sources.pixels import to_bgr

POSENET_DIR = MIRROR / "posenet"
REFERENCE_CSV = "posenet_mobilenet_v1_075_481_641_16_quant_decoder_reference.csv"


def _schema():  # type: ignore[no-untyped-def]
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _parse(data: bytes):  # type: ignore[no-untyped-def]
    schema = _schema()
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))


def _custom_codes(model) -> list[str]:  # type: ignore[no-untyped-def]
    return [(c.customCode or b"").decode() for c in model.operatorCodes]


def _open(path: Path, delegate: str = "xnnpack") -> Backend:
    return open_backend(ModelFiles("posenet", path, None), BackendRequest(delegate=delegate, threads=2))


def _coral_poses() -> list[tuple[float, np.ndarray]]:
    """Coral's reference: (pose score, (17, 3) x, y normalised to the image, score) per person."""
    with (POSENET_DIR / REFERENCE_CSV).open() as fh:
        rows = list(csv.DictReader(fh))
    poses = []
    for pid in sorted({int(r["pose_id"]) for r in rows}):
        mine = [r for r in rows if int(r["pose_id"]) == pid]
        keypoints = np.array(
            [[float(r["keypoint_x"]), float(r["keypoint_y"]), float(r["keypoint_score"])] for r in mine]
        )
        poses.append((float(mine[0]["pose_score"]), keypoints))
    return poses


# --- preparation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["cpu", "edgetpu"])
def test_preparation_is_deterministic_and_matches_the_manifest(variant: str) -> None:
    spec = next(s for s in load_manifest() if s.name == "posenet" and s.variant == variant)
    source = (MIRROR / spec.source).read_bytes()
    assert hashlib.sha256(source).hexdigest() == spec.source_sha256
    first, second = strip_posenet_decoder(source), strip_posenet_decoder(source)
    assert first == second
    assert len(first) == spec.bytes and hashlib.sha256(first).hexdigest() == spec.sha256


def test_fetch_keeps_only_the_verified_prepared_files(posenet_dir: Path) -> None:
    assert sorted(p.name for p in posenet_dir.iterdir()) == sorted([POSENET, POSENET_EDGETPU])
    verify = run_cli("models", "verify", "posenet", "--models-dir", str(posenet_dir))
    assert verify.returncode == 0 and verify.stdout.count("OK ") == 2, verify.stdout


def test_a_tampered_prepared_file_fails_verify_and_is_prepared_again(tmp_path: Path, posenet_dir: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    data = bytearray((posenet_dir / POSENET).read_bytes())
    data[5000] ^= 0xFF
    (folder / POSENET).write_bytes(bytes(data))
    proc = run_cli("models", "verify", "posenet", "--models-dir", str(folder))
    assert proc.returncode == 1 and f"FAIL {POSENET}: sha256" in proc.stdout
    fixed = run_cli("models", "fetch", "posenet", "--from", str(MIRROR), "--models-dir", str(folder))
    assert fixed.returncode == 0, fixed.stderr
    assert f"OK {POSENET}: copied from" in fixed.stdout and "PosenetDecoderOp removed" in fixed.stdout
    assert (folder / POSENET).read_bytes() == (posenet_dir / POSENET).read_bytes()


def test_a_source_that_fails_its_checksum_is_not_prepared(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror" / "posenet"
    mirror.mkdir(parents=True)
    spec = next(s for s in load_manifest() if s.name == "posenet" and s.variant == "cpu")
    data = bytearray((MIRROR / spec.source).read_bytes())
    data[-100] ^= 0xFF
    (mirror / Path(spec.source).name).write_bytes(bytes(data))
    folder = tmp_path / "models"
    proc = run_cli("models", "fetch", "posenet", "--from", str(tmp_path / "mirror"), "--models-dir", str(folder))
    assert proc.returncode == 1
    assert f"{Path(spec.source).name} failed verification" in proc.stderr
    assert not (folder / POSENET).exists()


def test_prepare_refuses_a_model_without_the_decoder() -> None:
    with pytest.raises(ModelError, match=DECODER_OP):
        strip_posenet_decoder((MIRROR / LIGHTNING).read_bytes())
    with pytest.raises(ModelError, match="TFLite"):
        strip_posenet_decoder(b"not a model at all")


def test_prepared_cpu_model_runs_and_outputs_the_three_decoder_inputs(posenet_dir: Path) -> None:
    original = _parse((POSENET_DIR / "posenet_mobilenet_v1_075_481_641_16_quant_decoder.tflite").read_bytes())
    prepared = _parse((posenet_dir / POSENET).read_bytes())
    assert DECODER_OP in _custom_codes(original) and DECODER_OP not in _custom_codes(prepared)
    assert len(prepared.subgraphs[0].operators) == len(original.subgraphs[0].operators) - 1
    backend = _open(posenet_dir / POSENET)
    assert backend.input_shape(0) == (1, 481, 641, 3)
    assert tuple(out["name"] for out in backend.outputs) == DECODER_INPUTS
    shapes = [tuple(int(d) for d in out["shape"]) for out in backend.outputs]
    assert shapes == [(1, 31, 41, 17), (1, 31, 41, 34), (1, 31, 41, 64)]
    for out in backend.outputs:
        assert np.dtype(out["dtype"]) == np.uint8 and out["quantization"][0] > 0
    backend.invoke()  # runs without Coral's library


def test_prepared_edgetpu_file_keeps_its_edgetpu_op_and_fails_only_for_want_of_the_edgetpu(
    posenet_dir: Path, lightning_path: Path
) -> None:
    source = _parse((POSENET_DIR / "posenet_mobilenet_v1_075_481_641_16_quant_decoder_edgetpu.tflite").read_bytes())
    prepared = _parse((posenet_dir / POSENET_EDGETPU).read_bytes())
    assert _custom_codes(prepared) == ["edgetpu-custom-op"]
    (op,) = prepared.subgraphs[0].operators
    assert bytes(op.customOptions) == bytes(source.subgraphs[0].operators[0].customOptions), "EdgeTPU op untouched"
    graph = prepared.subgraphs[0]
    assert [graph.tensors[i].name.decode() for i in graph.outputs] == list(DECODER_INPUTS)
    assert list(op.outputs) == list(graph.outputs)
    runtime = find_runtime("ai_edge_litert")
    messages = []
    for path in (
        posenet_dir / POSENET_EDGETPU,
        lightning_path.with_name("movenet_single_pose_lightning_ptq_edgetpu.tflite"),
    ):
        with pytest.raises(ModelError) as info:
            make_interpreter(runtime, path, "cpu", 1)
        messages.append(str(info.value).replace(path.name, "MODEL"))
    assert messages[0] == messages[1] and "compiled for the Coral EdgeTPU" in messages[0]
    proc = run_cli("infer", "--model", str(posenet_dir / POSENET_EDGETPU), "--delegate", "cpu",
                   str(POSENET_DIR / "test_image.bmp"))  # fmt: skip
    assert_one_line_error(proc, 2, "compiled for the Coral EdgeTPU")


# --- accuracy -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("delegate", ["xnnpack", "cpu"])
def test_test_image_reproduces_corals_reference_poses(posenet_dir: Path, delegate: str) -> None:
    """Coral's two people, matched pose by pose.

    Tolerances come from the model's quantisation: the keypoint position is a cell plus a uint8 short-range
    offset (scale ≈ 0.80 input px per step), the score the sigmoid of a uint8 heatmap logit (≈ 0.088 per
    step, at most 0.25 × that in probability). A different resize or kernel flips map values by a step or
    two, so a keypoint may move by up to 4 offset steps (3.2 input px; Coral's own models_test allows 3 px)
    and a score by up to 3 heatmap steps (0.066). Only keypoints scoring > 0.5 in both are placed
    (Coral's rule): a barely-seen keypoint sits on a flat heatmap and can go anywhere.
    """
    backend = _open(posenet_dir / POSENET, delegate)
    estimator = PoseNetEstimator(backend)
    image = cv2.imread(str(POSENET_DIR / "test_image.bmp"))
    height, width = image.shape[:2]
    heat_index, short_index, _ = output_order(backend)
    heat_step = float(backend.outputs[heat_index]["quantization"][0])
    short_step = float(backend.outputs[short_index]["quantization"][0])
    position_tol_px = 4 * short_step * width / 641
    score_tol = 3 * 0.25 * heat_step
    poses = estimator.still(image).poses
    reference = _coral_poses()
    assert len(poses) == len(reference) == 2
    for pose, (ref_score, ref) in zip(poses, reference, strict=True):
        assert abs(pose.score - ref_score) <= score_tol
        assert np.abs(pose.keypoints[:, 2] - ref[:, 2]).max() <= score_tol
        placed = (pose.keypoints[:, 2] > 0.5) & (ref[:, 2] > 0.5)
        assert placed.sum() >= 12
        dx = np.abs(pose.keypoints[placed, 0] - ref[placed, 0] * width)
        dy = np.abs(pose.keypoints[placed, 1] - ref[placed, 1] * height)
        assert max(dx.max(), dy.max()) <= position_tol_px, (dx.max(), dy.max())
    assert poses[0].score >= poses[1].score


def _single(estimator: PoseNetEstimator, image: np.ndarray) -> Pose:
    poses = estimator.still(image).poses
    assert len(poses) == 1
    return poses[0]


def _worst(pose: Pose, ref: Pose, width: int, height: int, x_shift: int = 0) -> float:
    """Coral's check between two poses: worst normalised |dx|, |dy| over keypoints > 0.4 in both."""
    both = (pose.keypoints[:, 2] > CORAL_MIN_SCORE) & (ref.keypoints[:, 2] > CORAL_MIN_SCORE)
    assert both.sum() >= 8
    dx = np.abs(pose.keypoints[both, 0] - x_shift - ref.keypoints[both, 0]) / width
    dy = np.abs(pose.keypoints[both, 1] - ref.keypoints[both, 1]) / height
    return float(max(dx.max(), dy.max()))


@pytest.fixture(scope="module")
def people(testdata: Path) -> tuple[np.ndarray, np.ndarray]:
    woman = to_bgr(cv2.imread(str(testdata / "woman_standing.png"), cv2.IMREAD_UNCHANGED))
    squat = cv2.imread(str(testdata / "squat.bmp"))
    return woman, squat


def test_two_shared_people_side_by_side_give_two_poses_each_matching_its_single_result(
    posenet_dir: Path, people: tuple[np.ndarray, np.ndarray]
) -> None:
    """The composite holds both photos unscaled (the shorter padded black below); Coral's 0.04 check per person."""
    woman, squat = people
    estimator = PoseNetEstimator(_open(posenet_dir / POSENET))
    alone = [_single(estimator, woman), _single(estimator, squat)]
    height = max(woman.shape[0], squat.shape[0])
    padded = [cv2.copyMakeBorder(p, 0, height - p.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=0) for p in people]
    composite = np.concatenate(padded, axis=1)
    poses = estimator.still(composite).poses
    assert len(poses) == 2
    left, right = sorted(poses, key=lambda p: p.box[0])
    assert left.box[2] < woman.shape[1] <= right.box[0], "each pose stays on its own photo"
    assert _worst(left, alone[0], *woman.shape[1::-1]) <= CORAL_TOLERANCE
    assert _worst(right, alone[1], *squat.shape[1::-1], x_shift=woman.shape[1]) <= CORAL_TOLERANCE
    one = PoseNetEstimator(_open(posenet_dir / POSENET), max_people=1).still(composite).poses
    assert len(one) == 1


def test_max_people_one_returns_the_first_pose(posenet_dir: Path) -> None:
    image = cv2.imread(str(POSENET_DIR / "test_image.bmp"))
    backend = _open(posenet_dir / POSENET)
    both = PoseNetEstimator(backend).still(image).poses
    only = PoseNetEstimator(backend, max_people=1).still(image).poses
    assert len(both) == 2 and len(only) == 1
    np.testing.assert_allclose(only[0].keypoints, both[0].keypoints, atol=1e-4)
    assert only[0].score == pytest.approx(both[0].score)
    with pytest.raises(ValueError, match="max_people"):
        PoseNetEstimator(backend, max_people=0)


def test_accuracy_on_the_shared_single_person_photos(
    posenet_dir: Path, people: tuple[np.ndarray, np.ndarray], testdata: Path
) -> None:
    """One pose each; squat within Coral's 0.04 of its (MoveNet) reference; woman's confident keypoints within 21 px.

    PoseNet is not MoveNet: on woman_standing it misses the right ankle (score ≈ 0.15, 168 px off), so the
    21 px bound of the TensorFlow example is applied to the keypoints PoseNet is sure of (> 0.4).
    """
    woman, squat = people
    estimator = PoseNetEstimator(_open(posenet_dir / POSENET))
    pose = _single(estimator, squat)
    ref = coral_reference(testdata)
    assert _worst(pose, Pose.from_keypoints(np.c_[ref[:, 0] * squat.shape[1], ref[:, 1] * squat.shape[0], ref[:, 2]]),
                  squat.shape[1], squat.shape[0]) <= CORAL_TOLERANCE  # fmt: skip
    woman_pose = _single(estimator, woman)
    sure = woman_pose.keypoints[:, 2] > CORAL_MIN_SCORE
    assert sure.sum() >= 12  # 14 here: right ear and both ankles score below 0.4
    assert np.abs(woman_pose.keypoints[sure, :2] - woman_truth(testdata)[sure]).max() <= WOMAN_TOLERANCE_PX


def test_estimator_is_the_same_for_video_and_stills(posenet_dir: Path) -> None:
    image = cv2.imread(str(POSENET_DIR / "test_image.bmp"))
    estimator = PoseNetEstimator(_open(posenet_dir / POSENET))
    still = estimator.still(image)
    estimator.reset()
    tracked = estimator.track(image)
    assert len(still.poses) == len(tracked.poses) == 2
    np.testing.assert_array_equal(still.keypoints, tracked.keypoints)
    empty = estimator.still(np.zeros((480, 640, 3), dtype=np.uint8))
    assert empty.poses == () and not empty.keypoints.any()
    assert min(still.preprocess_ms, still.invoke_ms, still.postprocess_ms) > 0


def test_each_family_refuses_the_others_model(posenet_dir: Path, lightning_path: Path) -> None:
    with pytest.raises(ModelError, match="--model posenet"):
        PoseNetEstimator(_open(lightning_path))
    with pytest.raises(ModelError, match="--model lightning"):
        MoveNetEstimator(_open(posenet_dir / POSENET))
