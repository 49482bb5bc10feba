"""The ``[[zones]]`` list: raw tables (TOML) or :class:`ZoneConfig`s built in code, checked into zones.

Each zone has a ``name`` (unique; letters, digits, ``_`` and ``-``), a ``polygon`` of at least three
``[x, y]`` corners in frame coordinates from 0 to 1, and ``falls`` (whether lying inside is an alarm).
A bad entry is one :class:`~edgepose.errors.ConfigError` naming the zone and the key. Two names may not
differ only in case or in ``-`` against ``_``: they would have one :func:`zone_slug`, the part of a zone's Home
Assistant entities' ids.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from edgepose.config.schema import MAX_CORNERS, MAX_ZONES, ZONE_NAME_CHARS, ZONE_NAME_MAX, ZoneConfig
from edgepose.errors import ConfigError

_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{ZONE_NAME_MAX}}}")


def zone_slug(name: str) -> str:
    """Return the part of a zone's Home Assistant object ids its name gives: lower case, ``-`` as ``_``."""
    return name.lower().replace("-", "_")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + "…"


def _corner(where: str, i: int, raw: Any) -> tuple[float, float]:
    """Return one ``[x, y]`` corner as floats in 0–1, or raise naming it."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise ConfigError(f"{where}.polygon corner {i + 1} must be [x, y], not {_show(raw)}")
    out = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}.polygon corner {i + 1} must be two numbers, not {_show(raw)}")
        number = float(value)
        if not math.isfinite(number) or not 0.0 <= number <= 1.0:
            raise ConfigError(
                f"{where}.polygon corner {i + 1} must lie in the frame (x and y from 0 to 1), not {_show(raw)}"
            )
        out.append(number)
    return out[0], out[1]


def _polygon(where: str, raw: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, (list, tuple)) or not 3 <= len(raw) <= MAX_CORNERS:
        got = f"{len(raw)} corners" if isinstance(raw, (list, tuple)) else _show(raw)
        raise ConfigError(f"{where}.polygon must be 3 to {MAX_CORNERS} [x, y] corners, not {got}")
    corners = tuple(_corner(where, i, c) for i, c in enumerate(raw))
    twice_area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True))
    if abs(twice_area) < 1e-9:
        raise ConfigError(f"{where}.polygon has no area (its corners lie on a line)")
    return corners


def _zone(prefix: str, number: int, raw: Any) -> ZoneConfig:
    """Check entry ``number`` (a TOML table or a :class:`ZoneConfig`) and return it as a :class:`ZoneConfig`."""
    where = f"{prefix}zones[{number}]"
    if isinstance(raw, ZoneConfig):
        raw = dataclasses.asdict(raw)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table with name, polygon and falls, not {_show(raw)}")
    known = [f.name for f in dataclasses.fields(ZoneConfig)]
    unknown = [key for key in raw if key not in known]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(known)}")
    name = raw.get("name", "")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}.name must be 1 to {ZONE_NAME_MAX} {ZONE_NAME_CHARS}, not {_show(name)}")
    if "polygon" not in raw:
        raise ConfigError(f"{prefix}zone {name!r} needs a polygon: [[x, y], …], at least 3 corners from 0 to 1")
    falls = raw.get("falls", ZoneConfig.falls)
    if not isinstance(falls, bool):
        raise ConfigError(f"{prefix}zone {name!r}.falls must be true or false, not {_show(falls)}")
    return ZoneConfig(name, _polygon(f"{prefix}zone {name!r}", raw["polygon"]), falls)


def check_zones(where: str, raw: Any) -> tuple[ZoneConfig, ...]:
    """Return the zones of a ``[[zones]]`` list (TOML tables or :class:`ZoneConfig`s), checked.

    Args:
        where: Where the list came from, as the start of an error (``"edgepose.toml: "``, or ``""``).
        raw: The list.

    Raises:
        ConfigError: Not a list of tables, a bad name or polygon, a duplicate name, too many zones.
    """
    if isinstance(raw, dict) or not isinstance(raw, (list, tuple)):
        raise ConfigError(f"{where}zones must be a list of [[zones]] tables")
    if len(raw) > MAX_ZONES:
        raise ConfigError(f"{where}at most {MAX_ZONES} [[zones]], not {len(raw)}")
    zones = tuple(_zone(where, i + 1, entry) for i, entry in enumerate(raw))
    seen: dict[str, str] = {}
    for zone in zones:
        slug = zone_slug(zone.name)
        if zone.name in seen.values():
            raise ConfigError(f"{where}two [[zones]] are named {zone.name!r}: each name must be unique")
        if slug in seen:
            raise ConfigError(f"{where}[[zones]] {seen[slug]!r} and {zone.name!r} differ only in case or - and _; "
                              f"they would be one Home Assistant entity (zone_{slug}): rename one")  # fmt: skip
        seen[slug] = zone.name
    return zones
