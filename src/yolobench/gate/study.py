"""The gate's false-alarm study: the gate on every pair of runs of unchanged code (``gate --study``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from yolobench.errors import UserError
from yolobench.gate.checks import CHECK_ENGINE, CHECK_LATENCY, CHECK_SPEEDUP, Check, evaluate
from yolobench.gate.thresholds import Thresholds
from yolobench.runfile import Run

@dataclass(frozen=True)
class PairVerdict:
    baseline: Path
    current: Path
    consecutive: bool  # the current run came right after the baseline in the given order
    failed: tuple[Check, ...]
    latency_checks: int  # latency comparisons actually made (both runs had the cell, comparable)
    # How close the pair came to an alarm, pass or fail: the highest per-cell and per-engine latency
    # ratios and the lowest measured/floor ratio of a speedup floor (None when the pair had no such
    # check). mAP floors are left out: mAP does not change between runs of the same artifacts.
    worst_cell: Check | None = None
    worst_engine: Check | None = None
    closest_floor: Check | None = None


def _extreme(checks: Sequence[Check], kinds: Sequence[str], pick=max) -> Check | None:
    rated = [c for c in checks if c.check in kinds and c.ratio is not None]
    return pick(rated, key=lambda c: c.ratio) if rated else None


def study(runs: Sequence[Run], thresholds: Thresholds) -> list[PairVerdict]:
    """The gate on every ordered pair (earlier run as baseline) of runs made on unchanged code.

    Every failure here is a false alarm by construction: nothing changed between the runs.
    """
    if len(runs) < 2:
        raise UserError("a false-alarm study needs at least two run files")
    verdicts = []
    for i, baseline in enumerate(runs):
        for j in range(i + 1, len(runs)):
            checks = evaluate(runs[j], baseline, thresholds)
            compared = sum(1 for c in checks if c.check == CHECK_LATENCY and c.ratio is not None)
            verdicts.append(PairVerdict(baseline.path, runs[j].path, j == i + 1,
                                        tuple(c for c in checks if c.failed), compared,
                                        worst_cell=_extreme(checks, (CHECK_LATENCY,)),
                                        worst_engine=_extreme(checks, (CHECK_ENGINE,)),
                                        closest_floor=_extreme(checks, (CHECK_SPEEDUP,), min)))
    return verdicts


def _margins(worst_cell: Check | None, worst_engine: Check | None, closest_floor: Check | None) -> str:
    parts = []
    if worst_cell is not None:
        parts.append(f"worst cell {worst_cell.ratio:.2f}x ({worst_cell.cell})")
    if worst_engine is not None:
        parts.append(f"worst engine median {worst_engine.ratio:.2f}x ({worst_engine.cell.split(' ')[0]})")
    if closest_floor is not None:
        parts.append(f"closest speedup floor {closest_floor.ratio:.2f}x of its limit ({closest_floor.cell})")
    return f" [{'; '.join(parts)}]" if parts else ""


def format_study(verdicts: Sequence[PairVerdict]) -> str:
    lines = []
    for v in verdicts:
        named = ", ".join(f"{c.cell} {c.check} {c.ratio:.2f}x" if c.ratio is not None else f"{c.cell} {c.check}"
                          for c in v.failed) or "-"
        lines.append(f"{v.baseline.name} -> {v.current.name}{' (consecutive)' if v.consecutive else ''}: "
                     f"{'FALSE ALARM' if v.failed else 'pass'}: {named}"
                     f"{_margins(v.worst_cell, v.worst_engine, v.closest_floor)}")
    for label, chosen in (("consecutive pairs", [v for v in verdicts if v.consecutive]), ("all pairs", verdicts)):
        alarms = sum(1 for v in chosen if v.failed)
        checks = sum(v.latency_checks for v in chosen)
        failed_latency = sum(1 for v in chosen for c in v.failed if c.check == CHECK_LATENCY)
        failed_other = sum(1 for v in chosen for c in v.failed if c.check != CHECK_LATENCY)
        lines.append(f"{label}: {alarms} of {len(chosen)} pairs raised a false alarm "
                     f"({alarms / len(chosen):.0%}); {failed_latency} of {checks} cell latency comparisons "
                     f"failed; {failed_other} other checks failed")
    lines.append("margins over all pairs:" + _margins(
        _extreme([v.worst_cell for v in verdicts if v.worst_cell], (CHECK_LATENCY,)),
        _extreme([v.worst_engine for v in verdicts if v.worst_engine], (CHECK_ENGINE,)),
        _extreme([v.closest_floor for v in verdicts if v.closest_floor], (CHECK_SPEEDUP,), min)))
    return "\n".join(lines)
