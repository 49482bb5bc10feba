"""``edgepose doctor``'s checks of a system install's units: one per camera, ``edgepose@NAME.service``.

Each instance's ``NAME.toml`` (next to the install's ``config.toml``: ``/etc/edgepose``, or under the prefix
of a staged install) is read as its unit reads it and held to the checks of a single config (valid, its
models, its camera), in lines named ``instance NAME …``. Across all the install's units, the plain
``edgepose.service`` among them: two that ask for the EdgeTPU share one Coral (the first to start gets it,
the others run on the CPU), two that open the same camera cannot both have it, and two that publish
under one device id push each other off the broker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from edgepose.config import Config, build_config
from edgepose.doctor.findings import OK, WARN, Check, Context
from edgepose.errors import EdgePoseError
from edgepose.inference.factory import model_files
from edgepose.inference.runtime.corals import pcie_corals, usb_corals
from edgepose.manifest import models_dir
from edgepose.sinks.mqtt.settings import device_id
from edgepose.system_install import INSTANCE_ENV

#: Where the docs say how several cameras share a machine.
SEVERAL_CAMERAS = "docs/service.md, Several cameras"

PerConfig = Callable[[Context], list[Check]]


def unit_environment(unit: str) -> dict[str, str]:
    """Return what the unit sets that edgepose reads: the instance name of ``edgepose@NAME.service``."""
    name = unit.removesuffix(".service").partition("@")[2]
    return {INSTANCE_ENV: name} if name else {}


def check_instances(ctx: Context, per_config: Sequence[PerConfig]) -> list[Check]:
    """Check every instance's config with ``per_config``, then what the units must not share.

    Args:
        ctx: The doctor's context; :attr:`~Context.units` names the install's units and their configs.
        per_config: The checks of one config, the config check first (then model, camera), run for each
            instance (only the first when its config cannot be read).
    """
    configs: dict[str, Config] = {}
    checks: list[Check] = []
    for unit, path in ctx.units.items():
        environ = unit_environment(unit)
        try:
            config = build_config(path, environ=environ)
        except EdgePoseError as exc:
            error = str(exc)
            config = Config()
        else:
            error = ""
            configs[unit] = config
        if not environ:  # the plain unit's config is the doctor's own, checked above
            continue
        label = f"instance {environ[INSTANCE_ENV]}"
        sub = Context(config=config, config_path=path, config_error=error or None, root=ctx.root, python=ctx.python)
        for check in per_config[:1] if error else per_config:  # an unreadable config: only its own line
            for finding in check(sub):
                if finding.name == "config" and finding.level == OK:
                    details = (f"device id {device_id(config.mqtt, environ)}, source {config.source.source or '-'}, "
                               f"delegate {config.model.delegate}")  # fmt: skip
                    finding = replace(finding, detail=f"{finding.detail} ({details})")
                checks.append(replace(finding, name=f"{label} {finding.name}"))
    return checks + _shared(ctx, configs)


def _shared(ctx: Context, configs: dict[str, Config]) -> list[Check]:
    """Return what two units would fight over: the Coral, a camera, a device id."""
    checks = []
    askers = [unit for unit, config in configs.items() if _asks_for_edgetpu(config)]
    if len(askers) > 1 and (usb_corals(ctx.root) or pcie_corals(ctx.root)):
        checks.append(Check(WARN, "coral sharing", f"{', '.join(askers)} ask for the EdgeTPU: one Coral serves one "
                            "process, so the first to start gets it and the others run on the CPU (a unit with "
                            "delegate = \"edgetpu\" stops instead)", "give all but one delegate = \"xnnpack\" (so it "
                            f"is clear which has the Coral); see {SEVERAL_CAMERAS}"))  # fmt: skip
    cameras: dict[str, list[str]] = defaultdict(list)
    ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    for unit, config in configs.items():
        source = config.source.source.strip()
        if source.lower().startswith("picamera") or source.startswith("/dev/") or source.isdigit():
            cameras[source.lower()].append(unit)
        if config.mqtt.url:
            ids[(config.mqtt.prefix, device_id(config.mqtt, unit_environment(unit)))].append(unit)
    for source, units in cameras.items():
        if len(units) > 1:
            checks.append(Check(WARN, "cameras", f"{', '.join(units)} all read {source}: a camera serves one "
                                "process", "give each instance its own [source] source"))  # fmt: skip
    for (prefix, device), units in ids.items():
        if len(units) > 1:
            checks.append(Check(WARN, "device ids", f"{', '.join(units)} all publish as {prefix}/{device}: the broker "
                                "lets one client per id connect, so they push each other off",
                                "give each its own [mqtt] device_id (an instance's default is its name)"))  # fmt: skip
    return checks


def _asks_for_edgetpu(config: Config) -> bool:
    """Whether a unit with this config tries the EdgeTPU: ``edgetpu``, or ``auto`` with an EdgeTPU model."""
    cfg = config.model
    if cfg.delegate != "auto":
        return cfg.delegate == "edgetpu"
    try:
        stages = model_files(cfg.name, models_dir(cfg.models_dir))
    except EdgePoseError:
        return False
    return any(_is_file(files.edgetpu_path) for files in stages)


def _is_file(path: Path | None) -> bool:
    try:
        return path is not None and path.is_file()
    except OSError:
        return False
