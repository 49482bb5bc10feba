"""One validated configuration: TOML file, then ``EDGEPOSE_<SECTION>_<KEY>`` environment, then CLI flags.

Each section is a frozen dataclass handed to the part that needs it; unknown keys and bad values
are rejected once, at start, with a :class:`~edgepose.errors.ConfigError` that names the key.
"""

from __future__ import annotations

import dataclasses
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
    min_score: float = 0.2
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


SECTIONS: dict[str, type[Any]] = typing.get_type_hints(Config)
SECRET_KEYS = {("preview", "token")}


def _section_types(section: str) -> dict[str, Any]:
    hints = typing.get_type_hints(SECTIONS[section])
    return {f.name: hints[f.name] for f in dataclasses.fields(SECTIONS[section])}


def _coerce(where: str, value: Any, kind: Any) -> Any:
    """Convert a TOML/env/CLI value to the field's type, or raise ConfigError naming ``where``."""
    if isinstance(kind, types.UnionType):  # pragma: no cover - no optional fields today
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a whole number, not {value!r}") from None
    if kind is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, not {value!r}") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, not {value!r}")
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
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    layer: dict[str, dict[str, Any]] = {}
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{path}: unknown section [{section}]; known: {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {section} must be a [section] table")
        known = _section_types(section)
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown key {section}.{key}; known: {', '.join(known)}")
            layer.setdefault(section, {})[key] = _coerce(f"{path}: {section}.{key}", value, known[key])
    return layer


def read_env(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Collect ``EDGEPOSE_<SECTION>_<KEY>`` overrides; unknown ones are errors.

    Variables the program uses for other purposes (``EDGEPOSE_MODEL_MIRROR``) are skipped.
    """
    layer: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "EDGEPOSE_MODEL_MIRROR":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            continue
        key = rest[len(section) + 1 :]
        known = _section_types(section)
        if key not in known:
            raise ConfigError(f"environment variable {name}: unknown key {section}.{key}; known: {', '.join(known)}")
        layer.setdefault(section, {})[key] = _coerce(f"environment variable {name}", value, known[key])
    return layer


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
            if value is not None:
                cli.setdefault(section, {})[key] = _coerce(f"--{key.replace('_', '-')}", value, known[key])
    layers.append(cli)
    for layer in layers:
        for section, values in layer.items():
            merged.setdefault(section, {}).update(values)
    config = Config(**{name: SECTIONS[name](**merged.get(name, {})) for name in SECTIONS})
    return validate(config)


def validate(config: Config) -> Config:
    """Check value ranges and choices; return the config with aliases normalised.

    Raises:
        ConfigError: The first invalid value found.
    """
    model = config.model
    runtime = RUNTIME_ALIASES.get(model.runtime, model.runtime)
    if runtime not in RUNTIME_CHOICES:
        raise ConfigError(f"runtime must be one of {', '.join(RUNTIME_CHOICES)}, not {model.runtime!r}")
    if model.delegate not in DELEGATES:
        raise ConfigError(f"delegate must be one of {', '.join(DELEGATES)}, not {model.delegate!r}")
    if not 0 <= model.threads <= 64:
        raise ConfigError(f"threads must be between 1 and 64 (0 = all cores, at most 4), not {model.threads}")
    if not 0.0 <= model.min_score <= 1.0:
        raise ConfigError(f"min_score must be between 0 and 1, not {model.min_score}")
    if model.tta not in TTA_MODES:
        raise ConfigError(f"tta must be one of {', '.join(TTA_MODES)}, not {model.tta!r}")
    if not model.name:
        raise ConfigError("model must name a model (lightning, thunder) or a .tflite path")
    src = config.source
    if src.width <= 0 or src.height <= 0:
        raise ConfigError(f"source size must be positive, not {src.width}x{src.height}")
    if src.fps <= 0:
        raise ConfigError(f"source fps must be positive, not {src.fps}")
    if src.max_frames < 0:
        raise ConfigError(f"max-frames must be 0 (no limit) or more, not {src.max_frames}")
    if src.stale_after_s <= 0:
        raise ConfigError(f"stale_after_s must be positive, not {src.stale_after_s}")
    if not 0.5 <= src.timeout_s <= 3600:
        raise ConfigError(f"source timeout_s must be between 0.5 and 3600 seconds, not {src.timeout_s}")
    if not 0 <= src.max_fps <= 1000:
        raise ConfigError(f"source max_fps must be between 0 (no cap) and 1000, not {src.max_fps}")
    _validate_idle(config.idle)
    mqtt = config.mqtt
    if mqtt.url:
        parts = urlsplit(mqtt.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(
                f"mqtt url must look like mqtt://[user@]host[:port] or mqtts://…, not {redact_url(mqtt.url)!r}"
            )
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ConfigError(f"mqtt url has a bad port: {redact_url(mqtt.url)!r}") from None
    if mqtt.max_rate < 0:
        raise ConfigError(f"mqtt max_rate must be 0 (no limit) or more, not {mqtt.max_rate}")
    if mqtt.stats_interval_s <= 0:
        raise ConfigError(f"mqtt stats_interval_s must be positive, not {mqtt.stats_interval_s}")
    if mqtt.queue_size < 1:
        raise ConfigError(f"mqtt queue_size must be at least 1, not {mqtt.queue_size}")
    if mqtt.keepalive_s < 5:
        raise ConfigError(f"mqtt keepalive_s must be at least 5, not {mqtt.keepalive_s}")
    if mqtt.reconnect_max_s < 1:
        raise ConfigError(f"mqtt reconnect_max_s must be at least 1, not {mqtt.reconnect_max_s}")
    _validate_mqtt_names(mqtt)
    preview = config.preview
    if preview.mode not in PREVIEW_MODES:
        raise ConfigError(f"preview mode must be one of {', '.join(PREVIEW_MODES)}, not {preview.mode!r}")
    if preview.fps <= 0:
        raise ConfigError(f"preview fps must be positive, not {preview.fps}")
    return dataclasses.replace(config, model=dataclasses.replace(model, runtime=runtime))


def _validate_idle(idle: IdleConfig) -> None:
    if not 0 < idle.after_s <= 86400:
        raise ConfigError(f"idle after_s must be between 0 and 86400 seconds, not {idle.after_s}")
    if not 0.2 <= idle.fps <= 60:  # at least one run every 5 s: health and the systemd watchdog see it
        raise ConfigError(f"idle fps must be between 0.2 and 60, not {idle.fps}")
    if not 0 <= idle.motion_threshold <= 255:
        raise ConfigError(f"idle motion_threshold must be between 0 and 255 grey levels, not {idle.motion_threshold}")
    if not 0 < idle.check_fps <= 120:
        raise ConfigError(f"idle check_fps must be above 0 and at most 120, not {idle.check_fps}")


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
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    return parts._replace(netloc=netloc).geturl()


def redacted(config: Config) -> dict[str, dict[str, Any]]:
    """Return the config as plain data with every secret replaced by ``***``."""
    data = dataclasses.asdict(config)
    for section, key in SECRET_KEYS:
        if data[section][key]:
            data[section][key] = REDACTED
    data["mqtt"]["url"] = redact_url(data["mqtt"]["url"])
    return data


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
                text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)
