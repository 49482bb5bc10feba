"""Config rejects every bad value (issue 10, faults 3 and 7): NaN, ±inf, out-of-range numbers, unknown
``EDGEPOSE_*`` variables and malformed sources are one-line errors with exit 2, naming the key and
where the value came from (TOML file, environment variable or flag)."""

from __future__ import annotations

import dataclasses
import math
import sys
import typing
from pathlib import Path

import pytest
from conftest import assert_one_line_error, model_args, run_cli

from edgepose.config import (
    LIMITS,
    OTHER_ENV_VARS,
    SECTIONS,
    Config,
    build_config,
    env_name,
    redacted,
    to_toml,
    validate,
)
from edgepose.errors import ConfigError
from edgepose.models import MIRROR_ENV

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# (section, key, TOML literal, the flag that sets it or None): the values fault 3 of issue 10 found accepted.
FAULT_3 = [
    ("mqtt", "stats_interval_s", "nan", "--stats-interval"),
    ("mqtt", "reconnect_max_s", "inf", None),
    ("mqtt", "keepalive_s", "100000", None),
    ("source", "stale_after_s", "nan", None),
    ("preview", "fps", "nan", "--preview-fps"),
    ("model", "threads", "inf", "--threads"),  # was "unexpected OverflowError", exit 1
]


@pytest.mark.parametrize(("section", "key", "literal", "flag"), FAULT_3)
def test_fault_3_values_in_a_file_are_one_line_errors(
    tmp_path: Path, section: str, key: str, literal: str, flag: str | None
) -> None:
    file = tmp_path / "edgepose.toml"
    file.write_text(f"[{section}]\n{key} = {literal}\n")
    proc = run_cli("run", "--config", str(file), "--print-config")
    assert_one_line_error(proc, 2, f"{file}: {section}.{key}")
    assert proc.stdout == ""


@pytest.mark.parametrize(("section", "key", "literal", "flag"), FAULT_3)
def test_fault_3_values_in_the_environment_are_one_line_errors(
    section: str, key: str, literal: str, flag: str | None
) -> None:
    name = env_name(section, key)
    proc = run_cli("run", "--print-config", env={name: literal})
    assert_one_line_error(proc, 2, f"environment variable {name} ({section}.{key})")


@pytest.mark.parametrize(("section", "key", "literal", "flag"), [f for f in FAULT_3 if f[3]])
def test_fault_3_values_as_flags_are_one_line_errors(section: str, key: str, literal: str, flag: str) -> None:
    proc = run_cli("run", flag, literal, "--print-config")
    assert_one_line_error(proc, 2, flag)  # argparse itself refuses "inf" for an int flag, naming the flag


@pytest.mark.parametrize("literal", ["-inf", "1e999", "-nan"])
def test_other_non_finite_spellings_are_rejected(literal: str) -> None:
    proc = run_cli("run", "--print-config", env={"EDGEPOSE_MQTT_STATS_INTERVAL_S": literal})
    assert_one_line_error(proc, 2, "finite number")


def test_a_misspelt_env_section_is_an_error_that_lists_the_valid_names() -> None:
    proc = run_cli("run", "--print-config", env={"EDGEPOSE_MQT_URL": "mqtt://127.0.0.1"})
    assert_one_line_error(proc, 2, "unknown environment variable EDGEPOSE_MQT_URL (did you mean EDGEPOSE_MQTT_URL?)")
    assert "EDGEPOSE_PREVIEW_FPS" in proc.stderr and "EDGEPOSE_MODEL_MIRROR" in proc.stderr
    assert proc.stdout == ""


def test_an_unknown_key_in_a_known_section_lists_that_section() -> None:
    with pytest.raises(ConfigError, match="EDGEPOSE_MQTT_KEEPALIVE_S") as info:
        build_config(environ={"EDGEPOSE_MQTT_KEEPALIVE": "30"})
    assert "EDGEPOSE_MODEL_NAME" not in str(info.value), "only the [mqtt] names"
    with pytest.raises(ConfigError, match="unknown environment variable EDGEPOSE_"):
        build_config(environ={"EDGEPOSE_": "x"})


def test_variables_edgepose_reads_for_other_purposes_stay_allowed() -> None:
    assert MIRROR_ENV in OTHER_ENV_VARS
    env = {name: "/nonexistent" for name in OTHER_ENV_VARS}
    assert build_config(environ=env) == build_config(environ={})
    proc = run_cli("run", "--print-config", env=env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("picamera:x", "picamera:x"),  # fault 7: was "unexpected ValueError", exit 1
        ("picamera:-1", "picamera:-1"),
        ("99999999999999999999", "camera index"),
        ("synthetic:0x0", "synthetic:640x480"),
        ("synthetic:99999999x99999999", "synthetic:640x480"),
    ],
)
def test_malformed_sources_are_config_errors(models_dir: Path, spec: str, needle: str) -> None:
    proc = run_cli("run", "--source", spec, "--max-frames", "1", *model_args(models_dir))
    assert_one_line_error(proc, 2, needle)


