"""``edgepose bench``: the real CLI on the real model; checks the report's shape, never the speed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_one_line_error, model_args, run_cli

STAGE_KEYS = {"capture", "preprocess", "invoke", "postprocess", "total", "capture_to_result", "pre_post", "overhead"}
QUANTILES = {"p50", "p95", "p99"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_percentiles(block: dict[str, Any]) -> None:
    assert set(block) == QUANTILES
    assert all(_is_number(v) and v >= 0 for v in block.values())
    assert block["p50"] <= block["p95"] <= block["p99"]


def _check_stages(stages: dict[str, Any]) -> None:
    assert set(stages) == STAGE_KEYS
    for block in stages.values():
        _check_percentiles(block)


@pytest.fixture(scope="module")
def report(models_dir: Path) -> dict[str, Any]:
    proc = run_cli("bench", "--json", "--frames", "20", "--idle-seconds", "5", "--source", "synthetic:320x240",
                   *model_args(models_dir))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "edgepose: bench: round 1/1" in proc.stderr, "progress goes to stderr"
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


@pytest.mark.slow
def test_json_top_level_shape(report: dict[str, Any]) -> None:
    expected = {
        "model", "input_size", "input_width", "runtime", "runtime_version", "delegate", "threads", "cpu_count",
        "source", "frame_size", "frames", "rounds", "bare", "pipeline", "live", "ratio", "pre_post_ms", "peak_rss_mb",
        "first_result_s", "model_mb", "idle",
    }  # fmt: skip
    assert set(report) == expected
    assert report["model"] == "movenet_single_pose_lightning_ptq.tflite"
    assert report["input_size"] == report["input_width"] == 192
    assert report["runtime"] in {"ai_edge_litert", "tflite_runtime"}
    assert isinstance(report["runtime_version"], str)
    assert report["delegate"] in {"xnnpack", "cpu", "edgetpu"}
    for key in ("threads", "cpu_count", "frames", "rounds", "input_size"):
        assert isinstance(report[key], int) and report[key] >= 1, key
    assert report["source"] == "synthetic 320x240"
    assert report["frame_size"] == [320, 240]
    for key in ("ratio", "pre_post_ms", "peak_rss_mb", "model_mb"):
        assert _is_number(report[key]) and report[key] > 0, key
    assert report["first_result_s"] is None or (_is_number(report["first_result_s"]) and report["first_result_s"] > 0)


@pytest.mark.slow
def test_json_bare_pipeline_and_paced_blocks(report: dict[str, Any]) -> None:
    bare = report["bare"]
    assert set(bare) == {"fps", "latency_ms", "cpu_ms_per_frame"}
    assert _is_number(bare["fps"]) and bare["fps"] > 0
    _check_percentiles(bare["latency_ms"])

    pipeline = report["pipeline"]
    assert set(pipeline) == {"fps", "latency_ms", "cpu_ms_per_frame"}
    assert _is_number(pipeline["fps"]) and pipeline["fps"] > 0
    _check_stages(pipeline["latency_ms"])

    live = report["live"]
    assert set(live) == {"frames", "fps", "latency_ms", "bare_invoke_ms", "cpu_ms_per_frame", "bare_cpu_ms_per_frame",
                         "cpu_percent"}  # fmt: skip
    for block in (bare, pipeline, live):
        assert _is_number(block["cpu_ms_per_frame"]) and block["cpu_ms_per_frame"] > 0
    _check_percentiles(live["bare_invoke_ms"])
    assert isinstance(live["frames"], int) and live["frames"] >= 2
    assert _is_number(live["fps"]) and live["fps"] > 0
    _check_stages(live["latency_ms"])


@pytest.mark.slow
def test_idle_block(report: dict[str, Any]) -> None:
    idle = report["idle"]
    assert idle["state"] == "idle", "the empty scene sent the pipeline idle"
    assert 0 < idle["model_runs_per_s"] <= 2 * 1.5, "idle mode runs the model about twice a second at most"
    for key in ("cpu_percent", "active_cpu_percent", "ratio", "seconds"):
        assert _is_number(idle[key]) and idle[key] > 0, key


@pytest.mark.slow
def test_table_output(models_dir: Path) -> None:
    proc = run_cli("bench", "--frames", "10", "--idle-seconds", "0", "--source", "synthetic:160x120", "-q",
                   *model_args(models_dir))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "edgepose: bench:" not in proc.stderr, "-q silences progress"
    header = proc.stdout.splitlines()[0]
    for column in ("model", "size", "input", "delegate", "threads", "invoke p50 (ms)"):
        assert column in header
    assert "movenet_single_pose_lightning_ptq.tflite" in proc.stdout
    assert "peak RSS" in proc.stdout and "first result" in proc.stdout
    assert "CPU time per frame" in proc.stdout and "| saturated |" in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--frames", "0"], "--frames"),
        (["--frames", "many"], "--frames"),
        (["--source", "/nonexistent/clip.mp4"], "source not found"),
    ],
)
def test_bad_arguments_are_one_line_errors(models_dir: Path, args: list[str], needle: str) -> None:
    proc = run_cli("bench", *args, *model_args(models_dir))
    assert_one_line_error(proc, 2, needle)
