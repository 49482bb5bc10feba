"""Thunder's code path (256 px input) without its weights, through a real MoveNet-shaped probe model.

The probe model outputs the RGB of the top-left pixels it was fed, so these tests check the input
size taken from the model, the BGR→RGB conversion and the decoding back to source pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli
from tflite_builder import probe_pose_model

from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.families.movenet.flip import OUTPUT_STRIDE
from edgepose.inference.runtime.backend import BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.manifest import resolve_model

THUNDER_FILE = "movenet_single_pose_thunder_ptq.tflite"
BGR = (255, 64, 128)  # R=128 → y, G=64 → x, B=255 → score
#: The largest shift of a still-image pass: a third of an output cell of the 256 px input, on a 300 px frame.
STILL_SHIFT_PX = 300 * OUTPUT_STRIDE / 256 / 3


@pytest.fixture
def thunder_dir(tmp_path: Path) -> Path:
    probe_pose_model(tmp_path / THUNDER_FILE, 256)
    return tmp_path


def test_thunder_resolves_and_runs_at_256(thunder_dir: Path) -> None:
    files = resolve_model("thunder", thunder_dir)
    backend = open_backend(files, BackendRequest(delegate="auto"))
    assert backend.input_size == 256
    assert backend.info.model == THUNDER_FILE
    frame = np.empty((300, 300, 3), dtype=np.uint8)
    frame[:] = BGR
    # One pass on the full frame (a video frame's first): the still path's passes are shifted by up to a
    # third of an output cell, and its flip averaging would mix the probe's x with its mirror image's (the
    # probe is no pose model).
    estimator = MoveNetEstimator(backend, tta="none")
    keypoints = estimator.track(frame).keypoints
    # y = R/255 of the crop, x = G/255, score = B/255: proves RGB order and the decode to source pixels.
    assert keypoints[0, 1] == pytest.approx(128 / 255 * 300, abs=0.5)
    assert keypoints[0, 0] == pytest.approx(64 / 255 * 300, abs=0.5)
    assert keypoints[0, 2] == pytest.approx(1.0)
    still = estimator.still(frame).keypoints
    assert np.abs(still[0, :2] - keypoints[0, :2]).max() <= STILL_SHIFT_PX


def test_infer_model_thunder_cli(thunder_dir: Path, tmp_path: Path) -> None:
    image = tmp_path / "flat.png"
    frame = np.empty((300, 300, 3), dtype=np.uint8)
    frame[:] = BGR
    cv2.imwrite(str(image), frame)
    # Under Thunder's manifest name the probe is refused: it is not the file whose checksum the manifest holds.
    named = run_cli("infer", "--model", "thunder", "--models-dir", str(thunder_dir), str(image))
    assert_one_line_error(named, 2, f"{thunder_dir / THUNDER_FILE} is damaged")
    assert f"edgepose models fetch thunder --models-dir {thunder_dir}" in named.stderr
    # As a path (the user's own file, not verified) it runs through the CLI at 256 px.
    proc = run_cli("-v", "infer", "--tta", "none", "--model", str(thunder_dir / THUNDER_FILE), str(image))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["backend"]["model"] == THUNDER_FILE
    nose = record["keypoints"][0]
    # The decoded colour (75.3, 150.6), give or take the still path's shifts of a third of a cell.
    slack = STILL_SHIFT_PX + 0.5
    assert (nose["x"], nose["y"]) == (pytest.approx(75.3, abs=slack), pytest.approx(150.6, abs=slack))
    assert "_edgetpu variant of movenet_single_pose_thunder_ptq" in proc.stderr, "auto names the missing twin"
