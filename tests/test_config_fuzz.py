"""Config fuzzing (issue 10): random TOML documents, environment overrides and flag values give a valid
config or a one-line ConfigError, nothing else; what ``--print-config`` prints parses back to the same
config (secrets stay ``***``)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import sys
import tempfile
import typing
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from edgepose.config import (
    LIMITS,
    OTHER_ENV_VARS,
    REDACTED,
    SECRET_KEYS,
    SECTIONS,
    Config,
    build_config,
    env_name,
    redact_url,
    redacted,
    to_toml,
)
from edgepose.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

KINDS: dict[tuple[str, str], Any] = {
    (section, f.name): typing.get_type_hints(cls)[f.name]
    for section, cls in SECTIONS.items()
    for f in dataclasses.fields(cls)
}
#: Values the schema accepts for string keys with a fixed vocabulary, so that valid configs come up often.
GOOD_TEXT: dict[tuple[str, str], list[str]] = {
    ("model", "name"): ["lightning", "thunder", "/models/x.tflite"],
    ("model", "runtime"): ["auto", "litert", "ai_edge_litert", "tflite_runtime"],
    ("model", "delegate"): ["auto", "edgetpu", "xnnpack", "cpu"],
    ("model", "edgetpu_library"): ["libedgetpu.so.1", "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1"],
    ("mqtt", "url"): ["", "mqtt://broker", "mqtts://cam@broker.lan:8883", "mqtt://cam:pw@10.0.0.1:1883"],
    ("mqtt", "device_id"): ["", "porch", "cam-1"],
    ("mqtt", "prefix"): ["edgepose", "home/cams"],
    ("preview", "mode"): ["video", "skeleton", "blur"],
    ("preview", "listen"): ["", "8080", "0.0.0.0:8080"],
    ("mqtt", "ca_file"): [""],
    ("mqtt", "cert_file"): [""],
    ("mqtt", "key_file"): [""],
}
JUNK_NAMES = st.text(min_size=1, max_size=12)
PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=30)
TOML_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e300, -1e300, 5e-324, 0.1, 65535.5]),
)
TOML_INTS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 1, 65535, 65536, 100000, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]),
)
SCALARS = st.one_of(st.booleans(), TOML_INTS, TOML_FLOATS, st.text(max_size=20), st.dates(), st.datetimes(), st.times())
ANY_VALUE = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(JUNK_NAMES, inner, max_size=3)),
    max_leaves=6,
)


def _in_range(section: str, key: str) -> st.SearchStrategy[Any]:
    """Values inside the key's range (and its edges), so many documents are valid."""
    limit = LIMITS[(section, key)]
    if KINDS[(section, key)] is int:
        return st.integers(int(limit.low), min(int(limit.high), 10**9))
    return st.floats(limit.low, limit.high) | st.sampled_from([limit.low, limit.high])


def value_for(section: str, key: str, bad: bool) -> st.SearchStrategy[Any]:
    """A plausible value for ``section.key``, or (``bad``) anything at all: any type, NaN, ±inf, huge."""
    if bad:
        return st.one_of(TOML_FLOATS, TOML_INTS, st.text(max_size=20), ANY_VALUE)
    kind = KINDS.get((section, key))
    if kind is bool:
        return st.booleans()
    if (section, key) in LIMITS:
        return _in_range(section, key)
    if (section, key) in GOOD_TEXT:
        return st.sampled_from(GOOD_TEXT[(section, key)])
    if kind is str:
        return PRINTABLE
    return ANY_VALUE


def _chance(draw: st.DrawFn, percent: int) -> bool:
    return draw(st.integers(0, 99)) < percent


