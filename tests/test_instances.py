"""One unit per camera: the ``edgepose@.service`` template, the instance name as the default device id, and
``edgepose doctor`` over an install with several instances (a fake sysfs tree for the Coral it lacks).

The staged install of ``edgepose@a`` and ``edgepose@b`` (separate configs, state directories and device
ids, checked with ``systemd-analyze verify`` and a real broker) is in ``test_install.py``.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from broker import Broker, Subscriber
from conftest import ROOT, model_args, run_cli

from edgepose.config import MqttConfig, build_config
from edgepose.doctor.checks import CHECKS, Context
from edgepose.doctor.findings import FAIL, OK, WARN, Check
from edgepose.sinks.mqtt.settings import device_id, sanitize_device_id
from edgepose.system_install import INSTANCE_ENV, SystemInstall, instance_configs, instance_name

PLAIN = ROOT / "systemd" / "edgepose.service"
TEMPLATE = ROOT / "systemd" / "edgepose@.service"
#: Every difference between the two units below the comment at the top: (plain line, the template's lines).
INSTANCE_LINES = [
    ("ExecStart=/opt/edgepose/bin/edgepose run --config /etc/edgepose/config.toml",
     ["ExecStart=/opt/edgepose/bin/edgepose run --config /etc/edgepose/%i.toml"]),
    ("Environment=PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
     ["Environment=PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
      "# The instance name: the default [mqtt] device_id (edgepose/system_install.py, INSTANCE_ENV).",
      f"Environment={INSTANCE_ENV}=%i"]),
    ("StateDirectory=edgepose",
     ["# Its own state; the models are shared: /var/lib/edgepose/models, read-only here.",
      "StateDirectory=edgepose/%i"]),
]  # fmt: skip


def body(text: str) -> list[str]:
    """The unit's lines from ``[Unit]`` on (the comment at the top says what the file is)."""
    lines = text.splitlines()
    return lines[lines.index("[Unit]") :]


def test_the_template_is_the_plain_unit_but_for_the_instance_lines() -> None:
    expected = []
    for line in body(PLAIN.read_text()):
        expected += next((new for old, new in INSTANCE_LINES if old == line), [line])
    assert body(TEMPLATE.read_text()) == expected


def test_the_device_id_is_the_instance_name_unless_configured() -> None:
    host = sanitize_device_id(socket.gethostname())
    assert device_id(MqttConfig(), environ={}) == host
    assert device_id(MqttConfig(), environ={INSTANCE_ENV: "porch"}) == "porch"
    assert device_id(MqttConfig(), environ={INSTANCE_ENV: "front.door"}) == "front_door"  # topic-safe
    assert device_id(MqttConfig(device_id="garage"), environ={INSTANCE_ENV: "porch"}) == "garage"
    assert instance_name({INSTANCE_ENV: " porch "}) == "porch" and instance_name({}) == ""
    # The unit's variable is not a config key, and not an unknown one either.
    assert build_config(environ={INSTANCE_ENV: "porch"}).mqtt.device_id == ""


def test_instance_configs_are_the_tomls_next_to_config_toml(tmp_path: Path) -> None:
    for name in ("config.toml", "porch.toml", "garage.toml", "notes.txt"):
        (tmp_path / name).write_text("")
    install = SystemInstall(config=tmp_path / "config.toml", models_dir=tmp_path / "models")
    assert instance_configs(install) == {"garage": tmp_path / "garage.toml", "porch": tmp_path / "porch.toml"}
    assert instance_configs(SystemInstall(config=tmp_path / "none" / "config.toml", models_dir=tmp_path)) == {}


@pytest.mark.slow
def test_a_run_as_an_instance_publishes_under_its_name(models_dir: Path, tmp_path: Path) -> None:
    with Broker(tmp_path / "broker") as broker:
        sub = Subscriber(broker.port)
        url = f"mqtt://127.0.0.1:{broker.port}"
        for name, flags in (("porch", []), ("garage", ["--device-id", "carport"])):
            proc = run_cli("run", "--source", "synthetic:160x120", "--max-frames", "3", "--mqtt", url, "--output",
                           str(tmp_path / f"{name}.jsonl"), *flags, *model_args(models_dir),
                           env={INSTANCE_ENV: name})  # fmt: skip
            assert proc.returncode == 0, proc.stderr
        assert sub.wait_for(lambda s: len(s.on("edgepose/porch/pose")) == 3 and len(s.on("edgepose/carport/pose")) == 3)
        assert {t.split("/")[1] for t in sub.topics()} == {"porch", "carport"}
        stats = json.loads(sub.on("edgepose/porch/stats")[-1])
        assert stats["device"] == "porch"
        sub.close()


