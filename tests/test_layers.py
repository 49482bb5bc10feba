"""Imports go one way: no module imports from a higher layer, and no modules import each other in a circle.

The layers are the table in ``docs/architecture.md`` ("Layers"): each row names path prefixes under
``edgepose/``; a module belongs to the row with the longest prefix that matches its path. Every import
counts, wherever it is written (module top, inside a function, under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = "edgepose"


def layer_table(text: str) -> dict[str, int]:
    """Return ``{path prefix: layer number}`` from the "Layers" table of ``docs/architecture.md``."""
    section = text.split("\n## Layers", 1)[1].split("\n## ", 1)[0]
    table: dict[str, int] = {}
    for row in section.splitlines():
        match = re.match(r"\| (\d+) [^|]*\| ([^|]*)\|", row)
        if match:
            for prefix in re.findall(r"`([^`]+)`", match.group(2)):
                table[prefix] = int(match.group(1))
    return table


def modules(root: Path) -> dict[str, Path]:
    """Return every module of the package under ``root`` by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Return the package's modules that ``name`` imports anywhere in its file.

    ``from a import b`` names module ``a.b`` when there is one, else ``a`` (``b`` is an attribute of it).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of an attribute path: its module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer_of(path: Path, root: Path, table: dict[str, int]) -> int | None:
    """Return the layer of a module file: the row of the longest matching prefix, or ``None``."""
    rel = path.relative_to(root / PACKAGE).as_posix()
    matches = [p for p in table if rel == p or (p.endswith("/") and rel.startswith(p))]
    return table[max(matches, key=len)] if matches else None


def violations(root: Path, table: dict[str, int]) -> list[str]:
    """Return every import from a lower layer up to a higher one, and every module on no layer."""
    known = modules(root)
    layers = {name: layer_of(path, root, table) for name, path in known.items()}
    found = [f"{name}: on no layer" for name, layer in layers.items() if layer is None]
    for name, path in known.items():
        for target in sorted(imports(name, path, known)):
            low, high = layers[name], layers[target]
            if low is not None and high is not None and high > low:
                found.append(f"{name} (layer {low}) imports {target} (layer {high})")
    return found


def cycles(root: Path) -> list[list[str]]:
    """Return the groups of modules that import each other in a circle (Tarjan's strongly connected components)."""
    known = modules(root)
    graph = {name: sorted(imports(name, path, known)) for name, path in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in graph[node]:
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return sorted(groups)


def _table() -> dict[str, int]:
    return layer_table((ROOT / "docs" / "architecture.md").read_text())


def test_the_table_covers_the_eight_layers() -> None:
    table = _table()
    assert sorted(set(table.values())) == list(range(1, 9))
    assert table["__init__.py"] == 1 and table["commands/"] == 8


def test_no_import_goes_up_a_layer() -> None:
    assert violations(ROOT, _table()) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert cycles(ROOT) == []


def test_the_package_root_imports_nothing_of_its_own() -> None:
    known = modules(ROOT)
    assert imports(PACKAGE, known[PACKAGE], known) == set()


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"low.py": "def f():\n    from edgepose import high\n", "high.py": ""},
         ["edgepose.low (layer 1) imports edgepose.high (layer 2)"]),
        ({"low.py": "from .high import thing\n", "high.py": "thing = 1\n"},
         ["edgepose.low (layer 1) imports edgepose.high (layer 2)"]),
        ({"low.py": "", "high.py": "import edgepose.low\n", "stray.py": ""}, ["edgepose.stray: on no layer"]),
        ({"low.py": "import typing\nif typing.TYPE_CHECKING:\n    import edgepose.high.part\n",
          "high/__init__.py": "", "high/part.py": ""},
         ["edgepose.low (layer 1) imports edgepose.high.part (layer 2)"]),
    ],
)  # fmt: skip
def test_the_check_sees_an_upward_import(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    _write(tmp_path, {"__init__.py": "", **files})
    assert violations(tmp_path, {"__init__.py": 1, "low.py": 1, "high.py": 2, "high/": 2}) == expected


def test_the_check_sees_a_circle_through_a_lazy_import(tmp_path: Path) -> None:
    files = {"a.py": "import edgepose.b\n", "b.py": "def f():\n    from edgepose import c\n",
             "c.py": "from edgepose.a import x\n", "d.py": "import edgepose.a\n"}  # fmt: skip
    _write(tmp_path, {"__init__.py": "", **files})
    assert cycles(tmp_path) == [["edgepose.a", "edgepose.b", "edgepose.c"]]
