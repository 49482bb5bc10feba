"""One validated configuration: TOML file, then ``EDGEPOSE_<SECTION>_<KEY>`` environment, then CLI flags.

Each section is a frozen dataclass handed to the part that needs it; unknown keys and bad values
are rejected once, at start, with a :class:`~edgepose.errors.ConfigError` that names the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgepose.analytics import AnalyticsConfig, SmoothingConfig
from edgepose.errors import ConfigError
from edgepose.inference.backends import DELEGATES
from edgepose.inference.runtimes import RUNTIME_ALIASES, RUNTIME_CHOICES
from edgepose.inference.tta import TTA_MODES
from edgepose.sinks.drawing import MODES as PREVIEW_MODES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "EDGEPOSE_"
REDACTED = "***"

#: ``EDGEPOSE_*`` variables that are not config keys, with who reads them. Every other ``EDGEPOSE_*``
#: variable must name a config key (``EDGEPOSE_<SECTION>_<KEY>``), so a misspelt one is an error.
OTHER_ENV_VARS: dict[str, str] = {
    "EDGEPOSE_MODEL_MIRROR": "models fetch: folder to copy model files from (models.py, install.sh)",
    "EDGEPOSE_TESTDATA": "tests and benchmarks: folder of test photos",
    "EDGEPOSE_CORAL_APT_URL": "scripts/install-system.sh: Coral apt repository",
    "EDGEPOSE_CORAL_KEY_URL": "scripts/install-system.sh: Coral apt key",
}


@dataclass(frozen=True)
class ModelConfig:
    """Which model runs where."""

    name: str = "lightning"
    runtime: str = "auto"
    delegate: str = "auto"
    threads: int = 0
    models_dir: str = ""
    edgetpu_library: str = "libedgetpu.so.1"
    edgetpu_probe: bool = True
    edgetpu_worker: bool = True
    min_score: float = 0.2
    max_people: int = 20
    tta: str = "flip"


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from."""

    source: str = ""
    width: int = 640
    height: int = 480
    fps: float = 30.0
    realtime: bool = False
    max_frames: int = 0
    stale_after_s: float = 5.0
    timeout_s: float = 10.0
    loop: bool = False
    max_fps: float = 0.0


@dataclass(frozen=True)
class OutputConfig:
    """JSON-lines output of ``edgepose run``."""

    path: str = ""


@dataclass(frozen=True)
class MqttConfig:
    """MQTT publishing (see README, "MQTT")."""

    url: str = ""
    device_id: str = ""
    prefix: str = "edgepose"
    max_rate: float = 0.0
    only_person: bool = False
    stats_interval_s: float = 30.0
    ha_discovery: bool = False
    password_file: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_insecure: bool = False
    keepalive_s: int = 30
    queue_size: int = 1000
    reconnect_max_s: float = 30.0


@dataclass(frozen=True)
class PreviewConfig:
    """The HTTP preview for headless boxes."""

    listen: str = ""
    fps: float = 10.0
    mode: str = "video"
    token: str = ""
    token_file: str = ""
    insecure: bool = False
    max_connections: int = 8


@dataclass(frozen=True)
class IdleConfig:
    """Idle mode: the model at a trickle while nobody is there (see ``edgepose/pipeline/idle.py``)."""

    enabled: bool = True
    after_s: float = 10.0
    fps: float = 2.0
    motion_threshold: float = 6.0
    check_fps: float = 10.0


@dataclass(frozen=True)
class DisplayConfig:
    """The on-screen view for an attached monitor."""

    enabled: bool = False
    fullscreen: bool = False


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    idle: IdleConfig = field(default_factory=IdleConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)


