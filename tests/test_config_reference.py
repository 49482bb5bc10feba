"""The configuration reference (docs/configuration.md) is generated from the schema and kept up to date."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, cli_env

from edgepose.config import LIMITS, SECTIONS
from edgepose.config import schema as schema_module
from edgepose.config.reference import COMMAND, key_descriptions, render
from edgepose.config.schema import EMPTY, Limit

REFERENCE = ROOT / "docs" / "configuration.md"


def test_the_committed_reference_is_the_generated_one() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(), f"the reference is stale: run {COMMAND}"


def test_the_command_writes_the_reference(tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    proc = subprocess.run([sys.executable, "-m", "edgepose.config.reference", str(out)], capture_output=True,
                          text=True, env=cli_env(), check=False, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == render()


def test_every_key_has_one_row_and_a_description() -> None:
    text = render()
    for section, cls in SECTIONS.items():
        described = key_descriptions(cls)
        assert list(described) == [f.name for f in dataclasses.fields(cls)], section
        table = text.split(f"## `[{section}]`", 1)[1].split("\n## ", 1)[0]
        rows = [line for line in table.splitlines() if line.startswith("| `")]
        assert [row.split("`")[1] for row in rows] == list(described), section
        assert all(text.strip() for text in described.values()), section


def test_a_section_must_describe_exactly_its_keys() -> None:
    @dataclasses.dataclass(frozen=True)
    class Undescribed:
        """A section.

        Attributes:
            one: The first key.
            typo: A key that does not exist.
        """

        one: int = 1
        two: int = 2

    with pytest.raises(ValueError, match="describe exactly its keys"):
        key_descriptions(Undescribed)


def test_the_reference_follows_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LIMITS, ("source", "width"), Limit(2, 4096, note="a changed range"))
    assert "from 2 to 4096 (a changed range)" in render() and render() != REFERENCE.read_text(encoding="utf-8")
    monkeypatch.setitem(schema_module.EMPTY, ("mqtt", "device_id"), "a changed meaning")
    assert '`""` (a changed meaning)' in render()


def test_every_empty_meaning_belongs_to_a_key_whose_default_is_empty() -> None:
    assert EMPTY, "the meanings of empty defaults live in schema.EMPTY"
    for section, key in EMPTY:
        assert getattr(SECTIONS[section](), key) == "", (section, key)
