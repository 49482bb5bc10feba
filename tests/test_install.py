"""install.sh's service install, staged with ``--prefix`` into a temporary root, and the unit it installs.

One staged install per test session (it creates a venv and pip-installs edgepose with its runtime;
the models come from the local mirror), run twice to prove it is idempotent.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MIRROR, ROOT, cli_env, need, needs

INSTALL = ROOT / "install.sh"
UNIT_SOURCE = ROOT / "systemd" / "edgepose.service"
SECRET = "correct horse battery staple"
MAX_EXPOSURE = 2.5

pytestmark = [
    needs("systemd-analyze", shutil.which("systemd-analyze") is not None, "apt install systemd"),
    pytest.mark.slow,  # each test stages a whole install (a venv of its own)
]


@dataclass(frozen=True)
class Staged:
    """A ``--prefix`` install done twice, with what each run printed and left behind."""

    prefix: Path
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    before: dict[str, tuple[str, int, str]]
    after: dict[str, tuple[str, int, str]]
    edited_config: str

    @property
    def unit(self) -> Path:
        return self.prefix / "usr/local/lib/systemd/system/edgepose.service"

    @property
    def config(self) -> Path:
        return self.prefix / "etc/edgepose/config.toml"

    @property
    def edgepose(self) -> Path:
        return self.prefix / "opt/edgepose/bin/edgepose"


def install(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = cli_env({"EDGEPOSE_MODEL_MIRROR": str(MIRROR)})
    env.pop("PYTHON", None)
    return subprocess.run([str(INSTALL), *args], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=ROOT, check=False)  # fmt: skip


def snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """``{relative path: (kind, mode, sha256 or link target)}`` of a tree; compiled bytecode left out."""
    tree: dict[str, tuple[str, int, str]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in [*dirs, *files]:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                tree[rel] = ("link", 0, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                tree[rel] = ("dir", stat.S_IMODE(st.st_mode), "")
            elif not name.endswith(".pyc"):
                tree[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    return tree


@pytest.fixture(scope="session")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Staged:
    base = tmp_path_factory.mktemp("stage")
    prefix = base / "root"
    secret = base / "mqtt_password.txt"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o644)  # the installed copy must still end up 0600
    first = install("--prefix", str(prefix), "--mqtt-password-file", str(secret))
    assert first.returncode == 0, first.stdout + first.stderr
    before = snapshot(prefix)
    config = prefix / "etc/edgepose/config.toml"
    edited = config.read_text() + "\n# edited by the admin\n"
    config.write_text(edited)
    second = install("--prefix", str(prefix), "--mqtt-password-file", str(secret))
    assert second.returncode == 0, second.stdout + second.stderr
    return Staged(prefix, first, second, before, snapshot(prefix), edited)


def test_layout(staged: Staged) -> None:
    p = staged.prefix
    assert os.access(staged.edgepose, os.X_OK)
    assert os.readlink(p / "usr/local/bin/edgepose") == str(staged.edgepose)
    assert staged.unit.is_file() and staged.config.is_file()
    models = sorted(f.name for f in (p / "var/lib/edgepose/models").iterdir())
    assert models == ["movenet_single_pose_lightning_ptq.tflite", "movenet_single_pose_lightning_ptq_edgetpu.tflite"]
    assert (p / "opt/edgepose/pyvenv.cfg").read_text().count("include-system-site-packages = true") == 1
    assert "not enabling or starting the service" in staged.first.stdout
    models_dir = str(p / "var/lib/edgepose/models")
    verify = subprocess.run([str(staged.edgepose), "models", "verify", "--models-dir", models_dir],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert verify.returncode == 0 and verify.stdout.count("OK ") == 2, verify.stdout + verify.stderr


def test_the_manual_is_installed_where_the_unit_points(staged: Staged) -> None:
    docs = staged.prefix / "opt/edgepose/share/doc/edgepose"
    assert (docs / "README.md").read_text() == (ROOT / "README.md").read_text()
    pages = sorted(page.name for page in (ROOT / "docs").glob("*.md"))
    assert len(pages) > 5 and sorted(page.name for page in (docs / "docs").glob("*.md")) == pages
    lines = [line for line in staged.unit.read_text().splitlines() if line.startswith("Documentation=")]
    assert len(lines) == 1
    uris = lines[0].removeprefix("Documentation=").split()
    assert f"file://{docs}/docs/service.md" in uris
    assert [uri for uri in uris if not Path(uri.removeprefix("file://")).is_file()] == []


def test_second_run_changes_nothing_and_keeps_the_config(staged: Staged) -> None:
    config = str(staged.config.relative_to(staged.prefix))
    before = {k: v for k, v in staged.before.items() if k != config}
    after = {k: v for k, v in staged.after.items() if k != config}
    assert len(before) > 1000  # the whole venv is compared, not just the files install.sh writes itself
    assert before.keys() == after.keys(), before.keys() ^ after.keys()
    changed = [k for k in before if before[k] != after[k]]
    assert changed == [], changed
    assert staged.config.read_text() == staged.edited_config
    assert staged.after[config][1] == 0o640
    assert "keeping the existing" in staged.second.stdout


def test_secrets_are_0600_and_never_printed(staged: Staged) -> None:
    secret = staged.prefix / "etc/edgepose/mqtt_password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_text() == SECRET + "\n"
    for run in (staged.first, staged.second):
        assert SECRET not in run.stdout + run.stderr


def test_unit_verifies_without_any_output(staged: Staged) -> None:
    proc = subprocess.run(["systemd-analyze", "verify", str(staged.unit)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr


def test_unit_points_into_the_prefix(staged: Staged) -> None:
    text = staged.unit.read_text()
    assert f"ExecStart={staged.edgepose} run --config {staged.config}\n" in text
    assert f"LoadCredential=mqtt_password:{staged.prefix}/etc/edgepose/mqtt_password\n" in text
    # Only the paths differ from the unit in the repository.
    assert text.replace(str(staged.prefix), "") == UNIT_SOURCE.read_text()


@pytest.mark.parametrize("which", ["repository", "installed"])
def test_security_exposure_at_most_2_5(staged: Staged, which: str) -> None:
    unit = UNIT_SOURCE if which == "repository" else staged.unit
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    match = re.search(r"Overall exposure level for edgepose\.service: (\d+(?:\.\d+)?)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match[1]) <= MAX_EXPOSURE, proc.stdout


def test_installed_command_runs_with_the_installed_config(staged: Staged) -> None:
    printed = subprocess.run([str(staged.edgepose), "run", "--config", str(staged.config), "--print-config"],
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    assert f'models_dir = "{staged.prefix}/var/lib/edgepose/models"' in printed.stdout
    run = subprocess.run([str(staged.edgepose), "run", "--config", str(staged.config), "--source", "synthetic:160x120",
                          "--max-frames", "3", "--delegate", "xnnpack", "--output", "-"],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == 3


def test_uninstall_keeps_config_and_models(staged: Staged, tmp_path: Path) -> None:
    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", "--link", str(staged.prefix), str(copy)], check=True)  # hard links: cheap
    proc = install("--uninstall", "--prefix", str(copy), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not (copy / "opt/edgepose").exists()
    assert not (copy / "usr/local/lib/systemd/system/edgepose.service").exists()
    assert not (copy / "usr/local/bin/edgepose").is_symlink()
    assert (copy / "etc/edgepose/config.toml").read_text() == staged.edited_config
    assert (copy / "etc/edgepose/mqtt_password").is_file()
    assert len(list((copy / "var/lib/edgepose/models").glob("*.tflite"))) == 2
    assert "kept" in proc.stdout and "config" in proc.stdout and "models" in proc.stdout
    assert staged.edgepose.exists(), "the original staging root is untouched"


def test_usage_errors() -> None:
    bad = install("--system", "--no-such-option", timeout=30)
    assert bad.returncode == 2 and "unknown option" in bad.stderr
    spaced = install("--prefix", "/tmp/edgepose test root", timeout=30)
    assert spaced.returncode == 1 and "--prefix may only contain" in spaced.stderr
    helped = install("--help", timeout=30)
    assert helped.returncode == 0 and "--system" in helped.stdout and "--with-tflite" in helped.stdout


def test_system_install_needs_root() -> None:
    need("root (to drop to an unprivileged user)", os.geteuid() == 0, "run the tests as root, as .ci/run does")
    need("setpriv", shutil.which("setpriv") is not None, "apt install util-linux")
    # The two scripts the check runs, copied where the unprivileged user can read them: the checkout
    # itself may lie under a folder only root can enter (a clone in `mktemp -d`, or pytest's tmp_path).
    copy = Path(tempfile.mkdtemp(prefix="edgepose-needs-root-"))
    try:
        (copy / "scripts").mkdir()
        for script in ("install.sh", "scripts/install-system.sh"):
            shutil.copyfile(ROOT / script, copy / script)
        for path in (copy, copy / "scripts", copy / "install.sh", copy / "scripts/install-system.sh"):
            path.chmod(0o755)  # whatever the umask: readable, executable and enterable by all
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash",
                               str(copy / "install.sh"), "--system"], capture_output=True, text=True, timeout=30,
                              check=False, cwd="/")  # fmt: skip
    finally:
        shutil.rmtree(copy)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "needs root" in proc.stderr


def test_doctor_runs_from_the_installed_tree(staged: Staged) -> None:
    assert "OK config: " in staged.second.stdout
    assert re.search(r"^(OK|WARN|FAIL) camera: ", staged.second.stdout, re.M)