SECTIONS: dict[str, type[Any]] = typing.get_type_hints(Config)
SECRET_KEYS = {("preview", "token")}
#: Upper bound of ``preview.max_connections`` (each connection being served is a thread).
MAX_PREVIEW_CONNECTIONS = 256
#: TOML integers are 64-bit: the bounds of an integer key without a narrower range.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Longest string value (PATH_MAX); keeps MQTT topics far below the protocol's 65535 bytes.
MAX_TEXT = 4096
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class Limit:
    """The accepted range of a numeric key. Values are always finite: NaN and ±inf never pass.

    Attributes:
        low: Smallest accepted value.
        high: Largest accepted value.
        zero: 0 is accepted too, below ``low`` (it means "off" or "no limit").
        note: Why the range is what it is, or what 0 means; shown in the error.
    """

    low: float
    high: float
    zero: bool = False
    note: str = ""

    def accepts(self, value: float) -> bool:
        """Whether ``value`` is finite and in range."""
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return self.low <= value <= self.high or (self.zero and value == 0)

    def describe(self) -> str:
        """Describe the range in words, e.g. ``from 5 to 65535 (65535 is MQTT's largest keepalive)``."""
        text = f"from {_number(self.low)} to {_number(self.high)}"
        text = f"0 or {text}" if self.zero else text
        return f"{text} ({self.note})" if self.note else text


#: The range of every numeric key. A key missing here only has to be finite (and 64-bit for integers).
LIMITS: dict[tuple[str, str], Limit] = {
    ("model", "threads"): Limit(0, 64, note="0: all cores, at most 4"),
    ("model", "min_score"): Limit(0.0, 1.0),
    ("model", "max_people"): Limit(1, 100, note="poses per frame, with posenet"),
    ("source", "width"): Limit(1, 16384),
    ("source", "height"): Limit(1, 16384),
    ("source", "fps"): Limit(0.1, 1000),
    ("source", "max_frames"): Limit(0, INT64_MAX, note="0: no limit"),
    ("source", "stale_after_s"): Limit(0.1, 86400),
    ("source", "timeout_s"): Limit(0.5, 3600),
    ("source", "max_fps"): Limit(0.1, 1000, zero=True, note="0: no cap"),
    ("mqtt", "max_rate"): Limit(0.001, 1000, zero=True, note="0: every frame"),
    ("mqtt", "stats_interval_s"): Limit(0.1, 86400),
    ("mqtt", "keepalive_s"): Limit(5, 65535, note="65535 is MQTT's largest keepalive"),
    ("mqtt", "queue_size"): Limit(1, 1_000_000),
    ("mqtt", "reconnect_max_s"): Limit(1, 3600),
    ("preview", "fps"): Limit(0.1, 100),
    ("preview", "max_connections"): Limit(1, MAX_PREVIEW_CONNECTIONS, note="each one being served is a thread"),
    ("idle", "after_s"): Limit(0.1, 86400),
    ("idle", "fps"): Limit(0.2, 60, note="at least one run every 5 s: health and the systemd watchdog see it"),
    ("idle", "motion_threshold"): Limit(0, 255, note="grey levels"),
    ("idle", "check_fps"): Limit(0.1, 120),
    ("smoothing", "min_cutoff"): Limit(0.001, 1000, note="Hz"),
    ("smoothing", "beta"): Limit(0, 1_000_000),
    ("smoothing", "d_cutoff"): Limit(0.001, 1000, note="Hz"),
    ("smoothing", "crop_alpha"): Limit(0.001, 1.0, note="1: no crop smoothing"),
    ("smoothing", "lost_score"): Limit(0.0, 1.0),
    ("smoothing", "max_gap_s"): Limit(0.001, 3600),
    ("analytics", "keypoint_score"): Limit(0.0, 1.0),
    ("analytics", "enter_score"): Limit(0.0, 1.0),
    ("analytics", "enter_s"): Limit(0, 3600),
    ("analytics", "leave_score"): Limit(0.0, 1.0),
    ("analytics", "leave_s"): Limit(0, 3600),
    ("analytics", "dropout_s"): Limit(0, 60),
    ("analytics", "fall_upright_deg"): Limit(0, 40, note="upright: at most this tilt"),
    ("analytics", "fall_lying_deg"): Limit(60, 90, note="lying: at least this tilt"),
    ("analytics", "fall_down_deg"): Limit(41, 60, note="between upright and lying"),
    ("analytics", "fall_window_s"): Limit(0.01, 60),
    ("analytics", "fall_drop"): Limit(0, 10, note="body heights"),
    ("analytics", "fall_down_s"): Limit(0, 3600),
    ("analytics", "fall_recover_s"): Limit(0, 3600),
    ("analytics", "rep_confirm_frames"): Limit(1, 1000),
    ("analytics", "rep_min_s"): Limit(0, 60),
}


