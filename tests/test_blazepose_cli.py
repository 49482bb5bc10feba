"""BlazePose through the CLI: fetch and verify from the mirror, infer with landmarks, clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from clips import default_script, write_clip
from conftest import MIRROR, assert_one_line_error, cli_env, model_args, run_cli
from reference import (
    BLAZEPOSE_TOLERANCE,
    WOMAN_TOLERANCE_PX,
    blazepose_reference,
    blazepose_worst_error,
    linf_px,
    woman_truth,
)

from edgepose.manifest import load_manifest
from edgepose.pose import KEYPOINT_NAMES, LANDMARK_NAMES
from edgepose.sources.images import load_image

FILES = ("pose_detection.tflite", "pose_landmark_full.tflite")


@pytest.mark.slow
def test_fetch_verify_and_list_from_the_mirror(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    proc = run_cli("models", "fetch", "blazepose", "--from", str(MIRROR), "--models-dir", str(folder))
    assert proc.returncode == 0, proc.stderr
    for name in FILES:
        assert f"OK {name}: copied from {MIRROR}" in proc.stdout
        assert (folder / name).read_bytes() == (MIRROR / "blazepose" / name).read_bytes()
    verify = run_cli("models", "verify", "blazepose", "--models-dir", str(folder))
    assert verify.returncode == 0 and verify.stdout.split("\n")[:2] == [f"OK {name}" for name in FILES]
    listing = run_cli("models", "list", "--models-dir", str(folder))
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert ["blazepose", "detector", "224px", FILES[0], "verified"] in rows
    assert ["blazepose", "landmark", "256px", FILES[1], "verified"] in rows
    with (folder / FILES[1]).open("r+b") as fh:
        fh.seek(5000)
        fh.write(b"\x00\x01\x02\x03")
    bad = run_cli("models", "verify", "--models-dir", str(folder))
    assert bad.returncode == 1 and f"FAIL {FILES[1]}: sha256" in bad.stdout


def test_manifest_checksums_are_those_of_the_mirror() -> None:
    specs = [s for s in load_manifest() if s.name == "blazepose"]
    assert {s.variant: s.file for s in specs} == {"detector": FILES[0], "landmark": FILES[1]}
    for spec in specs:
        assert spec.family == "blazepose" and spec.source == f"blazepose/{spec.file}"
        path = MIRROR / spec.source
        assert path.stat().st_size == spec.bytes
        readme = (MIRROR / "blazepose" / "README.md").read_text()
        assert spec.sha256 in readme and spec.git_blob in readme


def test_mirror_without_blazepose_fails_clearly(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copyfile(MIRROR / "blazepose" / FILES[0], mirror / FILES[0])  # a flat mirror is accepted too
    proc = run_cli("models", "fetch", "blazepose", "--from", str(mirror), "--models-dir", str(tmp_path / "m"))
    assert proc.returncode == 1
    assert f"OK {FILES[0]}: copied from {mirror}" in proc.stdout
    assert f"{FILES[1]} is not in the mirror" in proc.stderr
    assert not (tmp_path / "m" / FILES[1]).exists()


def test_infer_prints_landmarks_and_derived_keypoints(blazepose_models: Path, testdata: Path) -> None:
    images = [testdata / "woman_standing.png", testdata / "squat.bmp"]
    proc = run_cli("infer", "--model", "blazepose", *model_args(blazepose_models), *map(str, images))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["image"] for r in records] == list(map(str, images))
    for record, path in zip(records, images, strict=True):
        assert set(record) == {"image", "width", "height", "score", "keypoints", "poses", "landmarks", "backend"}
        assert len(record["poses"]) == 1 and record["poses"][0]["keypoints"] == record["keypoints"]
        assert [k["name"] for k in record["keypoints"]] == list(KEYPOINT_NAMES)
        assert [m["name"] for m in record["landmarks"]] == list(LANDMARK_NAMES)
        assert record["backend"]["model"] == "pose_landmark_full.tflite"
        assert record["backend"]["delegate"] == "xnnpack", "auto means XNNPACK for the float models"
        landmarks = np.array([[m["x"], m["y"], m["z"], m["visibility"]] for m in record["landmarks"]])
        reference = blazepose_reference(testdata, path.name)
        assert blazepose_worst_error(landmarks, record["width"], record["height"], reference) <= BLAZEPOSE_TOLERANCE
        # z in frame pixels: the reference's z is normalised to the image width.
        assert np.corrcoef(landmarks[:, 2] / record["width"], reference[:, 2])[0, 1] > 0.9
    keypoints = np.array([[k["x"], k["y"], k["score"]] for k in records[0]["keypoints"]])
    assert linf_px(keypoints, woman_truth(testdata)) <= WOMAN_TOLERANCE_PX


def test_edgetpu_delegate_is_a_clear_error(blazepose_models: Path, testdata: Path) -> None:
    image = str(testdata / "squat.bmp")
    proc = run_cli("infer", "--model", "blazepose", "--delegate", "edgetpu", *model_args(blazepose_models), image)
    assert_one_line_error(proc, 2, "float32 and cannot run on the Coral EdgeTPU")


def test_missing_models_say_how_to_fetch_them(tmp_path: Path, testdata: Path) -> None:
    proc = run_cli("infer", "--model", "blazepose", *model_args(tmp_path), str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 2, "edgepose models fetch blazepose")


@pytest.mark.slow
def test_bench_runs_blazepose_on_a_clip(blazepose_models: Path, testdata: Path, tmp_path: Path) -> None:
    person = load_image(testdata / "woman_standing.png")
    clip = write_clip(tmp_path / "clip.avi", person, default_script()[:30])
    proc = run_cli("bench", "--model", "blazepose", "--json", "--frames", "20", "--source", str(clip),
                   *model_args(blazepose_models))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["model"], report["input_size"], report["delegate"]) == ("pose_landmark_full.tflite", 256, "xnnpack")
    sizes = sum((MIRROR / "blazepose" / name).stat().st_size for name in FILES)
    assert report["model_mb"] == round(sizes / 1e6, 2), "both stages count"
    assert report["pipeline"]["fps"] > 0 and report["bare"]["fps"] > 0
    assert report["frame_size"] == [640, 480]


@pytest.mark.slow
def test_doctor_checks_both_stages(blazepose_models: Path, tmp_path: Path) -> None:
    good = run_cli("doctor", "--model", "blazepose", *model_args(blazepose_models))
    for name in FILES:
        assert f"OK model: {blazepose_models / name} verified" in good.stdout, good.stdout
    missing = run_cli("doctor", "--model", "blazepose", *model_args(tmp_path))
    assert missing.returncode == 1
    for name in FILES:
        assert f"FAIL model: {tmp_path / name}: missing" in missing.stdout
    assert f"edgepose models fetch blazepose --models-dir {tmp_path}" in missing.stdout


#: Runs the CLI with every Backend's opening and closing recorded, then prints what was never closed.
BACKEND_SPY = """
import sys
from edgepose.inference.runtime.backend import Backend
opened, closed = [], []
init, close = Backend.__init__, Backend.close
def spy_init(self, interpreter, info):
    init(self, interpreter, info)
    opened.append(self)
def spy_close(self):
    closed.append(self)
    close(self)
Backend.__init__, Backend.close = spy_init, spy_close
from edgepose.cli import main
code = main(sys.argv[1:])
print("never closed:", sorted(b.info.model for b in opened if b not in closed), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.slow
def test_run_closes_both_stages(blazepose_models: Path, testdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-c", BACKEND_SPY, "run", "--model", "blazepose", "--source",
           str(testdata / "woman_standing.png"), "--output", str(out), *model_args(blazepose_models)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 1
    assert "never closed: []" in proc.stderr, proc.stderr  # the detector too, not only the landmark model
