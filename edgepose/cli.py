"""The ``edgepose`` command: argument parsing, config assembly, exit codes and error reporting.

Exit codes: 0 success, 2 bad usage/config/input, 1 runtime failure. Errors are one line on stderr,
``edgepose: error: …``; tracebacks only with ``-v``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from edgepose import DESCRIPTION, __version__
from edgepose.commands import COMMANDS
from edgepose.config import Config, build_config, redacted, to_toml
from edgepose.config.flags import FLAGS
from edgepose.errors import ConfigError, EdgePoseError
from edgepose.logs import error_line, setup_logging
from edgepose.system_install import config_file

log = logging.getLogger(__name__)


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors become :class:`ConfigError` (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing usage and exiting."""
        raise ConfigError(f"{message} (see: {self.prog} --help)")


def _common_flags() -> ArgumentParser:
    """Build the flags every subcommand accepts; unset ones stay absent so they never clobber each other."""
    common = ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = common.add_argument_group("common options")
    group.add_argument("--config", type=Path, metavar="FILE", help="TOML config file")
    group.add_argument(
        "--print-config", action="store_true", help="print the merged config (secrets redacted) and exit"
    )
    group.add_argument("-v", "--verbose", action="count", help="more log output; show tracebacks")
    group.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    group.add_argument("--version", action="version", version=f"edgepose {__version__}")
    for flag in FLAGS:
        if flag.common:
            flag.add_to(group)
    return common


def build_parser() -> ArgumentParser:
    """Build the full command-line parser."""
    common = _common_flags()
    parser = ArgumentParser(
        prog="edgepose",
        description=DESCRIPTION,
        parents=[common],
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.HELP, description=command.HELP, parents=[common])
        command.add_arguments(sub, common)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """Merge ``--config`` (or the system install's config), the environment and the flags given."""
    overrides: dict[str, dict[str, Any]] = {}
    for flag in FLAGS:
        if hasattr(args, flag.dest):
            overrides.setdefault(flag.section, {})[flag.key] = getattr(args, flag.dest)
    return build_config(getattr(args, "config", None), overrides=overrides)


def _verbosity(args: argparse.Namespace) -> int:
    """``-q`` → -1, ``-v`` → 1+, else the command's default: quiet for the one-shot commands, INFO for ``run``."""
    if getattr(args, "quiet", False):
        return -1
    if getattr(args, "verbose", 0):
        return int(args.verbose)
    return -1 if getattr(COMMANDS.get(args.command), "QUIET", False) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv)
    try:
        args = build_parser().parse_args(argv)
        verbosity = _verbosity(args)
        setup_logging(verbosity)
        try:
            args.config = config_file(getattr(args, "config", None), argv)
            config = config_from_args(args)
        except ConfigError as exc:  # a command that diagnoses configs (doctor) reports it as a finding
            if not getattr(COMMANDS.get(args.command), "REPORTS_CONFIG_ERRORS", False):
                raise
            args.config_error, config = exc, Config()
        if getattr(args, "print_config", False):
            sys.stdout.write(to_toml(redacted(config)))
            return 0
        if args.command is None:
            raise ConfigError(f"a command is required: {', '.join(COMMANDS)} (see: edgepose --help)")
        return int(COMMANDS[args.command].execute(args, config))
    except EdgePoseError as exc:
        if exc.exit_code == 0:  # a normal end signalled from deep down, e.g. stdout closed by `| head`
            return 0
        if verbose:
            log.exception("failed")
        print(error_line(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("edgepose: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if verbose:
            raise
        print(error_line(f"unexpected {type(exc).__name__}: {exc} (run with -v for details)"), file=sys.stderr)
        return 1
