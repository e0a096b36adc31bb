"""How the report writes a number, a missing value, a list, a Markdown table, a path, and a run file's strings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from yolobench import paths
from yolobench.mdtext import md_text  # noqa: F401 - re-exported: the report's one escaping helper

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