def _numeric_fields() -> list[tuple[str, str, type]]:
    fields = []
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        fields += [(section, f.name, hints[f.name]) for f in dataclasses.fields(cls) if hints[f.name] in (int, float)]
    return fields


def test_every_numeric_key_has_a_decided_range() -> None:
    missing = [f"{s}.{k}" for s, k, _ in _numeric_fields() if (s, k) not in LIMITS]
    assert not missing, f"give these keys a range in config.LIMITS: {missing}"
    assert all(key in dict(((s, k), t) for s, k, t in _numeric_fields()) for key in LIMITS), "no stale entries"


def test_every_default_is_inside_its_range() -> None:
    default = Config()
    for (section, key), limit in LIMITS.items():
        assert limit.accepts(getattr(getattr(default, section), key)), (section, key)


@pytest.mark.parametrize(("section", "key"), sorted(LIMITS))
def test_each_range_is_enforced_at_both_ends(section: str, key: str) -> None:
    limit = LIMITS[(section, key)]
    kind = dict(((s, k), t) for s, k, t in _numeric_fields())[(section, key)]
    step = 1 if kind is int else limit.low * 1e-6 or 1e-9
    for ok in (limit.low, limit.high, *([0] if limit.zero else [])):
        value = kind(ok)
        assert getattr(getattr(build_config(environ={}, overrides={section: {key: value}}), section), key) == value
    for bad in (limit.low - step, limit.high + (1 if kind is int else limit.high * 1e-6)):
        if limit.zero and bad == 0:
            continue
        with pytest.raises(ConfigError, match=rf"\({section}\.{key}\) must be"):
            build_config(environ={}, overrides={section: {key: kind(bad)}})
    for bad in (math.nan, math.inf, -math.inf, "12abc", True):
        with pytest.raises(ConfigError, match=rf"{env_name(section, key)} \({section}\.{key}\) must be"):
            build_config(environ={env_name(section, key): str(bad)})
        with pytest.raises(ConfigError, match=rf"{section}\.{key} must be"):
            validate(
                dataclasses.replace(
                    Config(), **{section: dataclasses.replace(getattr(Config(), section), **{key: bad})}
                )
            )


def test_mqtt_keepalive_limit_is_the_protocols() -> None:
    assert LIMITS[("mqtt", "keepalive_s")].high == 65535
    assert build_config(environ={"EDGEPOSE_MQTT_KEEPALIVE_S": "65535"}).mqtt.keepalive_s == 65535


def test_integers_accept_whole_floats_and_refuse_fractions(tmp_path: Path) -> None:
    file = tmp_path / "edgepose.toml"
    file.write_text("[source]\nwidth = 320.0\n")
    assert build_config(file, environ={}).source.width == 320
    file.write_text("[source]\nwidth = 320.5\n")
    with pytest.raises(ConfigError, match=r"source\.width must be a whole number"):
        build_config(file, environ={})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[mqtt]\nurl = 'mqtt://[::1'\n", "mqtt url has a bad host or port"),  # was "unexpected ValueError"
        ("[mqtt]\nurl = 'mqtt://broker:0'\n", "bad port"),
        ('[mqtt]\nprefix = "a\\u0000b"\n', "control characters"),
        ('[source]\nsource = "clip\\nmp4"\n', "control characters"),
        ("[model]\nthreads = " + "9" * 5000 + "\n", "not valid TOML"),  # tomllib raises ValueError
        ('[model]\n"a\\nb" = 1\n', "unknown key model.'a\\nb'"),
        ("[mqtt]\nqueue_size = 100000000000000000000000\n", "queue_size must be a whole number"),
        ("[source]\nfps = 1e-300\n", "source.fps must be a finite number"),
        ("[model]\nedgetpu_library = ''\n", "edgetpu_library must name"),  # was dlopen of the program itself
    ],
)
def test_odd_file_values_are_config_errors(tmp_path: Path, text: str, needle: str) -> None:
    file = tmp_path / "edgepose.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        build_config(file, environ={})
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_secrets_never_appear_in_errors() -> None:
    with pytest.raises(ConfigError) as info:
        build_config(environ={"EDGEPOSE_PREVIEW_TOKEN": "hunter2\x01"})
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
    with pytest.raises(ConfigError) as info:
        build_config(environ={"EDGEPOSE_MQTT_URL": "mqtt://cam:s3cret@[::1"})
    assert "s3cret" not in str(info.value)


def test_print_config_escapes_strings_so_they_parse_back(tmp_path: Path) -> None:
    config = build_config(environ={"EDGEPOSE_OUTPUT_PATH": 'dir\\"odd" name ☃.jsonl', "EDGEPOSE_PREVIEW_TOKEN": "t"})
    printed = to_toml(redacted(config))
    assert tomllib.loads(printed)["output"]["path"] == 'dir\\"odd" name ☃.jsonl'
    file = tmp_path / "printed.toml"
    file.write_text(printed)
    assert build_config(file, environ={}) == dataclasses.replace(
        config, preview=dataclasses.replace(config.preview, token="***")
    )
