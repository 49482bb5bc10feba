"""``edgepose analyze FILE|-``: presence, falls and reps over recorded pose JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from edgepose.analytics import Analytics
from edgepose.analytics.records import parse_line, pose_result
from edgepose.config import Config
from edgepose.config.flags import add_command_flags
from edgepose.errors import InputError

HELP = "add presence, falls and exercise reps (state and events) to pose JSON lines from edgepose run"


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the input argument and the analytics flags."""
    parser.add_argument("input", metavar="FILE|-", help="JSON lines as edgepose run prints them; - for stdin")
    add_command_flags(parser, "analyze")


@contextmanager
def _open(name: str) -> Iterator[TextIO]:
    """Open the input (``-`` is stdin) as UTF-8 text, or raise :class:`InputError`."""
    if name == "-":
        yield sys.stdin
        return
    try:
        fh = Path(name).open(encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    with fh:
        yield fh


def execute(args: argparse.Namespace, config: Config) -> int:
    """Echo every input line with ``state`` and ``events`` added; stop at the first invalid line (exit 2).

    Time comes from each line's ``media_s`` (``ts`` in recordings without it) only, so a recording replays
    the same at any speed and with the same timing as ``edgepose run`` gave it. Smoothing is
    off unless ``--smoothing on``: ``edgepose run`` has smoothed the keypoints it printed already.
    """
    smoothing = config.smoothing if config.smoothing.mode == "on" else None
    analytics = Analytics(config.analytics, smoothing)
    name = "stdin" if args.input == "-" else args.input
    with _open(args.input) as stream:
        number = 0
        try:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                where = f"{name}: line {number}"
                obj = parse_line(line, where)
                result = analytics.update(pose_result(obj, where, frame=number - 1))
                obj["state"] = result.state
                obj["events"] = list(result.events)
                sys.stdout.write(json.dumps(obj) + "\n")
                sys.stdout.flush()
        except UnicodeDecodeError:
            raise InputError(f"{name}: line {number + 1}: not UTF-8 text") from None
        except BrokenPipeError:  # the reader went away (``| head``): stop quietly, like any filter
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
