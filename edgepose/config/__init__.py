"""One validated configuration: TOML file, then ``EDGEPOSE_<SECTION>_<KEY>`` environment, then CLI flags.

Each section is a frozen dataclass handed to the part that needs it; unknown keys and bad values
are rejected once, at start, with a :class:`~edgepose.errors.ConfigError` that names the key.

The modules: :mod:`~edgepose.config.schema` (the sections, every default and the range of every key),
:mod:`~edgepose.config.choices` (the values of the keys with a fixed set), :mod:`~edgepose.config.flags`
(the command-line flags bound to keys), :mod:`~edgepose.config.preview_access` (the preview's address and
token rule), :mod:`~edgepose.config.reference` (the generated configuration reference),
:mod:`~edgepose.config.coercion` (one raw value to its key's type), :mod:`~edgepose.config.reading`
(the file, environment and flag layers), :mod:`~edgepose.config.validation` (checks of the whole
config) and :mod:`~edgepose.config.rendering` (secrets redacted, TOML out).
"""

from __future__ import annotations

from edgepose.config.reading import OTHER_ENV_VARS, build_config, env_name
from edgepose.config.rendering import REDACTED, redact_url, redacted, to_toml
from edgepose.config.schema import (
    LIMITS,
    SECRET_KEYS,
    SECTIONS,
    AnalyticsConfig,
    Config,
    DisplayConfig,
    FallConfig,
    IdleConfig,
    ModelConfig,
    MqttConfig,
    PresenceConfig,
    PreviewConfig,
    RepConfig,
    SmoothingConfig,
    SnapshotConfig,
    SourceConfig,
)
from edgepose.config.validation import validate

__all__ = [
    "LIMITS",
    "OTHER_ENV_VARS",
    "REDACTED",
    "SECRET_KEYS",
    "SECTIONS",
    "AnalyticsConfig",
    "Config",
    "DisplayConfig",
    "FallConfig",
    "IdleConfig",
    "ModelConfig",
    "MqttConfig",
    "PresenceConfig",
    "PreviewConfig",
    "RepConfig",
    "SmoothingConfig",
    "SnapshotConfig",
    "SourceConfig",
    "build_config",
    "env_name",
    "redact_url",
    "redacted",
    "to_toml",
    "validate",
]
