"""Shared fixtures: the real models and test images from ../shared, and the CLI as a subprocess.

A test that needs a tool this machine may lack (Chromium, Debian's python3-seccomp, ``.venv-tflite``,
``.venv-pi``, systemd-analyze, a C compiler…) says so with :func:`need` or :func:`needs`: it is skipped here, and
under ``.ci/run``, which installs every such tool and sets :data:`NO_SKIP_ENV`, every skip is a
failure instead (:func:`pytest_runtest_makereport`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The legacy tflite-runtime venv (``./install.sh --with-tflite``), for the tests that compare both runtimes.
TFLITE_VENV_PYTHON = ROOT / ".venv-tflite" / "bin" / "python"
#: The Pi-like venv (``./install.sh --with-pi-env``): the system's Python and numpy, constraints-pi.txt's OpenCV.
PI_VENV_PYTHON = ROOT / ".venv-pi" / "bin" / "python"
#: Debian's Python, which has python3-seccomp (the unit's filters are applied through it in tests).
SYSTEM_PYTHON = "/usr/bin/python3"
SHARED = ROOT.parent / "shared"
TESTDATA = Path(os.environ.get("EDGEPOSE_TESTDATA", SHARED / "testdata"))
MIRROR = Path(os.environ.get("EDGEPOSE_MODEL_MIRROR", SHARED / "models"))
#: Set to ``1`` by ``.ci/run``: a skipped test fails (the tools are installed there, so a skip hides a gap).
NO_SKIP_ENV = "EDGEPOSE_TEST_NO_SKIP"
LIGHTNING = "movenet_single_pose_lightning_ptq.tflite"
LIGHTNING_EDGETPU = "movenet_single_pose_lightning_ptq_edgetpu.tflite"
POSENET = "posenet_mobilenet_v1_075_481_641_16_quant.tflite"
POSENET_EDGETPU = "posenet_mobilenet_v1_075_481_641_16_quant_edgetpu.tflite"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder filled from the mirror by the real ``edgepose models fetch``."""
    folder = tmp_path_factory.mktemp("models")
    proc = run_cli("models", "fetch", "--from", str(MIRROR), "--models-dir", str(folder))
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.fixture(scope="session")
def posenet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with PoseNet prepared from the mirror by the real ``edgepose models fetch posenet``."""
    folder = tmp_path_factory.mktemp("posenet-models")
    proc = run_cli("models", "fetch", "posenet", "--from", str(MIRROR), "--models-dir", str(folder))
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.fixture(scope="session")
def lightning_path(models_dir: Path) -> Path:
    """The real Lightning INT8 model."""
    return models_dir / LIGHTNING


@pytest.fixture(scope="session")
def blazepose_models(models_dir: Path) -> Path:
    """The models folder with BlazePose's two models added by the real ``edgepose models fetch blazepose``."""
    proc = run_cli("models", "fetch", "blazepose", "--from", str(MIRROR), "--models-dir", str(models_dir))
    assert proc.returncode == 0, proc.stderr
    return models_dir


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The folder of real photos with reference outputs."""
    return TESTDATA


def _missing(tool: str, install: str) -> str:
    return f"{tool} is missing ({install}; .ci/run installs it)"


def need(tool: str, present: bool, install: str) -> None:
    """Skip the running test when ``tool`` is not ``present`` (a failure under ``.ci/run``).

    Args:
        tool: What is missing, e.g. ``"Chromium"``.
        present: Whether it is there.
        install: How to get it, e.g. ``"apt install chromium"``.
    """
    if not present:
        pytest.skip(_missing(tool, install))


def needs(tool: str, present: bool, install: str) -> pytest.MarkDecorator:
    """The marker form of :func:`need`, for a test or (as ``pytestmark``) a whole module."""
    return pytest.mark.skipif(not present, reason=_missing(tool, install))


def _fail_if_skipped(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Under ``.ci/run`` (:data:`NO_SKIP_ENV`), turn a skip into a failure that says why it skipped."""
    if os.environ.get(NO_SKIP_ENV) != "1" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under {NO_SKIP_ENV}=1 (.ci/run installs every tool the tests need): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A skipped test (``need``, ``needs``, any ``pytest.skip``) fails under ``.ci/run``."""
    outcome = yield
    _fail_if_skipped(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module skipped as a whole fails under ``.ci/run`` too (a collection error)."""
    outcome = yield
    _fail_if_skipped(outcome.get_result())


def need_tflite_venv() -> None:
    """Skip without ``.venv-tflite`` (a failure under ``.ci/run``)."""
    need(".venv-tflite", TFLITE_VENV_PYTHON.exists(), "./install.sh --with-tflite")


def need_pi_venv() -> None:
    """Skip without ``.venv-pi`` (a failure under ``.ci/run``)."""
    need(".venv-pi", PI_VENV_PYTHON.exists(), "./install.sh --with-pi-env, after sudo apt install python3-numpy")


def need_seccomp() -> None:
    """Skip without Debian's python3-seccomp for :data:`SYSTEM_PYTHON` (a failure under ``.ci/run``)."""
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True, check=False)
    need("Debian's python3-seccomp", probe.returncode == 0, "apt install python3-seccomp")


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for CLI subprocesses: no stray EDGEPOSE_* settings from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPOSE_") or k == "EDGEPOSE_MODEL_MIRROR"}
    env.update(extra or {})
    return env


def eventually(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m edgepose ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "edgepose", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(env),
        cwd=cwd,
        input=input,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, needle: str = "") -> None:
    """Assert a clean failure: exit ``code``, one ``edgepose: error:`` line naming ``needle``, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgepose: error:")]
    assert len(errors) == 1, proc.stderr
    assert needle.lower() in errors[0].lower(), errors[0]


def model_args(models_dir: Path) -> list[str]:
    """Common flags pointing the CLI at the test models folder."""
    return ["--models-dir", str(models_dir)]


@pytest.fixture
def runs() -> Iterator[list[Any]]:
    """CLI processes a test started (objects with a ``proc``); killed at the end whatever happens."""
    started: list[Any] = []
    yield started
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
