"""``edgepose doctor``: what is installed and attached, and what to fix, one line per finding."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgepose.config import Config
from edgepose.config.flags import add_command_flags
from edgepose.doctor.checks import Context, exit_code, run_checks
from edgepose.errors import ConfigError
from edgepose.system_install import UnreadableConfigError

HELP = "check runtimes, delegates, Coral, cameras, models, config and broker; say what to fix"
#: The CLI hands an invalid config to this command (its ConfigError as ``args.config_error``) instead of stopping.
REPORTS_CONFIG_ERRORS = True


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the doctor flags (only the common ones so far)."""
    add_command_flags(parser, "doctor")
    parser.epilog = ("Each line: OK|WARN|FAIL <check>: <detail> — fix: <what to do>. Exit status 1 when a FAIL "
                     "means edgepose run would not work with this config, else 0.")  # fmt: skip


def execute(args: argparse.Namespace, config: Config) -> int:
    """Print one line per finding; return 1 if anything FAILs."""
    config_path: Path | None = getattr(args, "config", None)
    error: ConfigError | None = getattr(args, "config_error", None)
    ctx = Context(config=config, config_path=config_path, config_error=str(error) if error else None)
    if isinstance(error, UnreadableConfigError):
        ctx.config_error, ctx.config_fix = error.problem, error.fix
    results = run_checks(ctx)
    for result in results:
        print(result.line(), flush=True)
    code = exit_code(results)
    if code:
        print("edgepose doctor: FAIL above: edgepose run will not work until it is fixed", file=sys.stderr)
    return code
