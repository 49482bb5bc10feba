"""``edgepose doctor``'s checks: each looks at one thing and says OK, WARN or FAIL, with the fix.

A line reads ``LEVEL check: detail — fix: what to do``. FAIL is reserved for what stops
``edgepose run`` with this configuration: an invalid config, no usable TFLite runtime (or the
configured one unusable), a missing or corrupt model, the configured camera absent (the run waits
for it, with nothing to do meanwhile), or ``delegate = "edgetpu"`` without a working EdgeTPU.
Everything that only costs speed or features (no Coral, a Coral on USB 2, an unreachable broker,
throttling) is a WARN.

Probes that could crash or hang (importing a runtime, loading libedgetpu, asking picamera2) run in
child processes with a timeout, like :func:`edgepose.inference.runtime.edgetpu_probe.probe_edgetpu`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from edgepose.config import ModelConfig, redact_url
from edgepose.doctor.accelerator import check_coral, check_edgetpu_delegate, check_runtimes
from edgepose.doctor.devices import check_cameras, check_pi_health
from edgepose.doctor.findings import FAIL, OK, WARN, Check, Context, exit_code
from edgepose.errors import EdgePoseError
from edgepose.inference.factory import model_files
from edgepose.manifest import fetch_command, load_manifest, model_choices, model_names, models_dir, verify_file

BROKER_TIMEOUT_S = 3.0


def check_config(ctx: Context) -> list[Check]:
    """Check that the configuration is valid and names a source."""
    where = str(ctx.config_path) if ctx.config_path else "defaults and environment (no --config)"
    if ctx.config_error:
        fix = ctx.config_fix or ("correct it (each key is described in docs/configuration.md); check with: "
                                 "edgepose run --config FILE --print-config")  # fmt: skip
        return [Check(FAIL, "config", ctx.config_error, fix)]
    checks = [Check(OK, "config", f"{where} is valid")]
    cfg = ctx.config
    if not cfg.source.source:
        fix = 'set [source] source = "picamera" or "/dev/video0" in the config, or pass --source'
        checks.append(Check(WARN, "source", "no source configured", fix))
    if ctx.config_path and not (cfg.mqtt.url or cfg.preview.listen or cfg.display.enabled or cfg.output.path):
        checks.append(Check(WARN, "output", "no MQTT, preview or output file configured: results go only to stdout, "
                            "which the service discards", 'set [mqtt] url = "mqtt://host:1883"'))  # fmt: skip
    return checks


def check_models(ctx: Context) -> list[Check]:
    """Check that the configured model (and its EdgeTPU twin) is present and matches the manifest."""
    folder = models_dir(ctx.config.model.models_dir)
    name = ctx.config.model.name
    manifest = load_manifest()
    fetch = fetch_command([name] if name in model_names(manifest) else [], folder)
    try:  # every stage's CPU file is needed; an EdgeTPU twin only with a Coral
        stages = model_files(name, folder, specs=manifest)
    except EdgePoseError as exc:
        return [Check(FAIL, "model", str(exc), f"set [model] name to {model_choices(ModelConfig.name, manifest)}")]
    wanted = [
        (path, needed) for files in stages for path, needed in ((files.cpu_path, True), (files.edgetpu_path, False))
    ]
    specs = {s.file: s for s in manifest}
    checks = []
    for path, needed in wanted:
        if path is None:
            continue
        spec = specs.get(path.name)
        problem = verify_file(spec, path) if spec is not None else None if path.is_file() else "missing"
        if problem is None:
            checks.append(Check(OK, "model", f"{path} {'verified' if spec else 'present'}"))
        elif problem == "permission denied":
            why = "run it as a user who may read that folder (after a system install: see docs/service.md)"
            checks.append(Check(FAIL, "model", f"{path}: {problem}", why))
        elif needed or problem != "missing":
            checks.append(Check(FAIL, "model", f"{path}: {problem}", fetch))
        else:
            checks.append(Check(WARN, "model", f"{path} missing (only needed with a Coral)", fetch))
    return checks


def check_broker(ctx: Context) -> list[Check]:
    """Check that the MQTT broker accepts a TCP connection (only when MQTT is configured)."""
    url = ctx.config.mqtt.url
    if not url:
        return []
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    try:
        with socket.create_connection((host, port), timeout=BROKER_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return [Check(WARN, "broker", f"{redact_url(url)}: cannot connect to {host}:{port} ({reason})",
                      "start the broker (sudo systemctl start mosquitto) or correct [mqtt] url; edgepose keeps "
                      "running and reconnects")]  # fmt: skip
    return [Check(OK, "broker", f"{redact_url(url)}: {host}:{port} accepts connections")]


#: The checks, in the order they are reported.
CHECKS: dict[str, Callable[[Context], list[Check]]] = {
    "config": check_config,
    "runtime": check_runtimes,
    "model": check_models,
    "coral": check_coral,
    "edgetpu": check_edgetpu_delegate,
    "camera": check_cameras,
    "broker": check_broker,
    "pi": check_pi_health,
}


def run_checks(ctx: Context) -> list[Check]:
    """Run every check; a check that breaks becomes a WARN line instead of ending the report."""
    results: list[Check] = []
    for name, check in CHECKS.items():
        try:
            results.extend(check(ctx))
        except Exception as exc:  # a broken check must not hide the others
            results.append(Check(WARN, name, f"check failed: {type(exc).__name__}: {exc}", "report this as a bug"))
    return results


__all__ = [
    "CHECKS", "FAIL", "OK", "WARN", "Check", "Context", "check_cameras", "check_coral", "check_pi_health",
    "exit_code", "run_checks",
]  # fmt: skip
