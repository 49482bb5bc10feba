"""The manual: every relative link and ``#anchor`` in the README and docs/ leads somewhere, and the README stays short.

Anchors are GitHub's: a heading lower-cased, punctuation dropped (letters, digits, ``_``, ``-`` and spaces
kept), spaces turned into ``-``, and ``-1``, ``-2``… added to a repeated one.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from conftest import ROOT

#: The README keeps what a newcomer needs in the first minute; the rest is in docs/.
README_MAX_LINES = 200

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def pages(root: Path = ROOT) -> list[Path]:
    """The README and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans (a link inside code is not a link)."""
    return _CODE_SPAN.sub("``", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading (before de-duplication)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text, repeated headings numbered as GitHub numbers them."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        base = slug(heading)
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The relative links and anchors of one page that lead nowhere, as ``target: why``."""
    root = root.resolve()
    broken = []
    for target in _LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:, file:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page.resolve()
        rel = dest.relative_to(root).as_posix() if dest.is_relative_to(root) else str(dest)
        if not dest.exists():
            broken.append(f"{target}: no such file")
            continue
        if anchor and (dest.suffix != ".md" or anchor not in anchors(dest.read_text())):
            broken.append(f"{target}: no heading #{anchor} in {rel}")
    return broken


def test_github_anchors() -> None:
    # The README linked these long before docs/ existed; they are what GitHub makes of the headings.
    assert slug("Several people (`--model posenet`)") == "several-people---model-posenet"
    assert slug("33 landmarks (`--model blazepose`)") == "33-landmarks---model-blazepose"
    assert slug("Sources (`--source`)") == "sources---source"
    assert slug("Raspberry Pi: which OpenCV and numpy") == "raspberry-pi-which-opencv-and-numpy"
    assert anchors("# A\n## B\n```\n# not a heading\n```\n## B\n") == {"a", "b", "b-1"}


def test_the_checker_finds_broken_links(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Right place\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/other.md#right-place) [ok](#top) [web](https://example.org/x#y) `[code](nowhere.md)`\n"
        "[gone](docs/missing.md) [wrong](docs/other.md#wrong-place) [self](#nope)\n"
        "```\n[in a block](nowhere.md)\n```\n\n# Top\n"
    )
    assert broken_links(page, tmp_path) == [
        "docs/missing.md: no such file",
        "docs/other.md#wrong-place: no heading #wrong-place in docs/other.md",
        "#nope: no heading #nope in README.md",
    ]


def test_every_link_and_anchor_resolves() -> None:
    checked = pages()
    assert len(checked) >= 11  # the README, the index and the topic pages
    broken = {page.relative_to(ROOT).as_posix(): broken_links(page) for page in checked}
    assert {page: links for page, links in broken.items() if links} == {}


def test_every_page_is_linked_from_the_index() -> None:
    index = _prose((ROOT / "docs" / "README.md").read_text())
    linked = {target.partition("#")[0] for target in _LINK.findall(index)}
    unlinked = [page.name for page in pages()[1:] if page.name != "README.md" and page.name not in linked]
    assert unlinked == []


def test_readme_is_short_and_keeps_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    # .ci/run runs exactly the README's second set-up command.
    command = "./install.sh --with-tflite --with-pi-env && .venv/bin/python -m pytest"
    assert command in readme
    assert (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1] == command
