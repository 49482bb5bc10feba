"""``edgepose doctor``'s checks: each looks at one thing and says OK, WARN or FAIL, with the fix.

A line reads ``LEVEL check: detail — fix: what to do``. FAIL is reserved for what stops
``edgepose run`` with this configuration: an invalid config, no usable TFLite runtime (or the
configured one unusable), a missing or corrupt model, the configured camera absent, or
``delegate = "edgetpu"`` without a working EdgeTPU. Everything that only costs speed or features
(no Coral, a Coral on USB 2, an unreachable broker, throttling) is a WARN.

Probes that could crash or hang (importing a runtime, loading libedgetpu, asking picamera2) run in
child processes with a timeout, like :func:`edgepose.inference.backends.probe_edgetpu`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from edgepose import hardware
from edgepose.config import Config, ModelConfig, redact_url
from edgepose.errors import EdgePoseError
from edgepose.inference.backends import RUNTIMES, Runtime, probe_edgetpu
from edgepose.models import default_models_dir, load_manifest, resolve_model, verify_file

OK, WARN, FAIL = "OK", "WARN", "FAIL"
PROBE_TIMEOUT_S = 60.0
BROKER_TIMEOUT_S = 3.0
HOT_C = 80.0
RUNTIME_DISTS = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}
NO_CORAL_NOTE = "no Coral? then ignore this: edgepose runs on the CPU (XNNPACK)"


@dataclass(frozen=True)
class Check:
    """One finding."""

    level: str
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        """Render ``LEVEL name: detail — fix: …``."""
        text = f"{self.level} {self.name}: {self.detail}"
        return f"{text} — fix: {self.fix}" if self.fix and self.level != OK else text


@dataclass
class Context:
    """What the checks look at.

    Attributes:
        config: The configuration (defaults when it could not be built).
        config_path: The ``--config`` file, if any.
        config_error: Why the configuration is invalid, if it is.
        root: File system root for hardware lookups (tests use a fake tree).
        python: Interpreter for child-process probes.
        usable_runtimes: Filled by the runtime check for the delegate check.
    """

    config: Config
    config_path: Path | None = None
    config_error: str | None = None
    root: Path = Path("/")
    python: str = sys.executable
    usable_runtimes: list[Runtime] = field(default_factory=list)


def models_dir(cfg: ModelConfig) -> Path:
    """Return the configured models folder, or the default one (as ``edgepose run`` resolves it)."""
    return Path(cfg.models_dir).expanduser() if cfg.models_dir else default_models_dir()


def _probe(python: str, code: str, timeout: float = PROBE_TIMEOUT_S) -> tuple[int, str]:
    """Run ``python -c code``; return its exit status (negative: killed by a signal) and last stderr line."""
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {timeout:.0f} s"
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    return proc.returncode, lines[-1] if lines else ""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _cpu_model(cfg: ModelConfig) -> Path | None:
    """Return the configured CPU model file when it is present (for the runtime probe)."""
    try:
        path = resolve_model(cfg.name, models_dir(cfg)).cpu_path
    except EdgePoseError:
        return None
    return path if path is not None and path.is_file() else None


def check_config(ctx: Context) -> list[Check]:
    """Check that the configuration is valid and names a source."""
    where = str(ctx.config_path) if ctx.config_path else "defaults and environment (no --config)"
    if ctx.config_error:
        return [Check(FAIL, "config", ctx.config_error, "correct it (each key is described in the README); "
                      "check with: edgepose run --config FILE --print-config")]  # fmt: skip
    checks = [Check(OK, "config", f"{where} is valid")]
    cfg = ctx.config
    if not cfg.source.source:
        fix = 'set [source] source = "picamera" or "/dev/video0" in the config, or pass --source'
        checks.append(Check(WARN, "source", "no source configured", fix))
    if ctx.config_path and not (cfg.mqtt.url or cfg.preview.listen or cfg.display.enabled or cfg.output.path):
        checks.append(Check(WARN, "output", "no MQTT, preview or output file configured: results go only to stdout, "
                            "which the service discards", 'set [mqtt] url = "mqtt://host:1883"'))  # fmt: skip
    return checks


def check_runtimes(ctx: Context) -> list[Check]:
    """Check that at least one TFLite runtime imports, with a numpy it works with."""
    numpy_version = _version("numpy")
    wanted = ctx.config.model.runtime
    model = _cpu_model(ctx.config.model)
    checks: list[Check] = []
    for name in RUNTIMES:
        if importlib.util.find_spec(name) is None:
            if wanted == name:
                checks.append(Check(FAIL, f"runtime {name}", "not installed (the config asks for it)",
                                    f"pip install {RUNTIME_DISTS[name]}, or set runtime = \"auto\""))  # fmt: skip
            continue
        version = _version(RUNTIME_DISTS[name])
        code = f"import {name}.interpreter as m"
        if model is not None:  # numpy mismatches only show when an interpreter is built
            code += f"; i = m.Interpreter(model_path={str(model)!r}); i.allocate_tensors(); i.invoke()"
        status, reason = _probe(ctx.python, code)
        if status == 0:
            ctx.usable_runtimes.append(Runtime(name, version, None))
            ran = f", ran {model.name}" if model is not None else ""
            checks.append(Check(OK, f"runtime {name}", f"{version} with numpy {numpy_version}{ran}"))
            continue
        if name == "tflite_runtime" and int(numpy_version.split(".")[0] or 0) >= 2:
            detail = f"{version} cannot run with numpy {numpy_version} (it is built for numpy 1.x)"
            fix = "install numpy<2 in its venv (./install.sh --runtime tflite), or use ai-edge-litert"
        else:
            detail = f"{version} does not import: {reason}"
            fix = f"reinstall it: pip install --force-reinstall {RUNTIME_DISTS[name]}"
        checks.append(Check(WARN, f"runtime {name}", detail, fix))
    if not ctx.usable_runtimes:
        checks.append(Check(FAIL, "runtime", "no usable TFLite runtime", "pip install ai-edge-litert, or ./install.sh"))
    elif wanted != "auto" and wanted not in {r.name for r in ctx.usable_runtimes}:
        checks = [Check(FAIL, c.name, c.detail, c.fix) if c.name == f"runtime {wanted}" else c for c in checks]
    return checks


def check_coral(ctx: Context) -> list[Check]:
    """Look for Coral hardware: USB Accelerators (with their link speed) and PCIe/M.2 modules."""
    checks = []
    for coral in hardware.usb_corals(ctx.root):
        where = f"USB Accelerator at {coral.sysfs.name}, {coral.state}"
        if coral.speed_mbps and coral.speed_mbps < 5000:
            checks.append(Check(WARN, "coral", f"{where}, on a USB 2 link ({coral.speed_mbps} Mb/s)",
                                "plug it into a USB 3 (blue) port with a short cable: USB 2 makes it several "
                                "times slower"))  # fmt: skip
        else:
            speed = f"{coral.speed_mbps / 1000:g} Gb/s" if coral.speed_mbps else "unknown speed"
            checks.append(Check(OK, "coral", f"{where}, USB 3 ({speed})"))
        if coral.node is not None and coral.node.exists() and not os.access(coral.node, os.R_OK | os.W_OK):
            fix = "add the user to the plugdev group and install libedgetpu1-std (its udev rule)"
            checks.append(Check(WARN, "coral", f"no permission on {coral.node}", fix))
    for node in hardware.pcie_corals(ctx.root):
        if os.access(node, os.R_OK | os.W_OK):
            checks.append(Check(OK, "coral", f"PCIe/M.2 module at {node}"))
        else:
            checks.append(Check(WARN, "coral", f"PCIe/M.2 module at {node} but no permission",
                                "add the user to the apex group (see Coral's PCIe driver guide)"))  # fmt: skip
    if not checks:
        level = FAIL if ctx.config.model.delegate == "edgetpu" else WARN
        checks.append(Check(level, "edgetpu", "no Coral EdgeTPU found (no USB Accelerator 1a6e:089a or 18d1:9302, "
                            "no /dev/apex_0)", f"plug the Coral USB Accelerator into a USB 3 port, or fit an "
                            f"M.2/PCIe Coral with its driver; {NO_CORAL_NOTE}"))  # fmt: skip
    return checks


def _libedgetpu_package() -> str:
    for package in ("libedgetpu1-std", "libedgetpu1-max"):
        try:
            proc = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", package], capture_output=True,
                                  text=True, timeout=10, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return ""
        if proc.returncode == 0 and proc.stdout.startswith("install ok installed"):
            return f"{package} {proc.stdout.split()[-1]}"
    return ""


def check_edgetpu_delegate(ctx: Context) -> list[Check]:
    """Check that libedgetpu loads and, with a Coral attached, runs the model under each runtime."""
    library = ctx.config.model.edgetpu_library
    must = ctx.config.model.delegate == "edgetpu"
    status, reason = _probe(ctx.python, f"import ctypes; ctypes.CDLL({library!r})", timeout=15)
    if status != 0:
        return [Check(FAIL if must else WARN, "edgetpu delegate", f"{library} cannot be loaded ({reason})",
                      "sudo ./install.sh --system --edgetpu (libedgetpu1-std from Coral's apt repository); "
                      f"{NO_CORAL_NOTE}")]  # fmt: skip
    package = _libedgetpu_package() or "libedgetpu (package unknown)"
    if not ctx.usable_runtimes:
        return [Check(WARN, "edgetpu delegate", f"{package} present, but no runtime to load it", "see runtime")]
    if not (hardware.usb_corals(ctx.root) or hardware.pcie_corals(ctx.root)):
        return [Check(FAIL if must else WARN, "edgetpu delegate", f"{package} present, no Coral attached",
                      f"plug in the Coral; {NO_CORAL_NOTE}")]  # fmt: skip
    try:
        files = resolve_model(ctx.config.model.name, models_dir(ctx.config.model))
    except EdgePoseError as exc:
        return [Check(WARN, "edgetpu delegate", f"not probed: {exc}", "see the model line")]
    if files.edgetpu_path is None or not files.edgetpu_path.is_file():
        return [Check(FAIL if must else WARN, "edgetpu delegate", "not probed: no _edgetpu model",
                      "edgepose models fetch")]  # fmt: skip
    checks = []
    for runtime in ctx.usable_runtimes:
        pairing = f"{runtime.name} {runtime.version} with {package}"
        problem = probe_edgetpu(runtime, library, files.edgetpu_path)
        if problem is None:
            checks.append(Check(OK, "edgetpu delegate", f"{pairing}: ran {files.edgetpu_path.name}"))
        else:
            checks.append(Check(FAIL if must else WARN, "edgetpu delegate", f"{pairing}: {problem}",
                                "libedgetpu must be built for the same TensorFlow Lite as the runtime "
                                "(google-coral/edgetpu#812): use the runtime version it was built for "
                                f"(--runtime), or a libedgetpu built for {runtime.name} {runtime.version}; "
                                "edgepose falls back to the CPU meanwhile"))  # fmt: skip
    return checks


def check_cameras(ctx: Context) -> list[Check]:
    """Look for V4L2 cameras and picamera2's cameras; FAIL only when the configured camera is missing."""
    cameras = [d for d in hardware.video_devices(ctx.root) if d.capture]
    found = [f"{d.node} ({d.name or 'unnamed'})" for d in cameras]
    checks = []
    for dev in cameras:
        if not dev.accessible:
            checks.append(Check(WARN, "camera", f"no permission on {dev.node}",
                                "add the user to the video group: sudo usermod -aG video $USER (the service "
                                "user has it)"))  # fmt: skip
    picamera = importlib.util.find_spec("picamera2") is not None
    pi_cameras = 0
    if picamera:
        status, reason = _probe(ctx.python, "from picamera2 import Picamera2; "
                                "print(len(Picamera2.global_camera_info()), file=__import__('sys').stderr)",
                                timeout=20)  # fmt: skip
        pi_cameras = int(reason) if status == 0 and reason.isdigit() else 0
        found.extend([f"{pi_cameras} Pi camera(s) via picamera2"] if pi_cameras else [])
    source = ctx.config.source.source.strip()
    wants_picamera = source.lower().startswith("picamera")
    wants_v4l2 = source.isdigit() or source.startswith("/dev/video")
    missing_v4l2 = wants_v4l2 and not any(_same_device(source, d.node) for d in cameras)
    if (wants_picamera and not pi_cameras) or missing_v4l2:
        checks.append(Check(FAIL, "camera", f"the configured source {source} is not present "
                            f"(found: {', '.join(found) or 'no camera'})", _camera_fix(picamera)))  # fmt: skip
    elif found:
        checks.append(Check(OK, "camera", ", ".join(found)))
    else:
        where = "picamera2 sees none" if picamera else "picamera2 is not installed"
        detail = f"no camera found (no V4L2 capture device; {where})"
        checks.append(Check(WARN, "camera", detail, _camera_fix(picamera)))
    return checks


