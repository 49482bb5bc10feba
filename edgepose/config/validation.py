"""Checks of a whole configuration: every key's type and range, then choices, rules across keys and the MQTT names."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from edgepose.config.choices import CHOICES, RUNTIME_ALIASES
from edgepose.config.coercion import coerce
from edgepose.config.preview_access import check_access
from edgepose.config.rendering import redact_url
from edgepose.config.schema import SECTIONS, AnalyticsConfig, Config, ModelConfig, MqttConfig
from edgepose.errors import ConfigError
from edgepose.manifest import model_choices


def validate(config: Config, environ: Mapping[str, str] | None = None) -> Config:
    """Check types, ranges and choices; return the config with values coerced and aliases normalised.

    Every field goes through the same checks as a value from a file, so a :class:`Config` built in code
    is held to the same rules (see :data:`LIMITS`). With the preview on, its address and token rule
    are checked too (reading the token file or the systemd credential named in ``environ``, default
    ``os.environ``), so ``run`` stops before loading a model and ``doctor`` reports it.

    Raises:
        ConfigError: The first invalid value found.
    """
    checked = {
        section: dataclasses.replace(
            getattr(config, section),
            **{
                f.name: coerce(f"{section}.{f.name}", section, f.name, getattr(getattr(config, section), f.name))
                for f in dataclasses.fields(SECTIONS[section])
            },
        )
        for section in SECTIONS
    }
    config = Config(**checked)
    model = config.model
    runtime = RUNTIME_ALIASES.get(model.runtime, model.runtime)
    config = dataclasses.replace(config, model=dataclasses.replace(model, runtime=runtime))
    _validate_choices(config)
    _validate_analytics(config.analytics)
    if not model.name:
        raise ConfigError(f"model must name a model: {model_choices(ModelConfig.name)}")
    if not model.edgetpu_library.strip():
        raise ConfigError(
            f"model edgetpu_library must name the EdgeTPU delegate library (default {ModelConfig.edgetpu_library})"
        )
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
    if config.preview.listen:
        check_access(config.preview, environ)
    return config


def _validate_choices(config: Config) -> None:
    """Check every key with a fixed set of values (:data:`CHOICES`); its default is accepted too."""
    for (section, key), choices in CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in choices and value != getattr(SECTIONS[section](), key):
            raise ConfigError(f"{section}.{key} must be one of {', '.join(choices)}, not {value!r}")


def _validate_analytics(analytics: AnalyticsConfig) -> None:
    """Check the rules across ``[analytics]`` keys (each key's own range is in :data:`LIMITS`)."""
    upright, down, lying = analytics.fall_upright_deg, analytics.fall_down_deg, analytics.fall_lying_deg
    if not upright < down <= lying:
        raise ConfigError(
            "analytics.fall_upright_deg < analytics.fall_down_deg <= analytics.fall_lying_deg must hold, not "
            f"{upright:g}, {down:g}, {lying:g}"
        )


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
