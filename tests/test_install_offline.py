"""The offline service install (a wheelhouse, no package index), failed upgrades, and the installed CLI's config.

One wheelhouse per session, made by scripts/make-wheelhouse.sh the way docs/service.md says (it needs the
package index or pip's cache), and one ``--prefix`` install from it with every index and proxy pointed
at a local server that counts what reaches it. The install's root is a world-readable folder so that an
unprivileged user can run the installed command.
"""

from __future__ import annotations

import grp
import http.server
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import LIGHTNING, MIRROR, ROOT, cli_env
from test_install import snapshot

from edgepose import __version__

INSTALL = ROOT / "install.sh"
MAKE_WHEELHOUSE = ROOT / "scripts" / "make-wheelhouse.sh"
PI_PIN = re.search(r"^opencv-python-headless==(\S+)$", (ROOT / "constraints-pi.txt").read_text(), re.M)
NEWER_OPENCV = "5.0.0.93"  # in the wheelhouse too: the pin, not the wheelhouse, decides

pytestmark = pytest.mark.slow  # each test builds or runs a whole install


@dataclass(frozen=True)
class Offline:
    """A ``--prefix`` install from the wheelhouse, with what it printed and what reached the network."""

    prefix: Path
    proc: subprocess.CompletedProcess[str]
    requests: list[str]

    @property
    def edgepose(self) -> Path:
        return self.prefix / "opt/edgepose/bin/edgepose"

    @property
    def config(self) -> Path:
        return self.prefix / "etc/edgepose/config.toml"

    @property
    def models(self) -> Path:
        return self.prefix / "var/lib/edgepose/models"


class _Counter(http.server.BaseHTTPRequestHandler):
    """Answers every request, proxy CONNECT included, with 503, and writes it down."""

    def _refuse(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")  # type: ignore[attr-defined]
        self.send_error(503)

    do_GET = do_HEAD = do_POST = do_CONNECT = _refuse

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def no_network() -> Iterator[tuple[dict[str, str], list[str]]]:
    """Environment variables sending every index and proxy to a local server, and the requests it saw."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {"PIP_INDEX_URL": f"{url}/simple", "PIP_EXTRA_INDEX_URL": f"{url}/simple", "NO_PROXY": "", "no_proxy": ""}
    env |= {name: url for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")}
    yield env, server.requests  # type: ignore[attr-defined]
    server.shutdown()
    thread.join()


def install(
    *args: str, env: dict[str, str] | None = None, drop: tuple[str, ...] = (), logs: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run install.sh; a failed run leaves pip's output in ``logs`` (its TMPDIR)."""
    environment = cli_env(env)
    for name in ("PYTHON", "EDGEPOSE_MODEL_MIRROR", *drop):
        environment.pop(name, None)
    if logs is not None:
        environment["TMPDIR"] = str(logs)
    return subprocess.run([str(INSTALL), *args], capture_output=True, text=True, timeout=900, env=environment,
                          cwd=ROOT, check=False)  # fmt: skip


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The script's single ``install.sh: error:`` line: nothing else on stderr."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("install.sh: error: "), proc.stderr
    return lines[0]


def named_log(line: str, logs: Path) -> str:
    """The text of the file the error line names for the whole output (in ``logs``)."""
    match = re.search(r"\(all output: (\S+)\)$", line)
    assert match and Path(match[1]).parent == logs, line
    return Path(match[1]).read_text()


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheelhouse of the offline install in docs/service.md, plus a newer OpenCV that the pin must pass over."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    env = cli_env({"EDGEPOSE_MODEL_MIRROR": str(MIRROR)})
    env.pop("PYTHON", None)
    made = subprocess.run([str(MAKE_WHEELHOUSE), str(folder)], capture_output=True, text=True, timeout=900, env=env,
                          check=False)  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    newer = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                            "--dest", str(folder), f"opencv-python-headless=={NEWER_OPENCV}"],
                           capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert newer.returncode == 0, newer.stderr
    return folder


@pytest.fixture(scope="session")
def offline(wheelhouse: Path, no_network: tuple[dict[str, str], list[str]]) -> Iterator[Offline]:
    env, requests = no_network
    base = Path(tempfile.mkdtemp(prefix="edgepose-offline-"))
    base.chmod(0o755)  # other users may walk into it (the unprivileged-user test)
    try:
        prefix = base / "root"
        proc = install("--prefix", str(prefix), "--wheels", str(wheelhouse), env=env)
        yield Offline(prefix, proc, list(requests))
    finally:
        shutil.rmtree(base)


def test_make_wheelhouse_holds_edgepose_and_the_pinned_opencv(wheelhouse: Path) -> None:
    assert PI_PIN
    names = sorted(p.name for p in wheelhouse.glob("*.whl"))
    assert f"edgepose-{__version__}-py3-none-any.whl" in names
    assert [n for n in names if n.startswith(f"opencv_python_headless-{PI_PIN[1]}-")], names
    assert sorted(p.name for p in (wheelhouse / "models").iterdir()) == sorted([LIGHTNING, LIGHTNING.replace(
        ".tflite", "_edgetpu.tflite")])  # fmt: skip


