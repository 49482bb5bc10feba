"""``edgepose doctor``: the real command on this machine (no camera, no EdgeTPU), real sockets for the
broker check, and a fake sysfs tree only for the hardware this machine lacks (Corals, cameras, sensors).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from conftest import ROOT, model_args, need, run_cli

from edgepose.config import Config, ModelConfig, SourceConfig
from edgepose.doctor import hardware
from edgepose.doctor.checks import FAIL, OK, WARN, Context, check_cameras, check_coral, check_pi_health, exit_code
from edgepose.health import temperatures

LINE = re.compile(r"^(OK|WARN|FAIL) [a-z][\w ]*: \S.*$")


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def find(text: str, level: str, check: str) -> list[str]:
    return [ln for ln in lines(text) if ln.startswith(f"{level} {check}: ")]


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return path


def test_this_machine_warns_about_camera_and_edgetpu_and_exits_0(models_dir: Path) -> None:
    proc = run_cli("doctor", *model_args(models_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = lines(proc.stdout)
    assert out and all(LINE.match(ln) for ln in out), out
    assert all(" — fix: " in ln for ln in out if not ln.startswith("OK ")), out
    assert not any(" — fix: " in ln for ln in out if ln.startswith("OK ")), out
    assert not find(proc.stdout, FAIL, "[a-z ]+")
    camera = find(proc.stdout, WARN, "camera")
    assert camera and "no camera found" in camera[0] and "/dev/video0" in camera[0], proc.stdout
    edgetpu = find(proc.stdout, WARN, "edgetpu")
    assert edgetpu and "no Coral EdgeTPU found" in edgetpu[0] and "USB 3 port" in edgetpu[0], proc.stdout
    delegate = find(proc.stdout, WARN, "edgetpu delegate")
    assert delegate and "libedgetpu" in delegate[0] and "--edgetpu" in delegate[0], proc.stdout
    assert find(proc.stdout, OK, "runtime ai_edge_litert"), proc.stdout
    assert len(find(proc.stdout, OK, "model")) == 2, proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_broker_reachability_with_real_sockets(models_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        config = write_config(tmp_path, f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\n')
        up = run_cli("doctor", "--config", str(config), *model_args(models_dir))
    down = run_cli("doctor", "--config", str(config), *model_args(models_dir))  # the port is closed now
    assert up.returncode == 0 and down.returncode == 0, up.stdout + down.stdout
    assert find(up.stdout, OK, "broker"), up.stdout
    refused = find(down.stdout, WARN, "broker")
    assert refused and f"127.0.0.1:{port}" in refused[0] and "fix: start the broker" in refused[0], down.stdout


def test_invalid_config_is_a_fail_line_not_a_crash(models_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, "[model]\nthreads = 999\n")
    proc = run_cli("doctor", "--config", str(config), *model_args(models_dir))
    assert proc.returncode == 1
    assert find(proc.stdout, FAIL, "config") and "threads" in proc.stdout
    assert find(proc.stdout, WARN, "camera"), "the other checks still run"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("preview", "needle"),
    [
        ('listen = "0.0.0.0:8080"', "beyond this machine, without a token"),
        ('listen = "127.0.0.1:http"', "preview.listen"),
        ('listen = "[::]:8080"\ntoken_file = "/nonexistent/token"', "cannot read preview token file"),
    ],
)
def test_a_preview_that_run_would_refuse_is_a_fail(models_dir: Path, tmp_path: Path, preview: str, needle: str) -> None:
    config = write_config(tmp_path, f"[preview]\n{preview}\n")
    proc = run_cli("doctor", "--config", str(config), *model_args(models_dir))
    assert proc.returncode == 1, proc.stdout
    failed = find(proc.stdout, FAIL, "config")
    assert failed and needle in failed[0], proc.stdout


def test_a_preview_with_a_token_or_on_loopback_is_ok(models_dir: Path, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    for preview in ('listen = "8080"', f'listen = "0.0.0.0:8080"\ntoken_file = "{token}"',
                    'listen = "0.0.0.0:8080"\ninsecure = true'):  # fmt: skip
        config = write_config(tmp_path, f"[preview]\n{preview}\n")
        proc = run_cli("doctor", "--config", str(config), *model_args(models_dir))
        assert find(proc.stdout, OK, "config"), (preview, proc.stdout)


def test_missing_model_fails_with_the_fetch_command(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    proc = run_cli("doctor", "--models-dir", str(empty))
    assert proc.returncode == 1, proc.stdout
    fail = find(proc.stdout, FAIL, "model")
    assert fail and "missing" in fail[0] and f"edgepose models fetch lightning --models-dir {empty}" in fail[0]
    assert find(proc.stdout, WARN, "model"), "the EdgeTPU twin is only a WARN"


def test_the_fetch_command_names_the_configured_model(tmp_path: Path) -> None:
    # `edgepose models fetch` alone fetches Lightning: the hint for Thunder must name it.
    proc = run_cli("doctor", "--model", "thunder", "--models-dir", str(tmp_path))
    fail = find(proc.stdout, FAIL, "model")
    assert fail and f"edgepose models fetch thunder --models-dir {tmp_path}" in fail[0]


def test_configured_camera_that_is_absent_fails(models_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, '[source]\nsource = "/dev/video7"\n')
    proc = run_cli("doctor", "--config", str(config), *model_args(models_dir))
    assert proc.returncode == 1
    fail = find(proc.stdout, FAIL, "camera")
    assert fail and "/dev/video7 is not present" in fail[0]
    assert "edgepose run waits for it, trying again every 30 s, and uses it once it appears" in fail[0], fail


def test_a_stream_source_is_read_not_looked_for_among_cameras(models_dir: Path, tmp_path: Path) -> None:
    """A network camera needs no local camera: doctor reads a frame from the stream instead (a real MJPEG
    server), and a stream that gives none is a FAIL that shows no password."""
    import numpy as np
    from mjpeg_server import jpeg, serving

    picture = jpeg(np.full((240, 320, 3), 128, np.uint8))
    with serving(lambda n: picture, fps=10, auth="cam:s3cret") as server:
        url = server.url.replace("http://", "http://cam:s3cret@")
        config = write_config(tmp_path, f'[source]\nsource = "{url}"\n')
        proc = run_cli("doctor", "--config", str(config), *model_args(models_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ok = find(proc.stdout, OK, "stream")
    assert ok and "320x240" in ok[0], proc.stdout
    assert not find(proc.stdout, WARN, "camera") and not find(proc.stdout, FAIL, "camera"), proc.stdout
    assert "s3cret" not in proc.stdout + proc.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the socket is closed
    config = write_config(tmp_path, f'[source]\nsource = "http://cam:s3cret@127.0.0.1:{port}/stream"\n')
    proc = run_cli("doctor", "--config", str(config), *model_args(models_dir))
    assert proc.returncode == 1, proc.stdout
    fail = find(proc.stdout, FAIL, "stream")
    assert fail and "edgepose run waits for it" in fail[0] and " — fix: " in fail[0], proc.stdout
    assert "s3cret" not in proc.stdout + proc.stderr


def test_forced_edgetpu_delegate_without_a_coral_fails(models_dir: Path) -> None:
    proc = run_cli("doctor", "--delegate", "edgetpu", *model_args(models_dir))
    assert proc.returncode == 1
    assert find(proc.stdout, FAIL, "edgetpu") and find(proc.stdout, FAIL, "edgetpu delegate")


@pytest.mark.slow
def test_tflite_runtime_with_numpy_2_is_a_warn_with_the_fix(models_dir: Path, tmp_path: Path) -> None:
    """The real tflite-runtime package (from .venv-tflite) next to this venv's numpy 2: the broken pairing."""
    packages = sorted((ROOT / ".venv-tflite" / "lib").glob("python3*/site-packages"))
    need(".venv-tflite", bool(packages) and (packages[0] / "tflite_runtime").is_dir(), "./install.sh --with-tflite")
    for item in [packages[0] / "tflite_runtime", *packages[0].glob("tflite_runtime-*.dist-info")]:
        (tmp_path / item.name).symlink_to(item)
    mixed = {"PYTHONPATH": str(tmp_path)}
    proc = run_cli("doctor", *model_args(models_dir), env=mixed)
    assert proc.returncode == 0, proc.stdout  # ai_edge_litert still works: only a WARN
    warn = find(proc.stdout, WARN, "runtime tflite_runtime")
    assert warn and "numpy 2" in warn[0] and "numpy<2" in warn[0], proc.stdout
    assert find(proc.stdout, OK, "runtime ai_edge_litert")
    forced = run_cli("doctor", "--runtime", "tflite_runtime", *model_args(models_dir), env=mixed)
    assert forced.returncode == 1 and find(forced.stdout, FAIL, "runtime tflite_runtime"), forced.stdout


