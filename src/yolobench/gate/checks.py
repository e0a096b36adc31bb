"""The gate's evaluation: every check on every cell of a run against the thresholds and a baseline run,
one :class:`Check` (a row of the verdict table) each.

Must not: measure anything or touch the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from yolobench.errors import UserError
from yolobench.gate.rule import BASIS_SESSIONS, ENGINE_MIN_CELLS, compare_latency
from yolobench.gate.thresholds import (USER_MODEL_NOTE, Thresholds, applicable_thresholds, catalogue_thresholds,
                                       speedup_floors_apply)
from yolobench.runfile import Cell, Run, reference_cell_name, speedup_of_fastest, split_cell_name
from yolobench.timer import percentile

CHECK_PRESENT = "present"
CHECK_LATENCY = "latency p50"
CHECK_SPEEDUP = "speedup"
CHECK_MAP50 = "map50"
CHECK_ENGINE = "engine latency"
CHECK_FPS = "fps"  # scenarios (yolobench.scenarios): e2e and throughput frames per second
CHECK_RSS = "peak RSS MB"  # the memory scenario
CHECK_PAIR = "speedup over"  # [pairs]: one cell against another of the same run
_CHECK_ORDER = (CHECK_PRESENT, CHECK_LATENCY, CHECK_SPEEDUP, CHECK_MAP50, CHECK_ENGINE, CHECK_FPS, CHECK_RSS,
                CHECK_PAIR)

OK = "ok"
FAIL = "FAIL"
NO_FLOOR = "no floor"
NO_BASELINE = "no baseline"
NOT_COMPARED = "not compared"


@dataclass(frozen=True)
class Check:
    """One row of the gate's table."""

    cell: str
    check: str
    measured: str
    limit: str
    ratio: float | None  # measured / floor for floors; current / baseline for latency
    verdict: str
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict == FAIL


def _cpu(run: Run, cell: Cell) -> str | None:
    if cell.cpu_model:
        return cell.cpu_model
    cpu = run.machine.get("cpu")
    return cpu.get("brand_raw") if isinstance(cpu, dict) else None


def _not_comparable(baseline_run: Run, baseline: Cell, current_run: Run, current: Cell) -> str | None:
    """Why two cells' latencies cannot be compared, or None."""
    base_cpu, cur_cpu = _cpu(baseline_run, baseline), _cpu(current_run, current)
    if base_cpu and cur_cpu and base_cpu != cur_cpu:
        return f"different CPU ({base_cpu!r} vs {cur_cpu!r})"
    # One brand string ("AMD EPYC") covers Zen 4 and Zen 5 here, and engines rank differently on them.
    base_gen, cur_gen = baseline_run.cpu_generation, current_run.cpu_generation
    if base_gen and cur_gen and base_gen != cur_gen:
        return f"different CPU generation ({base_gen} vs {cur_gen})"
    # Threads are not here on purpose: fewer threads on the same CPU is a configuration change a user
    # makes (or a container limit), and the latency it costs is a regression the gate must report.
    for attribute in ("imgsz", "batch"):
        before, now = getattr(baseline, attribute), getattr(current, attribute)
        if before != now:
            return f"different {attribute} ({before} vs {now})"
    # Another model under the same cell name (a recipe changed, or the ladder started from the user's
    # checkpoint): its latency starts a new series. A 2x slowdown of the model and a 2x speedup from a
    # better recipe must not look alike; speedup and mAP floors still judge it.
    before, now = baseline.extra.get("artifact_key"), current.extra.get("artifact_key")
    if before and now and before != now:
        return f"another model (artifact {before} vs {now}): a new series, not judged against the old one"
    return None