def _same_device(source: str, node: Path) -> bool:
    return node.name == (f"video{source}" if source.isdigit() else Path(source).name)


def _camera_fix(picamera: bool) -> str:
    pi = "connect the Pi camera ribbon and check: rpicam-hello --list-cameras" if picamera else (
        "for a Pi camera install python3-picamera2 (sudo apt install python3-picamera2)")
    return f"connect a USB camera (it appears as /dev/video0, see ls /dev/video*) or, {pi}"


def check_models(ctx: Context) -> list[Check]:
    """Check that the configured model (and its EdgeTPU twin) is present and matches the manifest."""
    folder = models_dir(ctx.config.model)
    fetch = f"edgepose models fetch --models-dir {folder}"
    try:
        files = resolve_model(ctx.config.model.name, folder)
    except EdgePoseError as exc:
        return [Check(FAIL, "model", str(exc), "set [model] name to lightning or thunder, or a .tflite path")]
    specs = {s.file: s for s in load_manifest()}
    checks = []
    for path, needed in ((files.cpu_path, True), (files.edgetpu_path, False)):
        if path is None:
            continue
        spec = specs.get(path.name)
        problem = verify_file(spec, path) if spec is not None else None if path.is_file() else "missing"
        if problem is None:
            checks.append(Check(OK, "model", f"{path} {'verified' if spec else 'present'}"))
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


