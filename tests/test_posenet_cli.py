"""`--model posenet` through the CLI: the multi-person JSON of `infer` and `run`, `--max-people`, delegates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MIRROR, TFLITE_VENV_PYTHON, assert_one_line_error, cli_env, model_args, need_tflite_venv, run_cli

from edgepose.pose import KEYPOINT_NAMES

TEST_IMAGE = MIRROR / "posenet" / "test_image.bmp"


def _records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def assert_multi_person_schema(record: dict[str, Any]) -> None:
    """The documented ``poses`` list, best first; top-level ``score``/``keypoints`` are the best pose's.

    With the analytics (``run``: a ``state``), each pose carries its person's ``id`` (an int, or null).
    """
    poses = record["poses"]
    assert isinstance(poses, list)
    for pose in poses:
        assert set(pose) == (
            {"id", "score", "box", "keypoints"} if "state" in record else {"score", "box", "keypoints"}
        )
        assert pose.get("id") is None or isinstance(pose["id"], int)
        assert isinstance(pose["score"], float) and 0.0 <= pose["score"] <= 1.0
        x0, y0, x1, y1 = pose["box"]
        assert x0 <= x1 and y0 <= y1
        assert [k["name"] for k in pose["keypoints"]] == list(KEYPOINT_NAMES)
        assert all(set(k) == {"name", "x", "y", "score"} for k in pose["keypoints"])
        confident = [k for k in pose["keypoints"] if k["score"] >= 0.2]
        assert all(x0 <= k["x"] <= x1 and y0 <= k["y"] <= y1 for k in confident)
    assert [p["score"] for p in poses] == sorted((p["score"] for p in poses), reverse=True)
    if poses:
        assert record["score"] == poses[0]["score"]
        assert record["keypoints"] == poses[0]["keypoints"]
    else:
        assert record["score"] == 0.0 and all(k["score"] == 0.0 for k in record["keypoints"])


def test_infer_posenet_gives_every_person(posenet_dir: Path) -> None:
    proc = run_cli("infer", "--model", "posenet", *model_args(posenet_dir), str(TEST_IMAGE))
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(proc.stdout)
    assert_multi_person_schema(record)
    assert len(record["poses"]) == 2
    left, right = sorted(record["poses"], key=lambda p: p["box"][0])
    assert left["box"][2] < right["box"][0], "two people side by side"
    assert record["backend"]["model"] == "posenet_mobilenet_v1_075_481_641_16_quant.tflite"
    assert record["backend"]["delegate"] in {"xnnpack", "cpu"}, "auto falls back from the EdgeTPU"


@pytest.mark.slow
def test_max_people_flag_and_config_key(posenet_dir: Path, tmp_path: Path) -> None:
    proc = run_cli("infer", "--model", "posenet", "--max-people", "1", *model_args(posenet_dir), str(TEST_IMAGE))
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(proc.stdout)
    assert_multi_person_schema(record)
    assert len(record["poses"]) == 1
    config = tmp_path / "edgepose.toml"
    config.write_text('[model]\nname = "posenet"\nmax_people = 1\n')
    proc = run_cli("infer", "--config", str(config), *model_args(posenet_dir), str(TEST_IMAGE))
    assert proc.returncode == 0, proc.stderr
    assert len(_records(proc.stdout)[0]["poses"]) == 1
    proc = run_cli("infer", "--model", "posenet", *model_args(posenet_dir), str(TEST_IMAGE),
                   env={"EDGEPOSE_MODEL_MAX_PEOPLE": "1"})  # fmt: skip
    assert len(_records(proc.stdout)[0]["poses"]) == 1


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_bad_max_people_is_a_one_line_error(posenet_dir: Path, value: str) -> None:
    proc = run_cli("infer", "--model", "posenet", f"--max-people={value}", *model_args(posenet_dir), str(TEST_IMAGE))
    assert_one_line_error(proc, 2, "max")


def test_movenet_results_carry_a_one_element_poses_list(models_dir: Path, testdata: Path) -> None:
    proc = run_cli("infer", *model_args(models_dir), str(testdata / "squat.bmp"))
    assert proc.returncode == 0, proc.stderr
    (record,) = _records(proc.stdout)
    assert_multi_person_schema(record)
    assert len(record["poses"]) == 1


@pytest.mark.slow
def test_run_posenet_writes_poses_per_frame(posenet_dir: Path, testdata: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for source in (TEST_IMAGE, testdata / "squat.bmp"):
        (folder / source.name).write_bytes(source.read_bytes())
    blank = run_cli("run", "--model", "posenet", "--source", "synthetic:320x240", "--max-frames", "2",
                    *model_args(posenet_dir))  # fmt: skip
    assert blank.returncode == 0, blank.stderr
    proc = run_cli("run", "--model", "posenet", "--source", str(folder), *model_args(posenet_dir))
    assert proc.returncode == 0, proc.stderr
    records = _records(proc.stdout)
    assert [(r["width"], r["height"]) for r in records] == [(500, 610), (640, 480)]
    for record in records + _records(blank.stdout):
        assert_multi_person_schema(record)
    assert [len(r["poses"]) for r in records] == [1, 2]


@pytest.mark.slow
def test_posenet_on_the_edgetpu_without_a_coral_fails_like_movenet(posenet_dir: Path, models_dir: Path) -> None:
    posenet = run_cli("infer", "--model", "posenet", "--delegate", "edgetpu", *model_args(posenet_dir),
                      str(TEST_IMAGE))  # fmt: skip
    movenet = run_cli("infer", "--delegate", "edgetpu", *model_args(models_dir), str(TEST_IMAGE))
    assert_one_line_error(posenet, movenet.returncode, "libedgetpu")
    assert posenet.stderr.splitlines()[-1] == movenet.stderr.splitlines()[-1]


def test_corals_unprepared_file_says_how_to_get_the_prepared_one() -> None:
    raw = MIRROR / "posenet" / "posenet_mobilenet_v1_075_481_641_16_quant_decoder.tflite"
    proc = run_cli("infer", "--model", str(raw), "--delegate", "xnnpack", str(TEST_IMAGE))
    assert_one_line_error(proc, 2, "edgepose models fetch posenet")


@pytest.mark.slow
def test_tflite_runtime_runs_the_prepared_posenet_like_litert(posenet_dir: Path) -> None:
    """The prepared file is an ordinary TFLite model: the legacy runtime finds the same two people."""
    need_tflite_venv()
    args = ["-m", "edgepose", "infer", "--model", "posenet", *model_args(posenet_dir), str(TEST_IMAGE)]
    records = []
    for python, runtime in ((TFLITE_VENV_PYTHON, "tflite_runtime"), (Path(sys.executable), "ai_edge_litert")):
        proc = subprocess.run([str(python), *args, "--runtime", runtime], capture_output=True, text=True,
                              timeout=120, env=cli_env(), check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        records.append(json.loads(proc.stdout))
        assert records[-1]["backend"]["runtime"] == runtime
    legacy, modern = records
    assert len(legacy["poses"]) == len(modern["poses"]) == 2
    for a, b in zip(legacy["poses"], modern["poses"], strict=True):
        ka = np.array([[k["x"], k["y"], k["score"]] for k in a["keypoints"]])
        kb = np.array([[k["x"], k["y"], k["score"]] for k in b["keypoints"]])
        both = (ka[:, 2] > 0.5) & (kb[:, 2] > 0.5)
        assert both.sum() >= 12
        # the Coral reference tolerance of tests/test_posenet.py, 4 short-offset steps (3.2 input px)
        assert np.abs(ka[both, :2] - kb[both, :2]).max() <= 3.2