# --- doctor over an install with several units --------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def fake_usb_coral(root: Path) -> None:
    entry = root / "sys/bus/usb/devices/2-1"
    entry.mkdir(parents=True)
    for key, value in {"idVendor": "18d1", "idProduct": "9302", "speed": "5000", "busnum": "2", "devnum": "3"}.items():
        (entry / key).write_text(value + "\n")


def instances(ctx: Context) -> list[Check]:
    return CHECKS["instances"](ctx)


def named(checks: list[Check], name: str) -> list[Check]:
    return [c for c in checks if c.name == name]


@pytest.fixture()
def etc(tmp_path: Path, models_dir: Path) -> Path:
    """An install's config folder: edgepose.service's config.toml and three instances, one of them broken."""
    folder = tmp_path / "etc"
    folder.mkdir()
    models = f'[model]\nmodels_dir = "{models_dir}"\n'
    mqtt = '[mqtt]\nurl = "mqtt://broker.local"\n'
    write(folder / "config.toml", f'{models}[source]\nsource = "/dev/video0"\n{mqtt}device_id = "porch"\n')
    write(folder / "porch.toml", f'{models}[source]\nsource = "/dev/video0"\n{mqtt}')
    write(folder / "garage.toml", f'{models}delegate = "xnnpack"\n[source]\nsource = "rtsp://cam/garage"\n{mqtt}')
    write(folder / "attic.toml", "[model]\nspeed = 11\n")
    return folder


def units(etc: Path) -> dict[str, Path]:
    return {"edgepose.service": etc / "config.toml", "edgepose@attic.service": etc / "attic.toml",
            "edgepose@garage.service": etc / "garage.toml", "edgepose@porch.service": etc / "porch.toml"}  # fmt: skip


def test_doctor_checks_each_instance_and_what_they_share(etc: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    fake_usb_coral(root)
    config = build_config(etc / "config.toml", environ={})
    results = instances(Context(config=config, config_path=etc / "config.toml", root=root, units=units(etc)))

    [porch] = named(results, "instance porch config")
    assert porch.level == OK and str(etc / "porch.toml") in porch.detail
    assert "(device id porch, source /dev/video0, delegate auto)" in porch.detail
    [garage] = named(results, "instance garage config")
    assert "(device id garage, source rtsp://cam/garage, delegate xnnpack)" in garage.detail
    assert [c.level for c in named(results, "instance garage model")] == [OK, OK]
    [attic] = named(results, "instance attic config")
    assert attic.level == FAIL and "unknown key model.speed" in attic.detail
    assert not named(results, "instance attic model"), "a broken config gets its own line only"
    assert not [c for c in results if c.name.startswith("instance edgepose")], "config.toml is the doctor's own"

    [coral] = named(results, "coral sharing")
    assert coral.level == WARN and coral.detail.startswith("edgepose.service, edgepose@porch.service ask for")
    assert "the first to start gets it" in coral.detail and 'delegate = "xnnpack"' in coral.fix
    [camera] = named(results, "cameras")
    assert camera.detail.startswith("edgepose.service, edgepose@porch.service all read /dev/video0")
    [ids] = named(results, "device ids")
    assert ids.detail.startswith("edgepose.service, edgepose@porch.service all publish as edgepose/porch")


def test_doctor_says_nothing_of_sharing_without_a_coral_or_a_second_asker(etc: Path, tmp_path: Path) -> None:
    config = build_config(etc / "config.toml", environ={})
    alone = instances(Context(config=config, root=tmp_path / "no-coral", units=units(etc)))
    assert not named(alone, "coral sharing")
    root = tmp_path / "root"
    fake_usb_coral(root)
    one = {k: v for k, v in units(etc).items() if k != "edgepose.service"}
    results = instances(Context(config=config, root=root, units=one))
    assert not named(results, "coral sharing") and not named(results, "cameras") and not named(results, "device ids")
    assert named(results, "instance porch config")[0].level == OK
    assert CHECKS["config"](Context(config=config, units=one))[0].detail.startswith("no edgepose.service config")
