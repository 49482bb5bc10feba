"""Subcommands: each module has ``HELP``, ``add_arguments(parser)`` and ``execute(args, config) -> int``."""

from __future__ import annotations

from types import ModuleType

from edgepose.commands import analyze, bench, doctor, eval, infer, models, run

COMMANDS: dict[str, ModuleType] = {"run": run, "infer": infer, "analyze": analyze, "eval": eval, "models": models,
                                   "bench": bench, "doctor": doctor}  # fmt: skip