# --- hardware this machine does not have: a fake /sys and /dev -----------------------------------------


def fake_usb(root: Path, name: str, vendor: str, product: str, speed: str) -> None:
    entry = root / "sys/bus/usb/devices" / name
    entry.mkdir(parents=True)
    for key, value in {"idVendor": vendor, "idProduct": product, "speed": speed, "busnum": "2", "devnum": "3"}.items():
        (entry / key).write_text(value + "\n")


def fake_video(root: Path, index: int, name: str) -> None:
    entry = root / f"sys/class/video4linux/video{index}"
    entry.mkdir(parents=True)
    (entry / "name").write_text(name + "\n")
    (root / "dev").mkdir(exist_ok=True)
    (root / f"dev/video{index}").write_bytes(b"")  # a regular file: the capability ioctl fails, names decide


def context(root: Path, source: str = "", delegate: str = "auto") -> Context:
    config = Config(model=ModelConfig(delegate=delegate), source=SourceConfig(source=source))
    return Context(config=config, root=root)


def test_coral_on_usb2_warns_and_usb3_is_ok(tmp_path: Path) -> None:
    fake_usb(tmp_path, "2-1", "18d1", "9302", "480")
    [slow] = check_coral(context(tmp_path))
    assert slow.level == WARN and "USB 2" in slow.detail and "USB 3 (blue) port" in slow.fix
    other = tmp_path / "other"
    fake_usb(other, "4-1", "1a6e", "089a", "5000")
    [fast] = check_coral(context(other))
    assert fast.level == OK and "5 Gb/s" in fast.detail and "not initialised yet" in fast.detail