def _latency_check(name: str, current_run: Run, current: Cell, baseline_run: Run | None,
                   thresholds: Thresholds) -> Check:
    measured = f"{current.latency.p50_ms:.2f} ms"
    if current.incomplete:  # its fastest session is the fastest of fewer: not the whole cell's latency
        return Check(name, CHECK_LATENCY, measured, "-", None, NOT_COMPARED,
                     f"incomplete: {current.sessions_text()}; not graded as a whole cell")
    if baseline_run is None:
        return Check(name, CHECK_LATENCY, measured, "-", None, NO_BASELINE, "no --baseline given")
    baseline = baseline_run.cells.get(name)
    if baseline is None:
        return Check(name, CHECK_LATENCY, measured, "-", None, NO_BASELINE, "new cell")
    reason = (f"the baseline's cell is incomplete: {baseline.sessions_text()}" if baseline.incomplete
              else _not_comparable(baseline_run, baseline, current_run, current))
    if reason:
        return Check(name, CHECK_LATENCY, measured, "-", None, NOT_COMPARED, reason)
    factor = thresholds.latency_factor_for(name)
    result = compare_latency(baseline.latency, current.latency, factor)
    if result.basis == BASIS_SESSIONS:
        measured = f"{current.latency.p50_ms:.2f} ms (fastest session {result.current_ms:.2f})"
    limit = f"<= {result.baseline_ms * factor:.2f} ms ({factor:g}x {result.baseline_ms:.2f})"
    detail = f"{result.delta_ms:+.2f} ms vs noise {result.noise_ms:.2f} ms"
    if result.regressed:
        verdict, note = FAIL, f"slower: {detail}"
    elif result.beyond_factor:
        verdict, note = OK, f"within noise: {detail}"
    else:
        verdict, note = OK, detail
    if current.latency.stopped_early:
        note += "; stopped early (few samples)"
    if baseline.threads != current.threads:
        note += f"; threads {baseline.threads} -> {current.threads}"
    return Check(name, CHECK_LATENCY, measured, limit, result.ratio, verdict, note)


def _floor_check(name: str, check: str, value: float | None, floor: float | None, fmt: str,
                 missing_note: str) -> Check:
    measured = "-" if value is None else format(value, fmt)
    if floor is None:
        return Check(name, check, measured, "-", None, NO_FLOOR)
    limit = f">= {format(floor, fmt)}"
    if value is None:
        return Check(name, check, measured, limit, None, FAIL, missing_note)
    ratio = value / floor
    if value < floor:
        return Check(name, check, measured, limit, ratio, FAIL, f"below floor by {format(floor - value, fmt)}")
    return Check(name, check, measured, limit, ratio, OK)


def _timed(name: str) -> bool:
    """False for a cell the matrix no longer times by design (an engine's ``untimed_quantized``, e.g.
    PyTorch's fake-quantized INT8): a baseline that still has it does not make it missing."""
    from yolobench import bench

    try:
        variant, engine, _ = split_cell_name(name)
        return bench.untimed_reason(variant, engine) is None
    except UserError:  # not a catalogue cell or engine (a hand-written run): expected as before
        return True


def _not_on_this_ladder(name: str, current: Run) -> bool:
    """True for a catalogue cell that a ladder from the user's checkpoint does not build by design
    (``catalogue.skip_reason``: the catalogue's own networks; transfer without --source-weights)."""
    from yolobench import catalogue

    roots = {catalogue.ancestry(c.variant)[0] for c in current.cells.values()
             if c.extra.get("weights") and c.variant in catalogue.CATALOGUE}
    if not roots:
        return False
    try:
        variant = split_cell_name(name)[0]
        return catalogue.skip_reason(variant, weights=catalogue.WEIGHTS_ROOT in roots,
                                     source_weights=catalogue.SOURCE_WEIGHTS_ROOT in roots) is not None
    except UserError:
        return False


def missing_cells(current: Run, baseline: Run | None, thresholds: Thresholds) -> dict[str, str]:
    """Timed cells the baseline has, or the thresholds give floors to, that the current run lacks:
    {cell: why it was expected}."""
    thresholds = applicable_thresholds(thresholds, current)
    expected = set(thresholds.cells) if baseline is None else set(thresholds.cells) | set(baseline.cells)
    expected = {name for name in expected if _timed(name) and not _not_on_this_ladder(name, current)}
    floors_apply = speedup_floors_apply(thresholds, current)
    missing = {}
    for name in sorted(expected - set(current.cells)):
        in_baseline = baseline is not None and name in baseline.cells
        limits = thresholds.for_cell(name)
        has_floor = limits.map50_floor is not None or (limits.speedup_floor is not None and floors_apply)
        if not in_baseline and not has_floor:
            continue  # a thresholds entry without floors (a latency_factor override only) expects nothing
        missing[name] = "in baseline" if in_baseline else "has floors in thresholds"
    return missing


