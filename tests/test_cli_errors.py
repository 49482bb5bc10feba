"""Bad input gets exit 2 and one line on stderr, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import LIGHTNING, assert_one_line_error, model_args, run_cli
from tflite_builder import wrong_input_model, wrong_output_model


def test_missing_image(models_dir: Path, tmp_path: Path) -> None:
    proc = run_cli("infer", *model_args(models_dir), str(tmp_path / "nope.jpg"))
    assert proc.stdout == ""
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "image not found" in proc.stderr


def test_non_image_file(models_dir: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture\n")
    proc = run_cli("infer", *model_args(models_dir), str(text))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot decode" in proc.stderr


def test_good_images_are_kept_when_one_is_bad(models_dir: Path, testdata: Path, tmp_path: Path) -> None:
    proc = run_cli("infer", *model_args(models_dir), str(testdata / "squat.bmp"), str(tmp_path / "gone.png"),
                   str(testdata / "woman_standing.png"))  # fmt: skip
    assert proc.returncode == 2
    assert len(proc.stdout.splitlines()) == 2, "results for the good images are still printed"
    assert "1 of 3 images could not be read" in proc.stderr


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
    proc = run_cli("infer", *model_args(models_dir), "--model", "blazepose", str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 2, "unknown model 'blazepose'")


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
    proc = run_cli("-v", "infer", *model_args(models_dir), "--model", "blazepose", str(testdata / "squat.bmp"))
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
