"""``edgepose models list|fetch|verify``: the model manifest, downloads and mirrors, checksums."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from edgepose.config import Config
from edgepose.errors import ConfigError, EdgePoseError
from edgepose.manifest import fetch_command, load_manifest, model_names, models_dir, verify_file
from edgepose.models import DEFAULT_FETCH, MIRROR_ENV, fetch_one, select_specs

HELP = "list, fetch (from upstream or a local mirror) and verify model files"
#: Only warnings and errors on stderr unless ``-v``.
QUIET = True


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the ``list``, ``fetch`` and ``verify`` actions."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    actions.add_parser("list", parents=[common], help="show known models and whether they are present")
    fetch = actions.add_parser("fetch", parents=[common], help="download or copy models, verified")
    fetch.add_argument("names", nargs="*", metavar="NAME", help=f"models to fetch (default: {' '.join(DEFAULT_FETCH)})")
    fetch.add_argument("--all", action="store_true", help="fetch every model in the manifest")
    fetch.add_argument(
        "--from",
        dest="mirror",
        type=Path,
        metavar="DIR",
        help=f"copy from a local mirror folder instead of downloading (or set {MIRROR_ENV})",
    )
    verify = actions.add_parser("verify", parents=[common], help="check present model files against their checksums")
    verify.add_argument("names", nargs="*", metavar="NAME", help="models to check (default: all present)")


class _Progress:
    """Progress on stderr: a live percentage on a terminal, a few lines otherwise."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last = 0.0
        self._step = -1

    def __call__(self, name: str, done: int, total: int) -> None:
        if total <= 0:
            return
        percent = min(100, done * 100 // total)
        if self._tty:
            now = time.monotonic()
            if now - self._last > 0.1 or percent == 100:
                self._last = now
                sys.stderr.write(f"\r  {name}: {percent:3d}% of {total / 1e6:.1f} MB")
                if percent == 100:
                    sys.stderr.write("\n")
        elif percent // 25 > self._step:
            self._step = percent // 25
            sys.stderr.write(f"  {name}: {percent}% of {total / 1e6:.1f} MB\n")
        sys.stderr.flush()


def execute(args: argparse.Namespace, config: Config) -> int:
    """Run the chosen action."""
    specs = load_manifest()
    folder = models_dir(config.model.models_dir)
    if args.action == "list":
        print(f"models in {folder}:")
        for spec in specs:
            problem = verify_file(spec, folder / spec.file)
            state = "verified" if problem is None else "not fetched" if problem == "missing" else f"BAD: {problem}"
            size = f"{spec.input_size}×{spec.input_width}" if spec.input_width else str(spec.input_size)
            print(f"  {spec.name:<10} {spec.variant:<8} {size + 'px':<10} {spec.file:<50} {state}")
        return 0
    if args.action == "verify":
        chosen = select_specs(args.names, specs) if args.names else specs
        bad: list[str] = []
        for spec in chosen:
            problem = verify_file(spec, folder / spec.file)
            if problem == "missing" and not args.names:
                continue
            print(f"{'OK' if problem is None else 'FAIL'} {spec.file}{'' if problem is None else ': ' + problem}")
            if problem is not None:
                bad.append(spec.name)
        if bad:
            raise EdgePoseError(f"{len(bad)} model file(s) failed verification; re-fetch: {fetch_command(bad, folder)}")
        return 0
    names = model_names(specs) if args.all else (args.names or list(DEFAULT_FETCH))
    mirror = args.mirror or (Path(os.environ[MIRROR_ENV]) if os.environ.get(MIRROR_ENV) else None)
    if mirror is not None and not mirror.is_dir():
        raise ConfigError(f"model mirror {mirror} is not a folder")
    failures = []
    progress = _Progress()
    for spec in select_specs(names, specs):
        try:
            how = fetch_one(spec, folder, mirror, progress)
            print(f"OK {spec.file}: {how}")
        except EdgePoseError as exc:
            print(f"FAIL {spec.file}: {exc}", file=sys.stderr)
            failures.append(spec.file)
    if failures:
        raise EdgePoseError(f"could not fetch {', '.join(failures)}")
    return 0
