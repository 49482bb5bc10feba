"""Coercion of one raw value (from TOML, the environment or a flag) to its key's type and range."""

from __future__ import annotations

import math
import re
import types
import typing
from typing import Any

from edgepose.config.rendering import REDACTED, redact_url
from edgepose.config.schema import INT64_MAX, INT64_MIN, LIMITS, MAX_TEXT, SECRET_KEYS, Limit, section_types
from edgepose.errors import ConfigError

_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _show(value: Any, secret: bool = False) -> str:
    """Render a rejected value for a one-line error message: short, safe, secrets hidden."""
    if secret:
        return repr(REDACTED)
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return "a number too long to show"
    return text if len(text) <= 80 else text[:60] + "…"


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


def coerce(where: str, section: str, key: str, value: Any) -> Any:
    """Convert a TOML/env/CLI value to the type of ``section.key`` and check its range.

    Args:
        where: Names the key and where the value came from, e.g. ``environment variable EDGEPOSE_MQTT_URL``.
        section: Config section.
        key: Key within the section.
        value: The raw value.

    Raises:
        ConfigError: The value has the wrong type, is not finite, is out of range or has control characters.
    """
    kind = section_types(section)[key]
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
