"""The module map of docs/architecture.md matches the tree: every listed path exists, and every module is listed."""

from __future__ import annotations

import re

from conftest import ROOT


def _map_rows() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("\n## Module map", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def _listed_paths() -> list[str]:
    paths = []
    for row in _map_rows():
        cell = row.split("|")[1]
        paths += re.findall(r"`([^`]+)`", cell)
    return paths


def test_every_listed_path_exists() -> None:
    listed = _listed_paths()
    assert len(listed) > 30
    missing = [p for p in listed if not (ROOT / p.rstrip("/")).exists()]
    assert missing == []


def test_every_module_is_on_the_map() -> None:
    rows = "\n".join(_map_rows())
    listed = set(_listed_paths())
    folders = [p for p in listed if p.endswith("/")]
    unlisted = []
    for module in sorted((ROOT / "edgepose").rglob("*.py")):
        rel = module.relative_to(ROOT).as_posix()
        if module.name in ("__init__.py", "__main__.py") or rel in listed:
            continue
        folder = next((f for f in folders if rel.startswith(f)), None)
        if folder is None or f"`{module.name}`" not in rows:  # a folder row names its modules
            unlisted.append(rel)
    assert unlisted == []
