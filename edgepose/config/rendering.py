"""The configuration shown to people: secrets redacted, rendered back as TOML."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from edgepose.config.schema import SECRET_KEYS, Config

REDACTED = "***"


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


def redacted(config: Config) -> dict[str, Any]:
    """Return the config as plain data with every secret replaced by ``***``."""
    data = dataclasses.asdict(config)
    for section, key in SECRET_KEYS:
        if data[section][key]:
            data[section][key] = REDACTED
    data["mqtt"]["url"] = redact_url(data["mqtt"]["url"])
    return data


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _value(value: Any) -> str:
    """Render one value: a string, number, boolean, or an array of them (arrays of arrays too)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return toml_string(str(value))


def to_toml(data: Mapping[str, Any]) -> str:
    """Render ``{section: {key: value}}`` as TOML; a section holding a list of tables becomes ``[[section]]``s."""
    lines: list[str] = []
    for section, values in data.items():
        tables = values if isinstance(values, (list, tuple)) else [values]
        for table in tables:
            lines.append(f"[[{section}]]" if tables is values else f"[{section}]")
            lines += [f"{key} = {_value(value)}" for key, value in table.items()]
            lines.append("")
    return "\n".join(lines)


def toml_string(text: str) -> str:
    """Quote ``text`` as a TOML basic string (quotes, backslashes and control characters escaped)."""
    out = (_TOML_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text)
    return '"' + "".join(out) + '"'