def toml_value(value: Any) -> str:
    """Write any TOML value as a literal, NaN and infinities included (independent of config.to_toml)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


@st.composite
def documents(draw: st.DrawFn, bad: int = 8) -> str:
    """A TOML document: sections and keys from the schema plus junk ones, values of every TOML type.

    ``bad`` is the percentage of junk section names, junk keys and bad values (0: a valid document).
    """
    loose: dict[str, Any] = {}
    tables: dict[str, dict[str, Any]] = {}
    count = draw(st.integers(0, len(SECTIONS)))
    sections = draw(st.lists(st.sampled_from(list(SECTIONS)), min_size=count, max_size=count, unique=True))
    if _chance(draw, bad):
        sections.append(draw(JUNK_NAMES.filter(lambda name: name not in sections)))
    for section in sections:
        if section not in SECTIONS and draw(st.booleans()):
            loose[section] = draw(ANY_VALUE)
            continue
        names = [k for s, k in KINDS if s == section] or ["junk"]
        keys = draw(st.lists(st.sampled_from(names), max_size=6, unique=True))
        if _chance(draw, bad):
            keys.append(draw(JUNK_NAMES.filter(lambda name, taken=tuple(keys): name not in taken)))
        tables[section] = {key: draw(value_for(section, key, _chance(draw, bad))) for key in keys}
    if _chance(draw, bad):
        loose[draw(st.sampled_from(list(SECTIONS)))] = draw(SCALARS)  # a section written as a plain key
    lines = [f"{toml_value(k)} = {toml_value(v)}" for k, v in loose.items() if k not in tables]
    for section, values in tables.items():
        lines.append(f"[{toml_value(section)}]")
        lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def as_env_text(value: Any) -> str:
    """How a value would be written in an environment variable (no NUL: the OS does not allow it)."""
    text = toml_value(value) if not isinstance(value, str) else value
    return text.replace("\x00", "")


@st.composite
def environments(draw: st.DrawFn, bad: int = 8) -> dict[str, str]:
    """``EDGEPOSE_*`` overrides: real keys, other variables edgepose reads, and (``bad`` %) junk."""
    env: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 4))):
        choice = draw(st.integers(0, 9)) if _chance(draw, bad) else 0
        if choice < 7:
            section, key = draw(st.sampled_from(list(KINDS)))
            env[env_name(section, key)] = as_env_text(draw(value_for(section, key, _chance(draw, bad))))
        elif choice == 7:
            env[draw(st.sampled_from(list(OTHER_ENV_VARS)))] = draw(st.text(max_size=10)).replace("\x00", "")
        elif choice == 8:
            env["EDGEPOSE_" + draw(st.text(st.characters(codec="ascii", exclude_characters="\x00="), max_size=20))] = (
                "1"
            )
        else:
            env[draw(st.text(max_size=10)).replace("\x00", "") + "_UNRELATED"] = "x"  # not ours: ignored
    return env


@st.composite
def flag_overrides(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """Flag values as argparse hands them over: str, int or float, ``None`` when absent."""
    out: dict[str, dict[str, Any]] = {}
    for section, key in draw(st.lists(st.sampled_from(list(KINDS)), max_size=3, unique=True)):
        value = draw(value_for(section, key, _chance(draw, 8)) | st.none())
        if not isinstance(value, (str, int, float, type(None))):
            value = as_env_text(value)
        out.setdefault(section, {})[key] = value
    return out


def _check_valid(config: Config) -> None:
    """A config build_config returned really is within the rules."""
    for (section, key), limit in LIMITS.items():
        value = getattr(getattr(config, section), key)
        assert type(value) is KINDS[(section, key)], (section, key, value)
        assert limit.accepts(value), (section, key, value)


def _build(text: str, env: dict[str, str], flags: dict[str, dict[str, Any]]) -> Config | ConfigError:
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "edgepose.toml"
        file.write_text(text, encoding="utf-8")
        try:
            return build_config(file, environ=env, overrides=flags)
        except ConfigError as exc:
            return exc


@pytest.mark.slow
@FUZZ
@given(documents(), environments(), flag_overrides())
def test_random_configs_are_valid_or_a_one_line_config_error(
    text: str, env: dict[str, str], flags: dict[str, dict[str, Any]]
) -> None:
    result = _build(text, env, flags)  # anything but ConfigError propagates and fails the test
    if isinstance(result, ConfigError):
        message = str(result)
        assert message and "\n" not in message and "\r" not in message, message
    else:
        _check_valid(result)


@pytest.mark.slow
@FUZZ
@given(documents(bad=0), environments(bad=0))
def test_printed_config_parses_back_to_the_same_config(text: str, env: dict[str, str]) -> None:
    config = _build(text, env, {})
    assume(not isinstance(config, ConfigError))  # a few "valid" combinations clash, e.g. a TLS file without mqtts://
    assert isinstance(config, Config)
    printed = to_toml(redacted(config))
    parsed = tomllib.loads(printed)
    for section, key in SECRET_KEYS:
        assert parsed[section][key] in ("", REDACTED), "secrets are never printed"
    again = _build(printed, {}, {})
    assert isinstance(again, Config), again
    assert redacted(again) == redacted(config)
    if config.mqtt.url == redact_url(config.mqtt.url):  # no password in the URL: only the token can differ
        token = {"preview": {"token": config.preview.token}}
        restored = Config(**{s: dataclasses.replace(getattr(again, s), **token.get(s, {})) for s in SECTIONS})
        assert restored == config, "apart from secrets, the printed config is the config"


def test_print_config_on_the_command_line_parses_back(tmp_path: Path) -> None:
    file = tmp_path / "edgepose.toml"
    file.write_text(
        '[model]\nthreads = 3\nmin_score = 0.35\n[source]\nsource = "rtsp://cam/\\"live\\""\nfps = 12.5\n'
        '[mqtt]\nurl = "mqtt://cam:s3cret@broker:1883"\nkeepalive_s = 65535\nreconnect_max_s = 3600\n'
        '[preview]\ntoken = "hunter2"\nfps = 0.5\n'
    )
    proc = run_cli("run", "--config", str(file), "--print-config", env={"EDGEPOSE_OUTPUT_PATH": "out ☃.jsonl"})
    assert proc.returncode == 0, proc.stderr
    assert "s3cret" not in proc.stdout and "hunter2" not in proc.stdout
    printed = tmp_path / "printed.toml"
    printed.write_text(proc.stdout)
    config = build_config(file, environ={"EDGEPOSE_OUTPUT_PATH": "out ☃.jsonl"})
    again = build_config(printed, environ={})
    assert redacted(again) == redacted(config)
    assert again.source.source == 'rtsp://cam/"live"' and again.output.path == "out ☃.jsonl"
    assert (again.mqtt.url, again.preview.token) == ("mqtt://cam:***@broker:1883", "***")