def missing_scenarios(current: Run, thresholds: Thresholds) -> list[str]:
    """Scenarios with limits in the thresholds that the current run did not measure."""
    from yolobench import scenarios

    thresholds = applicable_thresholds(thresholds, current)
    found = scenarios.load_scenarios(current.path) if thresholds.scenarios else {}
    return sorted(name for name, limits in thresholds.scenarios.items()
                  if name not in found and (limits.fps_floor is not None or limits.peak_rss_mb_ceiling is not None))


def evaluate(current: Run, baseline: Run | None, thresholds: Thresholds, only_current: bool = False) -> list[Check]:
    """Every check on every cell of the current run, the baseline and the thresholds.

    ``only_current``: judge only what the run measured (a slice such as ``pytest -k pruned_quant``); the
    cells and scenarios it lacks are not failed (``missing_cells``/``missing_scenarios`` name them).
    """
    thresholds = applicable_thresholds(thresholds, current)
    checks: list[Check] = []
    if not only_current:
        recorded = current.incomplete  # why each cell is missing, where the benchmark session recorded it
        for name, where in missing_cells(current, baseline, thresholds).items():
            checks.append(Check(name, CHECK_PRESENT, "missing", where, None, FAIL,
                                f"{recorded[name]} (recorded in the run file)" if name in recorded else
                                "skipped or failed in this run? (a slice of the matrix: --only-current)"))

    floors_apply = speedup_floors_apply(thresholds, current)
    for name, cell in sorted(current.cells.items()):
        limits = thresholds.for_cell(name)
        if cell.incomplete and not only_current:
            found = cell.sessions_expected - len(cell.sessions_missing)
            checks.append(Check(name, CHECK_PRESENT, f"{found} of {cell.sessions_expected} sessions",
                                f"{cell.sessions_expected} sessions", None, FAIL,
                                f"sessions {', '.join(map(str, cell.sessions_missing))} missing: failed or cut off "
                                "in this run? (a slice of the matrix: --only-current)"))
        checks.append(_latency_check(name, current, cell, baseline, thresholds))
        if cell.extra.get("weights") and catalogue_thresholds(thresholds):
            checks.extend(Check(name, check, "-", "-", None, NOT_COMPARED, USER_MODEL_NOTE)
                          for check, floor in ((CHECK_SPEEDUP, limits.speedup_floor), (CHECK_MAP50, limits.map50_floor))
                          if floor is not None)
            continue
        speedup_missing = (f"no speedup recorded (reference cell {cell.reference_cell or reference_cell_name(cell.imgsz)} "
                           "missing from the run?)")
        if limits.speedup_floor is not None and not floors_apply:
            measured = "-" if cell.speedup_vs_reference is None else f"{cell.speedup_vs_reference:.2f}"
            checks.append(Check(name, CHECK_SPEEDUP, measured, f">= {limits.speedup_floor:.2f}", None, NOT_COMPARED,
                                f"floor from {thresholds.machine}"))
        else:
            checks.append(_floor_check(name, CHECK_SPEEDUP, cell.speedup_vs_reference, limits.speedup_floor,
                                       ".2f", speedup_missing))
        checks.append(_floor_check(name, CHECK_MAP50, cell.map50, limits.map50_floor, ".3f",
                                   "no map50 recorded for this cell"))
    checks.extend(_engine_checks(current, checks, thresholds.engine_latency_factor))
    checks.extend(_scenario_checks(current, thresholds, floors_apply, only_current))
    checks.extend(_pair_checks(current, thresholds, floors_apply, only_current))
    checks.sort(key=lambda c: (c.cell, _CHECK_ORDER.index(c.check)))
    return checks


