"""Subcommands: each module has ``HELP``, ``add_arguments(parser)`` and ``execute(args, config) -> int``."""

from __future__ import annotations

from types import ModuleType

from edgepose.commands import bench, doctor, eval, infer, models, run

COMMANDS: dict[str, ModuleType] = {"run": run, "infer": infer, "models": models, "bench": bench, "doctor": doctor,
                               "eval": eval}  # fmt: skip
