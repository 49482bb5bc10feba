"""``edgepose bench``: the pipeline against the bare interpreter on this machine, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from edgepose.benchmark import BenchOptions, run_bench
from edgepose.commands.flags import add_command_flags
from edgepose.commands.setup import models_dir, open_estimator
from edgepose.config import Config
from edgepose.models import resolve_model
from edgepose.sources import open_source
from edgepose.sources.base import Source

HELP = "measure the whole pipeline against the bare interpreter (fps, per-stage latency, memory, start-up)"
DEFAULT_SOURCE = "synthetic:640x480"
#: Loggers that would print a line for every measuring round.
_CHATTY = ("edgepose.service", "edgepose.sources")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the bench flags."""
    add_command_flags(parser, "bench")
    parser.add_argument("--frames", type=_positive, default=300, metavar="N",
                        help="frames measured for each of the bare loop and the pipeline (default 300)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def execute(args: argparse.Namespace, config: Config) -> int:
    """Measure and print the report; progress goes to stderr."""
    spec = config.source.source or DEFAULT_SOURCE

    def fresh_source() -> Source:
        return open_source(spec, config.source)

    fresh_source()  # a bad --source fails before the model loads
    estimator = open_estimator(config.model)
    quiet = bool(getattr(args, "quiet", False))
    if not getattr(args, "verbose", 0):
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)

    def progress(message: str) -> None:
        if not quiet:
            print(f"edgepose: bench: {message}", file=sys.stderr, flush=True)

    progress(f"measuring {args.frames} frames on {spec}")
    report = run_bench(fresh_source, estimator, BenchOptions(frames=args.frames), progress)
    report["model_mb"] = _model_mb(config, report)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        sys.stdout.write(format_report(report))
    sys.stdout.flush()
    return 0


def _model_mb(config: Config, report: dict[str, Any]) -> float | None:
    files = resolve_model(config.model.name, models_dir(config.model))
    path = files.edgetpu_path if report["delegate"] == "edgetpu" else files.cpu_path
    try:
        return round(path.stat().st_size / 1e6, 2) if path is not None else None
    except OSError:
        return None


#: Row labels of the per-stage latency table, shared with benchmarks/run_matrix.py.
STAGE_LABELS: dict[str, str] = {
        "capture": "capture (read/decode)",
        "preprocess": "preprocess",
        "invoke": "invoke",
        "postprocess": "postprocess",
        "pre_post": "preprocess + postprocess",
        "total": "total (frame available → result)",
        "capture_to_result": "capture → result (decode included)",
        "overhead": "capture → result minus invoke",
}


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |\n"


def _stage_rows(stages: dict[str, dict[str, float]]) -> str:
    out = ""
    for key, label in STAGE_LABELS.items():
        if key in stages:
            p = stages[key]
            out += _row([label, f"{p['p50']:.2f}", f"{p['p95']:.2f}", f"{p['p99']:.2f}"])
    return out


def format_report(report: dict[str, Any]) -> str:
    """Render the report as markdown tables (the TFLite pose docs' columns first)."""
    size = report["frame_size"]
    bare = report["bare"]
    pipeline = report["pipeline"]
    runtime = f"{report['runtime']} {report['runtime_version']}"
    model_mb = report.get("model_mb")
    out = _row(["model", "size", "input", "runtime", "delegate", "threads", "invoke p50 (ms)",
                "pipeline (ms/frame)"])  # fmt: skip
    out += _row(["---"] * 8)
    out += _row([
        report["model"], f"{model_mb:.1f} MB" if model_mb else "?", f"{report['input_size']}²", runtime,
        report["delegate"], str(report["threads"]), f"{bare['latency_ms']['p50']:.2f}",
        f"{1000.0 / pipeline['fps']:.2f}" if pipeline["fps"] else "-",
    ])  # fmt: skip
    out += f"\nsource {report['source']} ({size[0]}×{size[1]}), {report['frames']} frames in "
    out += f"{report['rounds']} alternating rounds, {report['cpu_count']} CPU cores\n\n"
    out += _row(["", "frames/s", "vs bare"]) + _row(["---"] * 3)
    out += _row(["bare invoke()", f"{bare['fps']:.1f}", "1.000"])
    out += _row(["pipeline (decode → result)", f"{pipeline['fps']:.1f}", f"{report['ratio']:.3f}"])
    out += "\n" + _row(["pipeline stage (ms)", "p50", "p95", "p99"]) + _row(["---"] * 4)
    out += _row(["bare invoke()", *(f"{bare['latency_ms'][q]:.2f}" for q in ("p50", "p95", "p99"))])
    out += _stage_rows(pipeline["latency_ms"])
    live = report.get("live")
    if live:
        out += f"\npaced like a camera ({live['fps']:.1f} frames/s, {live['frames']} frames):\n\n"
        out += _row(["stage (ms)", "p50", "p95", "p99"]) + _row(["---"] * 4)
        paced = live["bare_invoke_ms"]
        out += _row(["bare invoke(), same pace", *(f"{paced[q]:.2f}" for q in ("p50", "p95", "p99"))])
        out += _stage_rows(live["latency_ms"])
    first = report["first_result_s"]
    out += f"\npeak RSS {report['peak_rss_mb']:.1f} MB; first result {first if first is not None else '?'} s "
    out += "after the process started\n"
    return out
