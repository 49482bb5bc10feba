"""Flags take their defaults and choices from the schema: the help never restates a default by hand."""

from __future__ import annotations

import dataclasses
import re

import pytest
from conftest import run_cli

from edgepose.config import LIMITS, SECTIONS, SourceConfig
from edgepose.config.choices import CHOICES
from edgepose.config.flags import FLAGS, Flag
from edgepose.config.schema import EMPTY, show_value


def _printed_help(command: str) -> str:
    proc = run_cli(command, "--help", env={"COLUMNS": "2000"})  # one line per flag: nothing wrapped
    assert proc.returncode == 0, proc.stderr
    return " ".join(proc.stdout.split())


def _expected_default(flag: Flag) -> str:
    """What the help must say about the default, worked out from the schema here (not by the flag)."""
    value = getattr(SECTIONS[flag.section](), flag.key)
    note = LIMITS[(flag.section, flag.key)].note if (flag.section, flag.key) in LIMITS else ""
    if value == "":
        meaning = EMPTY.get((flag.section, flag.key))
        return f"(default: {meaning})" if meaning else ""
    if isinstance(value, bool):
        return f"(default {'on' if value else 'off'})"
    if value == 0 and note.startswith("0: "):
        return f"(default: {note[3:]})"
    return f"(default {show_value(value)})"


def test_no_help_text_writes_its_default_by_hand() -> None:
    literal = [f.names[0] for f in FLAGS if re.search(r"\bdefault\b", f.help)]
    assert literal == []


@pytest.mark.parametrize("command", ["run", "analyze", "infer", "bench"])
def test_the_printed_help_shows_each_default_from_the_schema(command: str) -> None:
    printed = _printed_help(command)
    for flag in FLAGS:
        if (flag.common or command in flag.commands) and flag.kind is not None:
            assert " ".join(f"{flag.help} {_expected_default(flag)}".split()) in printed, flag.names[0]


def test_a_changed_default_changes_the_help(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True)
    class WideSource(SourceConfig):
        width: int = 1280

    monkeypatch.setitem(SECTIONS, "source", WideSource)
    width = next(f for f in FLAGS if f.names == ("--width",))
    assert width.full_help() == "capture width for cameras (default 1280)"


def test_choices_come_from_the_schema() -> None:
    printed = _printed_help("run")
    for (section, key), choices in CHOICES.items():
        flags = [f for f in FLAGS if (f.section, f.key) == (section, key)]
        for flag in flags:
            shown = "{" + ",".join(choices) + "}" if flag.argparse_checks else "|".join(choices)
            assert f"{flag.names[0]} {shown}" in printed, flag.names[0]
    assert ("model", "runtime") in CHOICES and ("analytics", "exercise") in CHOICES
