"""Runtime and delegate selection with the real interpreters: fallback, isolation, agreement."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    LIGHTNING_EDGETPU,
    TFLITE_VENV_PYTHON,
    assert_one_line_error,
    cli_env,
    model_args,
    need,
    need_tflite_venv,
    run_cli,
)

from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.runtime.backend import BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.inference.runtime.runtimes import tflite_numpy_problem
from edgepose.manifest import ModelFiles
from edgepose.sources.images import load_image

#: Different kernels give slightly different outputs (MODELS.md: up to ~0.03 in coordinates).
AGREE_NORMALISED = 0.04
AGREE_MIN_SCORE = 0.3


def _infer(python: Path | str, models_dir: Path, image: Path, *flags: str) -> dict:
    proc = subprocess.run(
        [str(python), "-m", "edgepose", "infer", *model_args(models_dir), *flags, str(image)],
        capture_output=True, text=True, timeout=120, env=cli_env(), check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _assert_agree(a: dict, b: dict) -> float:
    size = np.array([a["width"], a["height"]], dtype=float)
    ka = np.array([[k["x"], k["y"], k["score"]] for k in a["keypoints"]])
    kb = np.array([[k["x"], k["y"], k["score"]] for k in b["keypoints"]])
    both = (ka[:, 2] > AGREE_MIN_SCORE) & (kb[:, 2] > AGREE_MIN_SCORE)
    assert both.sum() >= 12
    worst = float((np.abs(ka[both, :2] - kb[both, :2]) / size).max())
    assert worst <= AGREE_NORMALISED, worst
    return worst


@pytest.mark.parametrize("image", ["squat.bmp", "woman_standing.png"])
@pytest.mark.slow
def test_tflite_runtime_agrees_with_litert(models_dir: Path, testdata: Path, image: str) -> None:
    need_tflite_venv()
    legacy = _infer(TFLITE_VENV_PYTHON, models_dir, testdata / image, "--runtime", "tflite_runtime")
    assert legacy["backend"]["runtime"] == "tflite_runtime"
    modern = _infer(sys.executable, models_dir, testdata / image, "--runtime", "ai_edge_litert")
    assert modern["backend"]["runtime"] == "ai_edge_litert"
    print(f"{image}: tflite_runtime vs ai_edge_litert worst |d| = {_assert_agree(legacy, modern):.4f}")


def test_cpu_and_xnnpack_agree(lightning_path: Path, testdata: Path) -> None:
    image = load_image(testdata / "woman_standing.png")
    outputs = []
    for delegate in ("cpu", "xnnpack"):
        backend = open_backend(ModelFiles("lightning", lightning_path, None), BackendRequest(delegate=delegate))
        assert backend.info.delegate == delegate
        outputs.append(MoveNetEstimator(backend).still(image).keypoints)
    both = (outputs[0][:, 2] > AGREE_MIN_SCORE) & (outputs[1][:, 2] > AGREE_MIN_SCORE)
    assert (np.abs(outputs[0][both, :2] - outputs[1][both, :2]) / [384, 640]).max() <= AGREE_NORMALISED


def test_auto_falls_back_when_libedgetpu_is_absent(models_dir: Path, testdata: Path) -> None:
    proc = run_cli("-v", "infer", *model_args(models_dir), "--delegate", "auto", str(testdata / "squat.bmp"))
    assert proc.returncode == 0, proc.stderr
    assert "delegate edgetpu unavailable, falling back to xnnpack" in proc.stderr
    assert "libedgetpu.so.1" in proc.stderr and "cannot open shared object file" in proc.stderr
    assert json.loads(proc.stdout)["backend"]["delegate"] == "xnnpack"


def test_explicit_edgetpu_without_coral_fails_cleanly(models_dir: Path, testdata: Path) -> None:
    proc = run_cli("infer", *model_args(models_dir), "--delegate", "edgetpu", str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 1, "libedgetpu.so.1")
    assert proc.stdout == ""


@pytest.fixture(scope="module")
def crashing_delegate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in libedgetpu that segfaults as it loads, as a mismatched libedgetpu does (edgetpu#812)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    need("a C compiler (to build the crashing stand-in library)", compiler is not None, "apt install gcc")
    assert compiler is not None
    folder = tmp_path_factory.mktemp("fake_edgetpu")
    source = folder / "crash.c"
    source.write_text("#include <signal.h>\n__attribute__((constructor)) static void crash(void) { raise(SIGSEGV); }\n")
    library = folder / "libedgetpu_crash.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


def test_delegate_crash_is_isolated_and_auto_falls_back(models_dir: Path, testdata: Path,
                                                        crashing_delegate: Path) -> None:  # fmt: skip
    proc = run_cli("infer", *model_args(models_dir), "--edgetpu-library", str(crashing_delegate),
                   str(testdata / "squat.bmp"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "crashed the process (SIGSEGV)" in proc.stderr
    assert "falling back to xnnpack" in proc.stderr
    assert json.loads(proc.stdout)["backend"]["delegate"] == "xnnpack"


def test_delegate_crash_with_explicit_edgetpu_is_one_line(models_dir: Path, testdata: Path,
                                                          crashing_delegate: Path) -> None:  # fmt: skip
    proc = run_cli("infer", *model_args(models_dir), "--delegate", "edgetpu", "--edgetpu-library",
                   str(crashing_delegate), str(testdata / "squat.bmp"))  # fmt: skip
    assert_one_line_error(proc, 1, "crashed the process (SIGSEGV)")


def test_edgetpu_model_is_refused_on_cpu(models_dir: Path, testdata: Path) -> None:
    model = models_dir / LIGHTNING_EDGETPU
    proc = run_cli("infer", *model_args(models_dir), "--model", str(model), "--delegate", "cpu",
                   str(testdata / "squat.bmp"))  # fmt: skip
    assert_one_line_error(proc, 2, "compiled for the Coral EdgeTPU")


def test_edgetpu_model_under_another_name_is_refused_on_cpu(models_dir: Path, testdata: Path,
                                                            tmp_path: Path) -> None:  # fmt: skip
    renamed = tmp_path / "mystery.tflite"
    shutil.copyfile(models_dir / LIGHTNING_EDGETPU, renamed)
    proc = run_cli("infer", *model_args(models_dir), "--model", str(renamed), "--delegate", "xnnpack",
                   str(testdata / "squat.bmp"))  # fmt: skip
    assert_one_line_error(proc, 2, "compiled for the Coral EdgeTPU")


def test_missing_runtime_is_named_with_install_hint(models_dir: Path, testdata: Path) -> None:
    try:
        import tflite_runtime  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tflite_runtime is installed in this venv")
    proc = run_cli("infer", *model_args(models_dir), "--runtime", "tflite_runtime", str(testdata / "squat.bmp"))
    assert_one_line_error(proc, 1, "tflite_runtime is not installed")
    assert "pip install tflite-runtime" in proc.stderr


def test_tflite_runtime_under_numpy2_is_refused_with_the_fix() -> None:
    problem = tflite_numpy_problem("2.14.0", "2.1.3")
    assert problem is not None and "numpy<2" in problem and "ai-edge-litert" in problem
    assert tflite_numpy_problem("2.14.0", "1.26.4") is None
    assert tflite_numpy_problem("2.20.0", "2.1.3") is None