def _scenario_checks(current: Run, thresholds: Thresholds, floors_apply: bool, only_current: bool) -> list[Check]:
    """Scenario entries against their [scenarios] floors and ceilings (those without any are not judged)."""
    from yolobench import scenarios

    if not thresholds.scenarios:
        return []
    found = scenarios.load_scenarios(current.path)
    checks = []
    for name, limits in sorted(thresholds.scenarios.items()):
        result = found.get(name)
        fps_floor = limits.fps_floor if floors_apply else None
        if result is None:
            if not only_current and (fps_floor is not None or limits.peak_rss_mb_ceiling is not None):
                checks.append(Check(name, CHECK_PRESENT, "missing", "has limits in thresholds", None, FAIL,
                                    "scenario not run? (yolobench bench --scenarios ...)"))
            continue
        if limits.fps_floor is not None and not floors_apply:
            checks.append(Check(name, CHECK_FPS, _fmt_optional(result.fps, ".1f"), f">= {limits.fps_floor:.1f}",
                                None, NOT_COMPARED, f"floor from {thresholds.machine}"))
        elif limits.fps_floor is not None:
            checks.append(_floor_check(name, CHECK_FPS, result.fps, limits.fps_floor, ".1f", "no fps recorded"))
        if limits.peak_rss_mb_ceiling is not None:
            ceiling, value = limits.peak_rss_mb_ceiling, result.peak_rss_mb
            limit = f"<= {ceiling:.0f}"
            if value is None:
                checks.append(Check(name, CHECK_RSS, "-", limit, None, FAIL, "no peak_rss_mb recorded"))
            elif value > ceiling:
                checks.append(Check(name, CHECK_RSS, f"{value:.0f}", limit, value / ceiling, FAIL,
                                    f"above ceiling by {value - ceiling:.0f} MB"))
            else:
                checks.append(Check(name, CHECK_RSS, f"{value:.0f}", limit, value / ceiling, OK))
    return checks


def _pair_checks(current: Run, thresholds: Thresholds, floors_apply: bool, only_current: bool) -> list[Check]:
    """[pairs]: one cell's speedup over another of the same run (their fastest session medians), per CPU
    generation like every speedup floor."""
    checks = []
    for name, pair in sorted(thresholds.pairs.items()):
        faster, slower = current.cells.get(pair.faster), current.cells.get(pair.slower)
        limit = f">= {pair.speedup_floor:.2f}"
        if faster is None or slower is None:
            if not only_current and floors_apply:
                absent = " and ".join(c for c, cell in ((pair.faster, faster), (pair.slower, slower)) if cell is None)
                checks.append(Check(name, CHECK_PAIR, "-", limit, None, FAIL, f"{absent} not in this run"))
            continue
        value = speedup_of_fastest(faster.latency, slower.latency.session_p50s_ms() or [slower.latency.p50_ms])
        if not floors_apply:
            checks.append(Check(name, CHECK_PAIR, _fmt_optional(value, ".2f"), limit, None, NOT_COMPARED,
                                f"floor from {thresholds.machine}"))
            continue
        checks.append(_floor_check(name, CHECK_PAIR, value, pair.speedup_floor, ".2f", "no latency recorded"))
    return checks


def _fmt_optional(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _engine_checks(current: Run, checks: Sequence[Check], factor: float) -> list[Check]:
    """Per engine: the median of its cells' latency ratios vs the baseline (see DEFAULT_ENGINE_LATENCY_FACTOR)."""
    ratios: dict[str, list[float]] = {}
    for c in checks:
        if c.check == CHECK_LATENCY and c.ratio is not None:
            ratios.setdefault(current.cells[c.cell].engine, []).append(c.ratio)
    out = []
    for engine, values in sorted(ratios.items()):
        if len(values) < ENGINE_MIN_CELLS:
            continue
        median = percentile(values, 50.0)
        verdict = FAIL if median > factor else OK
        note = f"median of {len(values)} cells' ratios; worst {max(values):.2f}x"
        out.append(Check(f"{engine} (all cells)", CHECK_ENGINE, f"{median:.2f}x", f"<= {factor:g}x", median,
                         verdict, note))
    return out