def test_wheelhouse_installs_with_no_index_reachable(offline: Offline) -> None:
    assert offline.proc.returncode == 0, offline.proc.stdout + offline.proc.stderr
    assert offline.requests == []  # nothing asked the (bogus) index or went through the (bogus) proxy
    assert not (offline.prefix / "opt/edgepose.new").exists()
    version = subprocess.run([str(offline.edgepose), "--version"], capture_output=True, text=True, timeout=60,
                             check=False)  # fmt: skip
    assert version.stdout.strip() == f"edgepose {__version__}", version.stderr
    assert f"copied from {offline.proc.args[-1]}/models" in offline.proc.stdout
    assert len(list(offline.models.glob("*.tflite"))) == 2
    assert "two frames through the model" in offline.proc.stdout
    # No path of the folder the environment was built in is left in it (scripts, pyvenv.cfg, bytecode).
    stale = subprocess.run(["grep", "-rlF", f"{offline.prefix}/opt/edgepose.new", str(offline.prefix / "opt/edgepose")],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert stale.stdout == "", stale.stdout


def test_the_system_install_gets_the_pinned_opencv(offline: Offline) -> None:
    assert PI_PIN
    python = offline.prefix / "opt/edgepose/bin/python"
    code = "import importlib.metadata as m; print(m.version('opencv-python-headless'))"
    got = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert got.stdout.strip() == PI_PIN[1], got.stderr  # not NEWER_OPENCV, though the wheelhouse has it
    assert f"with opencv-python-headless {PI_PIN[1]} (constraints-pi.txt) and numpy" in offline.proc.stdout


def test_a_failed_upgrade_leaves_the_install_as_it_was(offline: Offline, wheelhouse: Path, tmp_path: Path) -> None:
    assert offline.proc.returncode == 0, offline.proc.stderr
    incomplete = tmp_path / "wheelhouse"
    subprocess.run(["cp", "-a", "--link", str(wheelhouse), str(incomplete)], check=True)
    for wheel in incomplete.glob("paho_mqtt-*.whl"):
        wheel.unlink()
    before = snapshot(offline.prefix)
    proc = install("--prefix", str(offline.prefix), "--wheels", str(incomplete), logs=tmp_path)
    line = one_error_line(proc)
    assert "paho-mqtt" in line and f"{offline.prefix}/opt/edgepose is as it was" in line, line
    assert "No matching distribution found for paho-mqtt" in named_log(line, tmp_path)
    assert snapshot(offline.prefix) == before
    verify = subprocess.run([str(offline.edgepose), "models", "verify", "--models-dir", str(offline.models)],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert verify.returncode == 0 and verify.stdout.count("OK ") == 2, verify.stdout + verify.stderr


def test_an_upgrade_cut_off_between_its_renames_is_undone(offline: Offline, wheelhouse: Path, tmp_path: Path) -> None:
    assert offline.proc.returncode == 0, offline.proc.stderr
    before = snapshot(offline.prefix)
    opt = offline.prefix / "opt/edgepose"
    opt.rename(opt.with_name("edgepose.old"))  # where a power cut between the two renames leaves it
    incomplete = tmp_path / "wheelhouse"
    subprocess.run(["cp", "-a", "--link", str(wheelhouse), str(incomplete)], check=True)
    for wheel in incomplete.glob("paho_mqtt-*.whl"):
        wheel.unlink()
    proc = install("--prefix", str(offline.prefix), "--wheels", str(incomplete), logs=tmp_path)
    assert f"restored {opt} from an interrupted upgrade" in proc.stdout
    assert "as it was" in one_error_line(proc)
    assert snapshot(offline.prefix) == before


NO_INDEX = {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}  # a box without internet, building the checkout


def test_a_failed_upgrade_without_internet_says_why_in_one_line(offline: Offline, tmp_path: Path) -> None:
    assert offline.proc.returncode == 0, offline.proc.stderr
    before = snapshot(offline.prefix)
    proc = install("--prefix", str(offline.prefix), env=NO_INDEX, drop=("PIP_FIND_LINKS",), logs=tmp_path)
    line = one_error_line(proc)
    assert "hatchling" in line and "as it was" in line, line
    assert snapshot(offline.prefix) == before


def test_a_failed_first_install_leaves_nothing_behind(tmp_path: Path) -> None:
    prefix = tmp_path / "root"
    proc = install("--prefix", str(prefix), env=NO_INDEX, drop=("PIP_FIND_LINKS",), logs=tmp_path)
    line = one_error_line(proc)
    assert "hatchling" in line and "nothing was installed" in line, line
    assert not (prefix / "opt").exists() or list((prefix / "opt").iterdir()) == []
    assert not (prefix / "usr/local/bin/edgepose").is_symlink()


def test_wheels_without_edgepose_is_refused_before_anything_changes(tmp_path: Path) -> None:
    empty = tmp_path / "wheels"
    empty.mkdir()
    prefix = tmp_path / "root"
    line = one_error_line(install("--prefix", str(prefix), "--wheels", str(empty), logs=tmp_path))
    assert f"edgepose-{__version__}-py3-none-any.whl" in line and "make-wheelhouse.sh" in line, line
    assert not (prefix / "opt").exists()


def run_installed(offline: Offline, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed command as a login user runs it: no --config, from some folder, a home of its own."""
    env = cli_env({"HOME": str(cwd)})
    env.pop("STATE_DIRECTORY", None)
    return subprocess.run([str(offline.edgepose), *args], capture_output=True, text=True, timeout=300, env=env,
                          cwd=cwd, check=False)  # fmt: skip


def test_installed_doctor_finds_the_system_config_and_models(offline: Offline, tmp_path: Path) -> None:
    proc = run_installed(offline, "doctor", cwd=tmp_path)
    assert f"OK config: {offline.config} is valid" in proc.stdout, proc.stdout
    assert f"OK model: {offline.models / LIGHTNING} verified" in proc.stdout, proc.stdout
    # A config without models_dir still finds the install's models.
    bare = tmp_path / "bare.toml"
    bare.write_text('[model]\nname = "lightning"\n')
    proc = run_installed(offline, "doctor", "--config", str(bare), cwd=tmp_path)
    assert f"OK model: {offline.models / LIGHTNING} verified" in proc.stdout, proc.stdout


def test_installed_infer_finds_the_system_models(offline: Offline, tmp_path: Path, testdata: Path) -> None:
    proc = run_installed(offline, "infer", str(testdata / "squat.bmp"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["backend"]["model"] == LIGHTNING and record["score"] > 0.3
    printed = run_installed(offline, "--print-config", "doctor", cwd=tmp_path)
    assert f'models_dir = "{offline.models}"' in printed.stdout, printed.stdout + printed.stderr


def _service_like_group() -> str:
    """A group with a user of the same name (like edgepose:edgepose), other than root."""
    for name in ("daemon", "bin", "sys", "games", "man"):
        try:
            grp.getgrnam(name)
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.skip("no group here with a user of the same name")


def test_an_unreadable_system_config_says_what_to_type(offline: Offline, testdata: Path) -> None:
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run as an unprivileged user")
    group = _service_like_group()
    nobody = pwd.getpwuid(65534).pw_name
    image = str(testdata / "squat.bmp")
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(offline.edgepose)]
    env = cli_env({"HOME": "/nonexistent"})
    shutil.chown(offline.config, group=group)  # 0640 root:GROUP, as the real install leaves it
    try:
        infer = subprocess.run([*as_nobody, "infer", image], capture_output=True, text=True, timeout=120, env=env,
                               cwd="/", check=False)  # fmt: skip
        doctor = subprocess.run([*as_nobody, "doctor"], capture_output=True, text=True, timeout=300, env=env,
                                cwd="/", check=False)  # fmt: skip
    finally:
        shutil.chown(offline.config, group="root")
    assert infer.returncode == 2, infer.stderr
    lines = infer.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"edgepose: error: cannot read {offline.config}"), infer.stderr
    assert f"(mode 0640, group {group}), as {nobody}" in lines[0]
    assert f"sudo usermod -a -G {group} {nobody}, then log in again" in lines[0]
    assert f"sudo -u {group} edgepose infer {image}" in lines[0]
    assert "--config FILE" in lines[0]
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert f"FAIL config: cannot read {offline.config}" in doctor.stdout
    assert f"— fix: join its group: sudo usermod -a -G {group} {nobody}" in doctor.stdout
    assert f"sudo -u {group} edgepose doctor" in doctor.stdout
    # The models folder (0750 root here) is closed to it too: a finding with its cause, not a broken check.
    assert f"FAIL model: {offline.models / LIGHTNING}: permission denied — fix: run it as a user" in doctor.stdout
    assert "check failed" not in doctor.stdout


def test_make_wheelhouse_for_a_pi_gets_the_numpy_1_opencv(tmp_path: Path) -> None:
    assert PI_PIN
    env = cli_env()
    env.pop("PYTHON", None)
    made = subprocess.run([str(MAKE_WHEELHOUSE), "--pi", "--no-models", str(tmp_path)], capture_output=True,
                          text=True, timeout=900, env=env, check=False)  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    names = sorted(p.name for p in tmp_path.glob("*.whl"))
    assert [n for n in names if re.fullmatch(rf"opencv_python_headless-{PI_PIN[1]}-cp37-abi3-.*aarch64.*\.whl", n)], (
        names
    )
    assert [n for n in names if re.fullmatch(r"numpy-1\.24\.2-cp311-cp311-.*aarch64.*\.whl", n)], names
    assert [n for n in names if re.fullmatch(r"ai_edge_litert-.*-cp311-cp311-.*aarch64\.whl", n)], names
    assert not [n for n in names if "x86_64" in n], names
