"""The gate's verdict as text: the table of checks, the one-line summary, the runs it compared."""

from __future__ import annotations

from typing import Sequence

from yolobench.gate.checks import NO_FLOOR, Check
from yolobench.runfile import Run

_COLUMNS = ("cell", "check", "measured", "limit", "ratio", "verdict", "note")


def format_table(checks: Sequence[Check]) -> str:
    rows = [_COLUMNS]
    for c in checks:
        ratio = "-" if c.ratio is None else f"{c.ratio:.2f}"
        rows.append((c.cell, c.check, c.measured, c.limit, ratio, c.verdict, c.note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = []
    for row in rows:
        cells = [value.ljust(width) for value, width in zip(row, widths)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def summary(checks: Sequence[Check]) -> str:
    failed = [c for c in checks if c.failed]
    cells = sorted({c.cell for c in checks})
    if failed:
        by_cell: dict[str, list[str]] = {}
        for c in failed:
            by_cell.setdefault(c.cell, []).append(c.check)
        named = "; ".join(f"{cell} ({', '.join(which)})" for cell, which in by_cell.items())
        return f"gate: FAILED: {len(failed)} of {len(checks)} checks on {len(cells)} cells: {named}"
    no_floor = sorted({c.cell for c in checks if c.verdict == NO_FLOOR})
    tail = f"; {len(no_floor)} cells have a check with no floor" if no_floor else ""
    return f"gate: passed: {len(checks)} checks on {len(cells)} cells{tail}"


def describe_run(label: str, run: Run) -> str:
    cpus = sorted({c.cpu_model for c in run.cells.values() if c.cpu_model}) or ["unknown CPU"]
    threads = sorted({c.threads for c in run.cells.values()})
    cpus = [f"{cpu} [{run.cpu_generation}]" for cpu in cpus] if run.cpu_generation else cpus
    return (f"{label}: {run.path} (commit {run.commit_id}, {', '.join(cpus)}, "
            f"threads {', '.join(map(str, threads))}, {len(run.cells)} cells)")