def _number(value: float) -> str:
    """``30`` for 30.0, ``0.1`` for 0.1."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _show(value: Any, secret: bool = False) -> str:
    """Render a rejected value for a one-line error message: short, safe, secrets hidden."""
    if secret:
        return repr(REDACTED)
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return "a number too long to show"
    return text if len(text) <= 80 else text[:60] + "…"


def _name(text: str) -> str:
    """Return a section or key name as written, quoted when it holds unprintable characters."""
    return text if text.isprintable() else repr(text)


def _section_types(section: str) -> dict[str, Any]:
    hints = typing.get_type_hints(SECTIONS[section])
    return {f.name: hints[f.name] for f in dataclasses.fields(SECTIONS[section])}


def _as_int(value: Any) -> int | None:
    """Return an int from an int, an integral float or a decimal string; ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _as_float(value: Any) -> float | None:
    """Return a float from a number or a numeric string (maybe NaN or inf); ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int beyond any float: out of every range
            return math.inf
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _coerce(where: str, section: str, key: str, value: Any) -> Any:
    """Convert a TOML/env/CLI value to the type of ``section.key`` and check its range.

    Args:
        where: Names the key and where the value came from, e.g. ``environment variable EDGEPOSE_MQTT_URL``.
        section: Config section.
        key: Key within the section.
        value: The raw value.

    Raises:
        ConfigError: The value has the wrong type, is not finite, is out of range or has control characters.
    """
    kind = _section_types(section)[key]
    if isinstance(kind, types.UnionType):  # pragma: no cover - no optional fields today
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    secret = (section, key) in SECRET_KEYS
    shown = _show(redact_url(value) if (section, key) == ("mqtt", "url") and isinstance(value, str) else value, secret)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{where} must be true or false, not {shown}")
    if kind is int or kind is float:
        limit = LIMITS.get((section, key), Limit(INT64_MIN, INT64_MAX) if kind is int else None)
        number = _as_int(value) if kind is int else _as_float(value)
        what = "a whole number" if kind is int else "a finite number"
        bounds = f" {limit.describe()}" if limit else ""
        if number is None or not (limit.accepts(number) if limit else math.isfinite(number)):
            raise ConfigError(f"{where} must be {what}{bounds}, not {shown}")
        return number
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            value = str(value)
        except ValueError:  # an integer too long to print
            raise ConfigError(f"{where} must be a string, not {shown}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, not {shown}")
    if _BAD_TEXT.search(value):
        raise ConfigError(f"{where} must not contain control characters or invalid UTF-8, not {shown}")
    if len(value) > MAX_TEXT:
        raise ConfigError(f"{where} must be at most {MAX_TEXT} characters, not {len(value)}")
    return value


def read_toml(path: Path) -> dict[str, dict[str, Any]]:
    """Read a config file; unknown sections and keys are errors.

    Raises:
        ConfigError: Missing, unreadable or invalid file.
    """
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, bad UTF-8, an integer too long, deep nesting
        raise ConfigError(f"config file {path} is not valid TOML: {str(exc).splitlines()[0][:200]}") from None
    layer: dict[str, dict[str, Any]] = {}
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{path}: unknown section [{_name(section)}]; known: {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {section} must be a [section] table")
        known = _section_types(section)
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown key {section}.{_name(key)}; known: {', '.join(known)}")
            layer.setdefault(section, {})[key] = _coerce(f"{path}: {section}.{key}", section, key, value)
    return layer


def env_name(section: str, key: str) -> str:
    """Return the environment variable that sets ``section.key``."""
    return f"{ENV_PREFIX}{section}_{key}".upper()


def env_names(section: str | None = None) -> list[str]:
    """Return every config variable (of one section, when given)."""
    return [env_name(s, k) for s in SECTIONS if section in (None, s) for k in _section_types(s)]


def _unknown_env(name: str, section: str | None) -> ConfigError:
    """Build the error for an ``EDGEPOSE_*`` variable that names no config key: a guess, then the valid names."""
    every = env_names() + list(OTHER_ENV_VARS)
    guess = difflib.get_close_matches(name.upper(), every, n=1, cutoff=0.75)
    hint = f" (did you mean {guess[0]}?)" if guess else ""
    valid = env_names(section) if section else every
    return ConfigError(f"unknown environment variable {_name(name)}{hint}; valid: {', '.join(valid)}")


def read_env(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Collect ``EDGEPOSE_<SECTION>_<KEY>`` overrides; any other ``EDGEPOSE_*`` variable is an error.

    The variables in :data:`OTHER_ENV_VARS` (``EDGEPOSE_MODEL_MIRROR``…) are read elsewhere and skipped.

    Raises:
        ConfigError: An unknown ``EDGEPOSE_*`` variable (a typo would otherwise be ignored) or a bad value.
    """
    layer: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in OTHER_ENV_VARS:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        key = rest[len(section) + 1 :] if section else ""
        if section is None or key not in _section_types(section):
            raise _unknown_env(name, section)
        where = f"environment variable {name} ({section}.{key})"
        layer.setdefault(section, {})[key] = _coerce(where, section, key, value)
    return layer