def check_pi_health(ctx: Context) -> list[Check]:
    """Report Raspberry Pi throttling (``vcgencmd get_throttled``) and the hottest thermal zone."""
    checks = []
    bits, error = hardware.throttled()
    if error:
        checks.append(Check(WARN, "throttling", f"vcgencmd get_throttled failed: {error}",
                            "add the user to the video group (for /dev/vchiq)"))  # fmt: skip
    elif bits is not None and bits:
        checks.append(Check(WARN, "throttling", f"{bits:#x}: {', '.join(hardware.throttle_reasons(bits))}",
                            "use the official power supply (5 V 3 A for a Pi 4, 5 V 5 A for a Pi 5) and a "
                            "heatsink or fan"))  # fmt: skip
    elif bits is not None:
        checks.append(Check(OK, "throttling", "none since boot"))
    temps = hardware.temperatures(ctx.root)
    if temps:
        zone, hottest = max(temps.items(), key=lambda kv: kv[1])
        if hottest >= HOT_C:
            checks.append(Check(WARN, "temperature", f"{hottest:.1f} °C ({zone}): the Pi slows down from 80 °C",
                                "add a heatsink or fan and give it air"))  # fmt: skip
        else:
            checks.append(Check(OK, "temperature", f"{hottest:.1f} °C ({zone})"))
    return checks


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


def exit_code(results: list[Check]) -> int:
    """1 when anything FAILs (edgepose run would not work), else 0."""
    return 1 if any(c.level == FAIL for c in results) else 0
