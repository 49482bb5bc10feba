"""`edgepose run` end to end: sources, the JSON-lines contract, no frames lost from files."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_env, model_args, run_cli

from edgepose.pose import KEYPOINT_NAMES

RUN_KEYS = {"ts", "media_s", "frame", "width", "height", "score", "keypoints", "poses", "latency_ms", "state", "events"}
STAGES = {"capture", "preprocess", "invoke", "postprocess", "total"}


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_synthetic_source_to_stdout(models_dir: Path) -> None:
    started = time.time()
    proc = run_cli("run", "--source", "synthetic:320x240", "--max-frames", "25", *model_args(models_dir))
    assert proc.returncode == 0, proc.stderr
    records = _records(proc.stdout)
    assert [r["frame"] for r in records] == list(range(25))
    for record in records:
        assert set(record) == RUN_KEYS
        assert (record["width"], record["height"]) == (320, 240)
        assert started <= record["ts"] <= time.time()
        assert record["media_s"] == round(record["frame"] / 30.0, 6)  # no timestamps: frame number / fps
        assert [k["name"] for k in record["keypoints"]] == list(KEYPOINT_NAMES)
        assert set(record["latency_ms"]) == STAGES
        assert all(v >= 0 for v in record["latency_ms"].values())
        assert record["latency_ms"]["invoke"] > 0
    assert "processed 25 frames" in proc.stderr


def test_image_folder_keeps_every_image(models_dir: Path, testdata: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("squat.bmp", "woman_standing.png"):
        shutil.copyfile(testdata / name, folder / name)
    (folder / "README.txt").write_text("not an image, ignored")
    out = tmp_path / "out.jsonl"
    out.write_text('{"earlier": "line"}\n')
    proc = run_cli("run", "--source", str(folder), "--output", str(out), *model_args(models_dir))
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert json.loads(lines[0]) == {"earlier": "line"}, "output files are appended to, never truncated"
    records = [json.loads(line) for line in lines[1:]]
    assert [(r["width"], r["height"]) for r in records] == [(500, 610), (384, 640)]
    assert proc.stdout == "", "with --output FILE nothing goes to stdout"


@pytest.mark.slow
def test_sigterm_stops_a_live_run_cleanly(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgepose", "run", "--source", "synthetic:320x240", "--realtime", "--fps", "20",
         "--output", str(out), *model_args(models_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 5):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    records = _records(out.read_text())
    assert len(records) >= 5
    assert [r["frame"] for r in records] == sorted(r["frame"] for r in records)
    assert "SIGTERM received" in stderr


def test_broken_pipe_is_not_a_traceback(models_dir: Path) -> None:
    code = (
        f"{sys.executable} -m edgepose run --source synthetic:160x120 --max-frames 40 "
        f"--models-dir {models_dir} | head -n 2"
    )
    proc = subprocess.run(["bash", "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120, check=False)
    assert len(proc.stdout.splitlines()) == 2
    assert "Traceback" not in proc.stderr
