"""Facts written once: the product description, and logger names that are their modules' names."""

from __future__ import annotations

import ast
import sys

from conftest import ROOT

from edgepose import DESCRIPTION
from edgepose.cli import build_parser

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_the_description_has_one_home() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == DESCRIPTION
    unit = (ROOT / "systemd" / "edgepose.service").read_text(encoding="utf-8")
    assert [line.partition("=")[2] for line in unit.splitlines() if line.startswith("Description=")] == [DESCRIPTION]
    assert build_parser().description == DESCRIPTION


def _logger_names() -> list[tuple[str, str]]:
    """Every ``logging.getLogger(...)`` call in the package: (module path, its argument as written)."""
    calls = []
    for path in sorted((ROOT / "edgepose").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "getLogger":
                calls.append((path.relative_to(ROOT).as_posix(), ast.unparse(node.args[0]) if node.args else ""))
    return calls


def test_every_logger_is_named_after_its_module() -> None:
    calls = _logger_names()
    assert len(calls) > 15
    named = [(path, arg) for path, arg in calls if arg and arg != "__name__" and not arg.startswith("f'{__name__}.")]
    assert named == [], "loggers are logging.getLogger(__name__) (or a child of it)"
    assert [path for path, arg in calls if not arg] == ["edgepose/logs.py"], "only the set-up touches the root logger"
