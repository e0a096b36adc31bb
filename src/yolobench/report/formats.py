"""How the report writes a number, a missing value, a list, a Markdown table, a path, and a run file's strings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from yolobench import paths

# Table markers: what a "—" or "not timed" means is said under the table, never left to guess.
UNTIMED_TEXT = "not timed"
UNTIMED_MARK = "†"
NO_COMPRESSED_MARK = "‡"
MISSING = "—"


# Display formats: the only change a number undergoes between the run file and the report.
def fmt_fps(value: float) -> str:
    return f"{value:.1f}"


def fmt_ms(value: float) -> str:
    return f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_map(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def fmt_points(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def fmt_sparsity(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def fmt_size(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.2f}"


def _join(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


# A run file's strings (its commit's branch, the machine's CPU and system, an engine's version, a cell's
# name) come from whoever wrote the file: in report.md each must read as the text it is, never become HTML, a
# link or an image, emphasis, a code span, a heading or a line of its own. md_text is the one place that
# makes them so. Ordinary names come out unchanged: only the characters that could start markup are escaped
# (an "_" inside a word, as in pruned_quant, starts none).
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")  # new lines, tabs and other control characters
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKUP = frozenset("\\`*[]~")


def md_text(value: Any, *, code: bool = False) -> str:
    """``value`` as literal text on one line of report.md. ``code``: for the inside of a code span, where
    nothing is markup and only a backtick (removed) would end the span."""
    text = _BREAKS.sub(" ", str(value))
    if code:
        return text.replace("`", "")
    out = []
    for i, char in enumerate(text):
        if char in _HTML:
            out.append(_HTML[char])
        elif char in _MARKUP or (char == "#" and i == 0):
            out.append("\\" + char)
        elif char == "_" and not (0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()):
            out.append("\\_")
        else:
            out.append(char)
    return "".join(out)


def markdown_table(header: list[str], rows: list[list[str]], numeric_from: int = 3, numeric_to: int = -1) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    last = len(header) + numeric_to if numeric_to < 0 else numeric_to
    align = ["---:" if numeric_from <= i < last else ":---" for i in range(len(header))]
    return "\n".join([line(header), "|" + "|".join(align) + "|", *(line(r) for r in rows)])


def display_path(path: Path) -> str:
    """A path as the report cites it: relative to the checkout when inside it (the committed report), else absolute."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(paths.repo_root().resolve()))
    except ValueError:
        return str(resolved)
