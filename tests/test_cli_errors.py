"""Bad input gets exit 2 and one line on stderr, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import LIGHTNING, assert_one_line_error, cli_env, model_args, run_cli
from tflite_builder import wrong_input_model, wrong_output_model

from edgepose.sources.pixels import to_bgr

#: The log line that says a model was loaded (seen with -v); bad input must fail before it.
MODEL_LOADED = "running movenet_single_pose_lightning_ptq.tflite on"


def assert_rejected_before_loading(args: list[str], needle: str) -> None:
    """One error line and exit 2 without -v; with -v (every log line shown) no model was loaded either."""
    proc = run_cli(*args)
    assert_one_line_error(proc, 2, needle)
    assert proc.stderr.count("\n") == 1, proc.stderr  # nothing but that line: no INFO, no runtime chatter
    assert proc.stdout == ""
    verbose = run_cli("-v", *args)
    assert verbose.returncode == 2
    assert MODEL_LOADED not in verbose.stderr, verbose.stderr


def test_missing_image(models_dir: Path, tmp_path: Path) -> None:
    assert_rejected_before_loading(["infer", *model_args(models_dir), str(tmp_path / "nope.jpg")], "image not found")


def test_non_image_file(models_dir: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture\n")
    assert_rejected_before_loading(["infer", *model_args(models_dir), str(text)], "cannot decode")


def test_one_bad_image_among_good_ones_fails_before_any_work(models_dir: Path, testdata: Path, tmp_path: Path) -> None:
    args = ["infer", *model_args(models_dir), str(testdata / "squat.bmp"), str(tmp_path / "gone.png"),
            str(testdata / "woman_standing.png")]  # fmt: skip
    assert_rejected_before_loading(args, "1 of 3 images cannot be read")


@pytest.mark.slow
def test_good_run_is_quiet_by_default(models_dir: Path, testdata: Path) -> None:
    proc = run_cli("infer", *model_args(models_dir), str(testdata / "squat.bmp"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no INFO lines, no "Created TensorFlow Lite XNNPACK delegate"
    verbose = run_cli("-v", "infer", *model_args(models_dir), str(testdata / "squat.bmp"))
    assert MODEL_LOADED in verbose.stderr


def test_truncated_model(models_dir: Path, testdata: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes((models_dir / LIGHTNING).read_bytes()[:100_000])
    proc = run_cli("infer", *model_args(models_dir), "--model", str(broken), str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 2, "broken.tflite")


def test_not_a_model(models_dir: Path, testdata: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 4096)
    proc = run_cli("infer", *model_args(models_dir), "--model", str(junk), str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 2, "not a TFLite model")


@pytest.mark.parametrize(("builder", "needle"), [(wrong_input_model, "uint8 input"),
                                                  (wrong_output_model, "(1, 1, 17, 3)")])  # fmt: skip
def test_wrong_shape_model(models_dir: Path, testdata: Path, tmp_path: Path, builder, needle: str) -> None:
    model = builder(tmp_path / "other.tflite")
    proc = run_cli("infer", *model_args(models_dir), "--model", str(model), str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 2, needle)


def test_unknown_model_name(models_dir: Path, testdata: Path) -> None:
    proc = run_cli("infer", *model_args(models_dir), "--model", "nosuchmodel", str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 2, "unknown model 'nosuchmodel'")


def test_missing_model_file_says_fetch(tmp_path: Path, testdata: Path) -> None:
    proc = run_cli("infer", "--models-dir", str(tmp_path), str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 2, "edgepose models fetch")


def test_thunder_without_weights_names_the_file(tmp_path: Path, testdata: Path) -> None:
    proc = run_cli("infer", "--models-dir", str(tmp_path), "--model", "thunder", str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 2, "movenet_single_pose_thunder_ptq.tflite")


@pytest.mark.parametrize(
    "flags",
    [
        ["--threads", "abc"],
        ["--threads", "-1"],
        ["--threads", "1000"],
        ["--delegate", "gpu"],
        ["--runtime", "onnx"],
        ["--no-such-flag"],
    ],
)
def test_bad_flag_values(models_dir: Path, testdata: Path, flags: list[str]) -> None:
    proc = run_cli("infer", *model_args(models_dir), *flags, str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 2)
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run"], "no source"),
        (["run", "--source", "/nonexistent/clip.mp4"], "source not found"),
        (["run", "--source", "synthetic:big"], "synthetic:640x480"),
        (["run", "--source", "synthetic", "--max-frames", "-3"], "max-frames"),
        ([], "a command is required"),
        (["models"], "required"),
        (["infer"], "required"),
    ],
)
def test_bad_run_usage(models_dir: Path, args: list[str], needle: str) -> None:
    proc = run_cli(*args, *model_args(models_dir))
    assert_one_line_error(proc, 2, needle)


def test_undecodable_video(models_dir: Path, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x01garbage" * 100)
    proc = run_cli("run", "--source", str(video), *model_args(models_dir))
    assert_one_line_error(proc, 2, "cannot open video")


def test_verbose_shows_the_traceback(models_dir: Path, testdata: Path) -> None:
    proc = run_cli("-v", "infer", *model_args(models_dir), "--model", "nosuchmodel", str(testdata / "squat.bmp"))
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


@pytest.mark.slow
def test_a_float_tiff_is_read_as_the_same_picture(models_dir: Path, testdata: Path, tmp_path: Path) -> None:
    """A float32 TIFF (pixels 0..1) gives the pose of the 8-bit picture it was made from."""
    png = testdata / "woman_standing.png"
    tiff = tmp_path / "float.tiff"
    assert cv2.imwrite(str(tiff), cv2.imread(str(png)).astype(np.float32) / 255.0)
    proc = run_cli("infer", str(tiff), str(png), *model_args(models_dir))
    assert proc.returncode == 0, proc.stderr
    from_tiff, from_png = (json.loads(line) for line in proc.stdout.splitlines())
    assert from_tiff["keypoints"] == from_png["keypoints"]


def test_float_and_signed_pixels_are_scaled_to_8_bit() -> None:
    unit = np.array([[0.0, 0.5, 1.0]], np.float32)
    assert to_bgr(unit)[0, :, 0].tolist() == [0, 128, 255], "0..1 is black..white"
    assert to_bgr(unit * 255)[0, :, 0].tolist() == [0, 128, 255], "beyond 1: the brightest pixel is white"
    odd = np.array([[np.nan, -3.0, np.inf, 0.25]], np.float64)
    assert to_bgr(odd)[0, :, 0].tolist() == [0, 0, 0, 64], "NaN, negative and infinite pixels are black"
    signed = np.array([[-32768, 0, 32767]], np.int16)
    assert to_bgr(signed)[0, :, 0].tolist() == [0, 0, 255]
    assert to_bgr(np.array([[0, 65535]], np.uint16)).shape == (1, 2, 3)


@pytest.mark.slow
def test_infer_into_a_pipe_closed_early_ends_quietly(models_dir: Path, testdata: Path) -> None:
    """`edgepose infer … | head -c 10`: head exits after one line; the next write meets a closed pipe."""
    images = [str(testdata / "squat.bmp")] * 8
    command = [sys.executable, "-m", "edgepose", "infer", *images, *model_args(models_dir)]
    script = f"{subprocess.list2cmdline(command)} | head -c 10 >/dev/null; exit ${{PIPESTATUS[0]}}"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=cli_env(), timeout=300,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
