"""The three layers of the configuration, later wins: TOML file, ``EDGEPOSE_<SECTION>_<KEY>`` environment, flags."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgepose.config.coercion import coerce
from edgepose.config.flags import FLAGS
from edgepose.config.schema import SECTIONS, Config, section_types
from edgepose.config.validation import validate
from edgepose.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "EDGEPOSE_"
#: ``EDGEPOSE_*`` variables that are not config keys, with who reads them. Every other ``EDGEPOSE_*``
#: variable must name a config key (``EDGEPOSE_<SECTION>_<KEY>``), so a misspelt one is an error.
OTHER_ENV_VARS: dict[str, str] = {
    "EDGEPOSE_MODEL_MIRROR": "models fetch: folder to copy model files from (models.py, install.sh)",
    "EDGEPOSE_TESTDATA": "tests and benchmarks: folder of test photos",
    "EDGEPOSE_TEST_NO_SKIP": "tests: 1 turns every skipped test into a failure (.ci/run sets it)",
    "EDGEPOSE_CORAL_APT_URL": "scripts/install-system.sh: Coral apt repository",
    "EDGEPOSE_CORAL_KEY_URL": "scripts/install-system.sh: Coral apt key",
}


def _name(text: str) -> str:
    """Return a section or key name as written, quoted when it holds unprintable characters."""
    return text if text.isprintable() else repr(text)


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
        known = section_types(section)
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown key {section}.{_name(key)}; known: {', '.join(known)}")
            layer.setdefault(section, {})[key] = coerce(f"{path}: {section}.{key}", section, key, value)
    return layer


def env_name(section: str, key: str) -> str:
    """Return the environment variable that sets ``section.key``."""
    return f"{ENV_PREFIX}{section}_{key}".upper()


def env_names(section: str | None = None) -> list[str]:
    """Return every config variable (of one section, when given)."""
    return [env_name(s, k) for s in SECTIONS if section in (None, s) for k in section_types(s)]


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
        if section is None or key not in section_types(section):
            raise _unknown_env(name, section)
        where = f"environment variable {name} ({section}.{key})"
        layer.setdefault(section, {})[key] = coerce(where, section, key, value)
    return layer


def _flag_name(section: str, key: str) -> str:
    """Return the command-line flag bound to ``section.key``, for error messages."""
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
        known = section_types(section)
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"unknown key {section}.{key}; known: {', '.join(known)}")
            if value is not None:
                where = f"{_flag_name(section, key)} ({section}.{key})"
                cli.setdefault(section, {})[key] = coerce(where, section, key, value)
    layers.append(cli)
    for layer in layers:
        for section, values in layer.items():
            merged.setdefault(section, {}).update(values)
    config = Config(**{name: SECTIONS[name](**merged.get(name, {})) for name in SECTIONS})
    return validate(config, environ)
