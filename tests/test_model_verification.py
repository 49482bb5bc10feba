"""A damaged manifest model is refused before it is loaded, by every command that loads one.

A flipped bit on a Pi's SD card leaves a model that still loads and runs, with keypoints a few pixels
off; only its checksum tells. The real Lightning model is copied from the mirror and one byte changed.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import LIGHTNING, MIRROR, assert_one_line_error, model_args, run_cli
from evalset import View, write_eval_set

#: The repair command the error names (``edgepose models fetch`` replaces a file that fails verification).
REPAIR = "edgepose models fetch lightning --models-dir"


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder whose Lightning model has one byte changed in its weights (it still loads)."""
    folder = tmp_path_factory.mktemp("damaged-models")
    target = folder / LIGHTNING
    shutil.copyfile(MIRROR / LIGHTNING, target)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    return folder


def _args(command: str, testdata: Path, tmp_path: Path) -> list[str]:
    image = str(testdata / "squat.bmp")
    if command == "run":
        return ["run", "--source", image, "--output", str(tmp_path / "out.jsonl")]
    if command == "infer":
        return ["infer", image]
    if command == "bench":
        return ["bench", "--frames", "2", "--idle-seconds", "0"]
    annotations = write_eval_set(testdata, tmp_path / "evalset", [View(0.75, 1.0, 0.6, 0.5)], originals=False)
    return ["eval", "--annotations", str(annotations), "--images", str(annotations.parent)]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "infer", "bench", "eval"])
def test_a_damaged_model_is_refused_with_the_repair_command(
    command: str, damaged: Path, testdata: Path, tmp_path: Path
) -> None:
    proc = run_cli(*_args(command, testdata, tmp_path), *model_args(damaged))
    assert_one_line_error(proc, 2, str(damaged / LIGHTNING))
    error = next(line for line in proc.stderr.splitlines() if line.startswith("edgepose: error:"))
    assert "damaged" in error and "sha256" in error
    assert f"{REPAIR} {damaged}" in error
    assert proc.stdout == ""
    assert not (tmp_path / "out.jsonl").exists() or (tmp_path / "out.jsonl").read_text() == ""


@pytest.mark.slow
def test_the_named_command_repairs_it_and_a_path_is_not_checked(damaged: Path, testdata: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(damaged, folder)
    image = str(testdata / "squat.bmp")
    # A --model path is the user's own file: there is no checksum to compare it with, so it runs.
    own = run_cli("infer", "--model", str(folder / LIGHTNING), "--delegate", "cpu", image)
    assert own.returncode == 0, own.stderr
    proc = run_cli("infer", *model_args(folder), image)
    error = next(line for line in proc.stderr.splitlines() if line.startswith("edgepose: error:"))
    command = shlex.split(error[error.index("edgepose models fetch") :])
    assert command[:3] == ["edgepose", "models", "fetch"]
    repaired = run_cli(*command[1:], "--from", str(MIRROR))  # offline here: from the mirror
    assert repaired.returncode == 0, repaired.stderr
    assert (folder / LIGHTNING).read_bytes() == (MIRROR / LIGHTNING).read_bytes()
    again = run_cli("infer", *model_args(folder), image)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["backend"]["model"] == LIGHTNING