def test_pcie_coral_and_no_coral(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/apex_0").write_bytes(b"")
    [pcie] = check_coral(context(tmp_path))
    assert pcie.level == OK and "apex_0" in pcie.detail
    [none] = check_coral(context(tmp_path / "empty"))
    assert none.level == WARN and none.fix
    [forced] = check_coral(context(tmp_path / "empty", delegate="edgetpu"))
    assert forced.level == FAIL


def test_cameras_ignore_codec_and_isp_nodes(tmp_path: Path) -> None:
    fake_video(tmp_path, 10, "bcm2835-codec-decode")
    fake_video(tmp_path, 13, "bcm2835-isp")
    fake_video(tmp_path, 31, "rpi-hevc-dec")
    assert [d.capture for d in hardware.video_devices(tmp_path)] == [False, False, False]
    [none] = check_cameras(context(tmp_path))
    assert none.level == WARN and "no camera found" in none.detail
    fake_video(tmp_path, 0, "HD Pro Webcam C920")
    results = check_cameras(context(tmp_path, source="/dev/video0"))
    assert [r.level for r in results] == [OK]
    assert "video0 (HD Pro Webcam C920)" in results[0].detail
    [absent] = check_cameras(context(tmp_path, source="2"))
    assert absent.level == FAIL and "is not present" in absent.detail


def test_temperature_and_throttle_bits(tmp_path: Path) -> None:
    zone = tmp_path / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text("83500\n")
    assert temperatures(tmp_path) == {"cpu-thermal": 83.5}
    hot = [c for c in check_pi_health(context(tmp_path)) if c.name == "temperature"]
    assert hot[0].level == WARN and "83.5 °C" in hot[0].detail
    assert hardware.throttle_reasons(0x50005) == [
        "under-voltage now",
        "throttled now",
        "under-voltage has occurred",
        "throttling has occurred",
    ]
    assert hardware.throttle_reasons(0) == []


@pytest.mark.parametrize(("levels", "code"), [([OK, WARN], 0), ([OK, FAIL, WARN], 1), ([], 0)])
def test_exit_code_rule(levels: list[str], code: int) -> None:
    from edgepose.doctor.checks import Check

    assert exit_code([Check(level, "x", "y", "z") for level in levels]) == code
