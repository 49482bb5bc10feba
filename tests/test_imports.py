"""The package imports, and `edgepose --help` works, without picamera2, pycoral or tflite_runtime."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

from conftest import cli_env

import edgepose

BLOCKED = ("picamera2", "libcamera", "pycoral", "tflite_runtime", "paho", "pygame", "prometheus_client", "pycocotools")
#: Modules that exist to own a hardware or optional package; they import it lazily too.
BLOCKER = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked for this test: " + name)
        return None
sys.meta_path.insert(0, Block())
"""


def _all_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(edgepose.__path__, "edgepose.") if not m.name.endswith("__main__")]


def test_every_module_imports_without_hardware_packages() -> None:
    """Every module imports; a module that owns a missing package may only refuse with its install hint."""
    code = BLOCKER + (
        "import importlib\nfrom edgepose.errors import BackendUnavailableError\nrefused = []\n"
        f"for name in {_all_modules()!r}:\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except BackendUnavailableError as exc:\n"
        "        refused.append(name)\n        assert 'install' in str(exc)\n"
        "print(' '.join(refused))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    refused = set(proc.stdout.split())
    core = {"edgepose.cli", "edgepose.pipeline.loop", "edgepose.inference.runtime.delegates", "edgepose.commands.run",
            "edgepose.sources", "edgepose.sources.picamera", "edgepose.config"}  # fmt: skip
    assert not refused & core, refused


def test_help_works_without_hardware_packages() -> None:
    code = BLOCKER + "import sys\nfrom edgepose.cli import main\nsys.argv = ['edgepose', '--help']\nmain()\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    assert "usage: edgepose" in proc.stdout
    for command in ("run", "infer", "models", "eval"):
        assert command in proc.stdout


def test_picamera_source_without_picamera2_is_one_line_error() -> None:
    code = BLOCKER + "import sys\nfrom edgepose.cli import main\nsys.exit(main(['run', '--source', 'picamera']))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "picamera2 is not available" in proc.stderr and "python3-picamera2" in proc.stderr


def test_eval_without_pycocotools_names_the_install() -> None:
    args = "['eval', '--annotations', 'a.json', '--images', '.']"
    code = BLOCKER + f"import sys\nfrom edgepose.cli import main\nsys.exit(main({args}))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "needs pycocotools" in proc.stderr and "edgepose[eval]" in proc.stderr