def _flag_name(section: str, key: str) -> str:
    """Return the command-line flag bound to ``section.key``, for error messages."""
    from edgepose.commands.flags import FLAGS  # here, not on top: the commands import this module

    return next((f.names[0] for f in FLAGS if (f.section, f.key) == (section, key)), "command-line value")


def build_config(
    file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Merge file, environment and CLI layers (later wins) and validate the result.

    Args:
        file: Optional TOML file.
        environ: Environment to read overrides from (default: ``os.environ``).
        overrides: CLI values as ``{section: {key: value}}``; ``None`` values are ignored.

    Raises:
        ConfigError: An unknown key or an invalid value, with where it came from.
    """
    merged: dict[str, dict[str, Any]] = {}
    layers = [read_toml(file) if file else {}, read_env(os.environ if environ is None else environ)]
    cli: dict[str, dict[str, Any]] = {}
    for section, values in (overrides or {}).items():
        known = _section_types(section)
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"unknown key {section}.{key}; known: {', '.join(known)}")
            if value is not None:
                where = f"{_flag_name(section, key)} ({section}.{key})"
                cli.setdefault(section, {})[key] = _coerce(where, section, key, value)
    layers.append(cli)
    for layer in layers:
        for section, values in layer.items():
            merged.setdefault(section, {}).update(values)
    config = Config(**{name: SECTIONS[name](**merged.get(name, {})) for name in SECTIONS})
    return validate(config)


def validate(config: Config) -> Config:
    """Check types, ranges and choices; return the config with values coerced and aliases normalised.

    Every field goes through the same checks as a value from a file, so a :class:`Config` built in code
    is held to the same rules (see :data:`LIMITS`).

    Raises:
        ConfigError: The first invalid value found.
    """
    checked = {
        section: dataclasses.replace(
            getattr(config, section),
            **{
                f.name: _coerce(f"{section}.{f.name}", section, f.name, getattr(getattr(config, section), f.name))
                for f in dataclasses.fields(SECTIONS[section])
            },
        )
        for section in SECTIONS
    }
    config = Config(**checked)
    model = config.model
    runtime = RUNTIME_ALIASES.get(model.runtime, model.runtime)
    if runtime not in RUNTIME_CHOICES:
        raise ConfigError(f"runtime must be one of {', '.join(RUNTIME_CHOICES)}, not {model.runtime!r}")
    if model.delegate not in DELEGATES:
        raise ConfigError(f"delegate must be one of {', '.join(DELEGATES)}, not {model.delegate!r}")
    if model.tta not in TTA_MODES:
        raise ConfigError(f"tta must be one of {', '.join(TTA_MODES)}, not {model.tta!r}")
    if not model.name:
        raise ConfigError("model must name a model (lightning, thunder, posenet) or a .tflite path")
    if not model.edgetpu_library.strip():
        raise ConfigError("model edgetpu_library must name the EdgeTPU delegate library (default libedgetpu.so.1)")
    mqtt = config.mqtt
    if mqtt.url:
        try:
            parts = urlsplit(mqtt.url)
            port = parts.port
        except ValueError:  # a bad port or a broken [IPv6] address
            raise ConfigError(f"mqtt url has a bad host or port: {redact_url(mqtt.url)!r}") from None
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(
                f"mqtt url must look like mqtt://[user@]host[:port] or mqtts://…, not {redact_url(mqtt.url)!r}"
            )
        if port == 0:
            raise ConfigError(f"mqtt url has a bad port (1 to 65535): {redact_url(mqtt.url)!r}")
    _validate_mqtt_names(mqtt)
    preview = config.preview
    if preview.mode not in PREVIEW_MODES:
        raise ConfigError(f"preview mode must be one of {', '.join(PREVIEW_MODES)}, not {preview.mode!r}")
    return dataclasses.replace(config, model=dataclasses.replace(model, runtime=runtime))


def _validate_mqtt_names(mqtt: MqttConfig) -> None:
    """Check the MQTT url has no path, topic parts are safe, and TLS files come with mqtts://."""
    if mqtt.url and urlsplit(mqtt.url).path not in ("", "/"):
        raise ConfigError(f"mqtt url must not have a path: {redact_url(mqtt.url)!r}")
    if mqtt.device_id and not re.fullmatch(r"[a-zA-Z0-9_-]+", mqtt.device_id):
        raise ConfigError(f"mqtt device_id may only contain letters, digits, _ and -, not {mqtt.device_id!r}")
    if any(not level or "+" in level or "#" in level for level in mqtt.prefix.split("/")):
        raise ConfigError(f"mqtt prefix must be topic levels without +, # or empty ones, not {mqtt.prefix!r}")
    tls_files = [f for f in (mqtt.ca_file, mqtt.cert_file, mqtt.key_file) if f]
    if tls_files and mqtt.url and not mqtt.url.startswith("mqtts://"):
        raise ConfigError("mqtt ca_file, cert_file and key_file need an mqtts:// url")
    if mqtt.key_file and not mqtt.cert_file:
        raise ConfigError("mqtt key_file needs cert_file (the client certificate)")


def redact_url(url: str) -> str:
    """Hide a password embedded in a URL."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL at all: show nothing that might be a secret
        return REDACTED if "@" in url else url
    if password is None:
        return url
    netloc = parts.netloc.replace(f":{password}@", f":{REDACTED}@", 1)
    return parts._replace(netloc=netloc).geturl()


def redacted(config: Config) -> dict[str, dict[str, Any]]:
    """Return the config as plain data with every secret replaced by ``***``."""
    data = dataclasses.asdict(config)
    for section, key in SECRET_KEYS:
        if data[section][key]:
            data[section][key] = REDACTED
    data["mqtt"]["url"] = redact_url(data["mqtt"]["url"])
    return data


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def to_toml(data: Mapping[str, Mapping[str, Any]]) -> str:
    """Render ``{section: {key: value}}`` as TOML (strings, numbers and booleans only)."""
    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (int, float)):
                text = repr(value)
            else:
                text = toml_string(str(value))
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)


def toml_string(text: str) -> str:
    """Quote ``text`` as a TOML basic string (quotes, backslashes and control characters escaped)."""
    out = (_TOML_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text)
    return '"' + "".join(out) + '"'
