"""``edgepose doctor``'s checks of the inference stack: the TFLite runtimes, the Coral, the EdgeTPU delegate.

Probes that could crash or hang (importing a runtime, loading libedgetpu) run in child processes with a
timeout, like :func:`edgepose.inference.runtime.edgetpu_probe.probe_edgetpu`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
from pathlib import Path

from edgepose.config import ModelConfig
from edgepose.config.choices import RUNTIME_DISTS
from edgepose.doctor import hardware
from edgepose.doctor.findings import FAIL, OK, WARN, Check, Context, probe
from edgepose.errors import EdgePoseError
from edgepose.inference.runtime.edgetpu_probe import probe_edgetpu
from edgepose.inference.runtime.runtimes import RUNTIMES, Runtime
from edgepose.manifest import models_dir, resolve_model

NO_CORAL_NOTE = "no Coral? then ignore this: edgepose runs on the CPU (XNNPACK)"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _cpu_model(cfg: ModelConfig) -> Path | None:
    """Return the configured CPU model file when it is present (for the runtime probe)."""
    try:
        path = resolve_model(cfg.name, models_dir(cfg.models_dir)).cpu_path
    except EdgePoseError:
        return None
    return path if path is not None and _is_file(path) else None


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file this user can see (a closed folder is the model check's finding, not a crash)."""
    try:
        return path.is_file()
    except PermissionError:
        return False


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
        status, reason = probe(ctx.python, code)
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
    status, reason = probe(ctx.python, f"import ctypes; ctypes.CDLL({library!r})", timeout=15)
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
        files = resolve_model(ctx.config.model.name, models_dir(ctx.config.model.models_dir))
    except EdgePoseError as exc:
        return [Check(WARN, "edgetpu delegate", f"not probed: {exc}", "see the model line")]
    if files.edgetpu_path is None or not _is_file(files.edgetpu_path):
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
