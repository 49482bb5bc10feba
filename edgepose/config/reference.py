"""The configuration reference, ``docs/configuration.md``, generated from the schema.

Every section and key with its type, default, range or choices, flag, environment variable and
description, all read from :mod:`~edgepose.config.schema` (descriptions are each section's
``Attributes:``), :mod:`~edgepose.config.choices` and :mod:`~edgepose.config.flags`. Write it with
``python -m edgepose.config.reference docs/configuration.md``; a test fails when the committed file is stale.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgepose.config.choices import CHOICES, RUNTIME_ALIASES
from edgepose.config.flags import FLAGS
from edgepose.config.reading import OTHER_ENV_VARS, env_name
from edgepose.config.schema import (
    INT64_MAX,
    LIMITS,
    SECRET_KEYS,
    SECTIONS,
    default_meaning,
    section_types,
    show_value,
)

COMMAND = "python -m edgepose.config.reference docs/configuration.md"
_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}
_ROLE = re.compile(r":\w+:`~?(?:[\w.]+\.)?([^`.]+)`")

INTRO = f"""# Configuration reference

<!-- Generated from edgepose/config/schema.py by `{COMMAND}`: do not edit by hand. -->

One TOML file (`--config`; without it, the service install's `/etc/edgepose/config.toml`), overridden by
environment variables `EDGEPOSE_<SECTION>_<KEY>`, overridden by flags. Unknown sections and keys are
errors, and every value is checked once, at start: a bad one stops edgepose with one line naming the key
and where it came from, and exit status 2. `edgepose --print-config` shows the merged result with secrets
replaced by `***`. Numbers must be finite and within their range; strings may not hold control characters.
"""


def _markdown(text: str) -> str:
    """Turn docstring markup into Markdown for a table cell: ``x`` → `x`, roles → their last name."""
    return _ROLE.sub(r"`\1`", text).replace("``", "`").replace("|", "\\|")


def key_descriptions(cls: type[Any]) -> dict[str, str]:
    """Return ``{key: description}`` from the ``Attributes:`` of a section's docstring, in its order.

    Raises:
        ValueError: A key of the section has no description, or a description names no key.
    """
    doc = inspect.cleandoc(cls.__doc__ or "")
    found: dict[str, str] = {}
    key = ""
    for line in doc.partition("Attributes:\n")[2].splitlines():
        if line.startswith("        ") and key:
            found[key] += " " + line.strip()
        elif line.startswith("    ") and ": " in line:
            key, _, text = line.strip().partition(": ")
            found[key] = text
        else:
            break
    fields = [f.name for f in dataclasses.fields(cls)]
    if sorted(found) != sorted(fields):
        raise ValueError(f"{cls.__name__}'s Attributes must describe exactly its keys {fields}, not {list(found)}")
    return found


def _default(section: str, key: str) -> str:
    value = getattr(SECTIONS[section](), key)
    shown = '`""`' if value == "" else f"`{show_value(value)}`"
    meaning = default_meaning(section, key)
    return f"{shown} ({_markdown(meaning)})" if meaning and value == "" else shown


def _accepts(section: str, key: str, kind: Any) -> str:
    if (section, key) in CHOICES:
        choices = ", ".join(f"`{c}`" for c in CHOICES[(section, key)])
        if (section, key) == ("model", "runtime"):
            choices += "; also " + ", ".join(f"`{alias}`" for alias in RUNTIME_ALIASES)
        return choices
    if (section, key) in LIMITS:
        limit = LIMITS[(section, key)]
        if limit.high == INT64_MAX:  # no upper bound but the integer's own
            return _markdown(f"{show_value(limit.low)} or more" + (f" ({limit.note})" if limit.note else ""))
        return _markdown(limit.describe())
    return "`true`, `false`" if kind is bool else ""


def _flags(section: str, key: str) -> str:
    return ", ".join(f"`{name}`" for f in FLAGS if (f.section, f.key) == (section, key) for name in f.names)


def section_table(section: str) -> list[str]:
    """Return the Markdown of one section: its heading, what it is for, and a row per key."""
    cls = SECTIONS[section]
    summary = inspect.cleandoc(cls.__doc__ or "").splitlines()[0].removeprefix(f"The ``[{section}]`` section: ")
    lines = [f"## `[{section}]`", "", _markdown(summary[:1].upper() + summary[1:]), ""]
    lines += ["| key | type | default | accepts | flag | environment | description |", "| --- " * 7 + "|"]
    descriptions = key_descriptions(cls)
    for key, kind in section_types(section).items():
        secret = " Secret: shown as `***`." if (section, key) in SECRET_KEYS else ""
        cells = [f"`{key}`", _TYPES[kind], _default(section, key), _accepts(section, key, kind), _flags(section, key),
                 f"`{env_name(section, key)}`", _markdown(descriptions[key]) + secret]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def render() -> str:
    """Return the whole reference as Markdown."""
    lines = [INTRO]
    for section in SECTIONS:
        lines += section_table(section)
    lines += ["## Other environment variables", "",
              "Every other `EDGEPOSE_*` variable must name a key above (a misspelt one is an error that lists the "
              "valid names), except these, read for other purposes:", "",
              "| variable | read by |", "| --- | --- |"]  # fmt: skip
    lines += [f"| `{name}` | {_markdown(who)} |" for name, who in OTHER_ENV_VARS.items()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the reference to the file named in ``argv``, or to stdout."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        Path(args[0]).write_text(render(), encoding="utf-8")
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
