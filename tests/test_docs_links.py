"""Every relative link in the README, docs/ and examples/ resolves: the file exists, and a #fragment names
a heading of the file it points into (GitHub's anchor rule: lower case, punctuation dropped, spaces to -)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "examples" / "README.md"]
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)")


def anchors(markdown: Path) -> set[str]:
    out = set()
    in_code = False
    for line in markdown.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        title = re.sub(r"[^\w\- ]", "", title)
        out.add(title.replace(" ", "-"))
    return out


def links(markdown: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", markdown.read_text(encoding="utf-8"), flags=re.S)  # code is not links
    text = re.sub(r"`[^`\n]*`", "", text)
    return [a or b for a, b in LINK.findall(text)]


@pytest.mark.parametrize("markdown", [d for d in DOCS if d.exists()], ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(markdown):
    broken = []
    for target in links(markdown):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, fragment = target.partition("#")
        resolved = (markdown.parent / path).resolve() if path else markdown
        if not resolved.exists():
            broken.append(f"{target} (no {resolved.relative_to(REPO) if REPO in resolved.parents else resolved})")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target} (no heading '{fragment}' in {resolved.name})")
    assert not broken, f"{markdown.relative_to(REPO)}: " + "; ".join(broken)


def test_the_checker_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n[ok](#title) [bad](missing.md) [frag](#nope)\n")
    assert links(page) == ["#title", "missing.md", "#nope"]
    assert "title" in anchors(page) and "nope" not in anchors(page)
