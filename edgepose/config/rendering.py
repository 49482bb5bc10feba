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
