"""``edgepose bench``: the pipeline against the bare interpreter on this machine, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edgepose.bench.measure import BenchOptions, run_bench
from edgepose.bench.report import format_report
from edgepose.config import Config
from edgepose.config.flags import add_command_flags
from edgepose.inference.factory import model_files, open_estimator
from edgepose.manifest import models_dir
from edgepose.sources import open_source
from edgepose.sources.base import Source

HELP = "measure the whole pipeline against the bare interpreter (fps, per-stage latency, memory, start-up)"
#: Only warnings and errors on stderr unless ``-v``.
QUIET = True
DEFAULT_SOURCE = "synthetic:640x480"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not 0 <= value <= 3600:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the bench flags."""
    add_command_flags(parser, "bench")
    parser.add_argument("--frames", type=_positive, default=300, metavar="N",
                        help="frames measured for each of the bare loop and the pipeline (default 300)")  # fmt: skip
    parser.add_argument("--idle-seconds", type=_non_negative_float, default=BenchOptions.idle_seconds, metavar="S",
                        help="length of the idle-mode run on an empty scene, 0 to skip it (default 12)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def execute(args: argparse.Namespace, config: Config) -> int:
    """Measure and print the report; progress goes to stderr."""
    spec = config.source.source or DEFAULT_SOURCE

    def fresh_source() -> Source:
        return open_source(spec, config.source)

    fresh_source()  # a bad --source fails before the model loads
    estimator = open_estimator(config.model)
    quiet = bool(getattr(args, "quiet", False))

    def progress(message: str) -> None:
        if not quiet:
            print(f"edgepose: bench: {message}", file=sys.stderr, flush=True)

    progress(f"measuring {args.frames} frames on {spec}")
    report = run_bench(
        fresh_source, estimator, BenchOptions(frames=args.frames, idle_seconds=args.idle_seconds), progress
    )
    report["model_mb"] = _model_mb(config, report)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        sys.stdout.write(format_report(report))
    sys.stdout.flush()
    return 0


def _model_mb(config: Config, report: dict[str, Any]) -> float | None:
    """Return the size of the model file(s) that ran: a multi-stage model (BlazePose) counts every stage."""
    stages = model_files(config.model.name, models_dir(config.model.models_dir))
    paths = [files.edgetpu_path if report["delegate"] == "edgetpu" else files.cpu_path for files in stages]
    try:
        return round(sum(path.stat().st_size for path in paths if path is not None) / 1e6, 2) if all(paths) else None
    except OSError:
        return None
