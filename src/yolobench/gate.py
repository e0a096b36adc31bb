"""The CI gate: does the current run fall short of the committed thresholds or of a baseline run?

A cell fails the gate when
  (a) its ``speedup_vs_reference`` is below its ``speedup_floor`` (machine-independent: both latencies
      come from the same run on the same machine);
  (b) its median latency got worse than the baseline's by more than ``latency_factor`` AND by more than
      the noise of the two runs (see :func:`compare_latency`); only when both runs measured the cell on
      the same CPU model with the same image size and batch (a change of threads is compared, and named);
  (c) it is in the baseline, or has floors in the thresholds, but is missing from the current run;
  (d) its ``map50`` is below its ``map50_floor``.
A check without a floor (or without a comparable baseline) is reported as such, never invented.

The thresholds file (``results/thresholds-<profile>.toml``) is data: every number in it carries a ``source``.
``suggest_thresholds`` writes one from a committed run. Must not: measure anything or touch the store.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from yolobench.errors import UserError
from yolobench.runfile import Cell, Run, reference_cell_name, speedup_of_fastest, split_cell_name
from yolobench.timer import Latency, iqr, percentile

# Default allowed slowdown before a latency change can count: the same ONNX compiled twice by
# DeepSparse differed by up to ~15% (the same ONNX compiled twice, measured) and a shared 2-core VM drifts by several percent
# between runs; 1.25 stays above both, so a failure is a change in the code, not in the weather.
DEFAULT_LATENCY_FACTOR = 1.25

# --suggest: a floor is the measured value times a margin, rounded down.
# Speedup is a ratio of two latencies (fastest-session medians, runfile.speedup_of_fastest). A floor
# must not be more sensitive to noise than the latency rule: on the 2-core VM a cell's fastest session
# of unchanged code moved up to 1.69x between runs (results/gate/2026-11-28-noise-study-factor-1.25.txt),
# which is why the committed per-cell latency factor is 1.75; a margin of 1 / 1.75 = 0.57 gives the
# speedup floor the same tolerance. (It was 0.7, from "each latency moves ~15%": in the noise study of
# 2026-11-28 that cried wolf on 12 cells of one run, results/thresholds-smoke.toml's header says how.)
SPEEDUP_SAFETY_MARGIN = 0.57
# mAP of a retrained variant moves by a few points on the small smoke dataset (few epochs, few
# images); losing more than a tenth of it is a real accuracy regression.
MAP50_SAFETY_MARGIN = 0.9

# The engine check: the median, over an engine's cells, of the per-cell latency ratio. On the 2-core VM
# single cells of unchanged code moved up to 1.69x between runs (a whole run's sessions in one slow
# mode: results/gate/2026-11-28-noise-study-factor-1.25.txt), but never most cells of one engine at
# once; a change in an engine's version, threads or settings moves all of its cells. Needs
# ENGINE_MIN_CELLS comparable cells (a median of two is one of them).
DEFAULT_ENGINE_LATENCY_FACTOR = 1.25
ENGINE_MIN_CELLS = 3

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
PAIR_SEPARATOR = " vs "

# Scenarios (--suggest): an FPS floor gets the speedup floors' margin (FPS is one latency, not a ratio
# of two, so it is no less noisy, and it is the machine's own: applied on its CPU generation only); a
# peak-RSS ceiling is the measured peak x 1.25, rounded up: memory does not drift like time does, and a
# quarter more is a real change (a second copy of a yolov5s model's weights is ~30 MB of ~1 GB).
FPS_SAFETY_MARGIN = SPEEDUP_SAFETY_MARGIN
RSS_CEILING_FACTOR = 1.25

OK = "ok"
FAIL = "FAIL"
NO_FLOOR = "no floor"
NO_BASELINE = "no baseline"
NOT_COMPARED = "not compared"


# --- The latency decision rule (pure) ---


def _sessions(baseline: Latency, current: Latency) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    base, cur = baseline.session_p50s_ms(), current.session_p50s_ms()
    return (base, cur) if len(base) >= 2 and len(cur) >= 2 else None


def run_noise_ms(baseline: Latency, current: Latency) -> float:
    """Run-to-run noise of two runs of one cell, in ms: the larger of two estimates.

    - between sessions: each run times the cell in ``timer.SESSIONS`` independently loaded sessions;
      compile lottery, placement and the machine's phases move a session's median (ONNX Runtime on
      the smoke QDQ graphs settles at ~15 or ~25 ms per session, e.g. [25.7, 24.2, 15.4] in one run).
      Each run's spread (slowest - fastest session median), added: a slowdown must exceed what
      reloading the same model moved the cell within both runs together.
    - within a session: half the interquartile range of each run, added (the only estimate for run
      files without sessions). Alone it missed the between-run variation: two runs of unchanged code
      differed by 1.29x on a cell whose IQRs summed to 0.4 ms.
    """
    within = (iqr(baseline.samples_ms) + iqr(current.samples_ms)) / 2.0
    if _sessions(baseline, current) is None:
        return within
    return max(within, baseline.session_spread_ms + current.session_spread_ms)


@dataclass(frozen=True)
class LatencyComparison:
    baseline_ms: float
    current_ms: float
    factor: float
    noise_ms: float
    basis: str  # what baseline_ms / current_ms are: "p50" or "fastest session p50"

    @property
    def ratio(self) -> float:
        return self.current_ms / self.baseline_ms

    @property
    def delta_ms(self) -> float:
        return self.current_ms - self.baseline_ms

    @property
    def beyond_factor(self) -> bool:
        return self.ratio > self.factor

    @property
    def beyond_noise(self) -> bool:
        return self.delta_ms > self.noise_ms

    @property
    def regressed(self) -> bool:
        return self.beyond_factor and self.beyond_noise


BASIS_SESSIONS = "fastest session p50"
BASIS_P50 = "p50"


def compare_latency(baseline: Latency, current: Latency,
                    factor: float = DEFAULT_LATENCY_FACTOR) -> LatencyComparison:
    """Regressed iff  cur / base > factor  and  cur - base > run_noise_ms(base, cur).

    With sessions recorded, cur and base are each run's *fastest* session median: noise on a shared
    VM (a slow session mode, a neighbour, a bad compile) only ever adds time, while a change in the code
    or the configuration moves every session, the fastest included. Without sessions (old run files)
    they are the pooled medians. The median, not the mean, within a session: a few stalls move the
    mean arbitrarily, while a regression moves the bulk of the iterations.
    """
    sessions = _sessions(baseline, current)
    if sessions is None:
        base_ms, cur_ms, basis = baseline.p50_ms, current.p50_ms, BASIS_P50
    else:
        base_ms, cur_ms, basis = min(sessions[0]), min(sessions[1]), BASIS_SESSIONS
    return LatencyComparison(baseline_ms=base_ms, current_ms=cur_ms, factor=factor,
                             noise_ms=run_noise_ms(baseline, current), basis=basis)


# --- Thresholds file ---


@dataclass(frozen=True)
class CellThresholds:
    speedup_floor: float | None = None
    map50_floor: float | None = None
    latency_factor: float | None = None  # overrides [defaults] for this cell
    source: str = ""

    @property
    def has_floor(self) -> bool:
        return self.speedup_floor is not None or self.map50_floor is not None


@dataclass(frozen=True)
class ScenarioThresholds:
    fps_floor: float | None = None  # applied on the generation in [defaults] machine only
    peak_rss_mb_ceiling: float | None = None
    source: str = ""


@dataclass(frozen=True)
class PairThresholds:
    """``[pairs."A vs B"]``: cell A must be at least ``speedup_floor`` times as fast as cell B of the same
    run (B's fastest session median over A's). A target such as "pruned_quant on its engine beats NNCF's
    dense INT8" is a ratio inside one run, which the machine's slow phases move much less than a
    latency compared with another day's file."""

    faster: str
    slower: str
    speedup_floor: float
    source: str = ""


@dataclass(frozen=True)
class Thresholds:
    path: Path
    latency_factor: float
    source: str
    cells: dict[str, CellThresholds]
    engine_latency_factor: float = DEFAULT_ENGINE_LATENCY_FACTOR
    # The CPU generation of the run the speedup floors came from ([defaults] machine), e.g.
    # "AMD family 25 model 17 (Zen 4)". Speedups do not carry across generations (below), so a run on
    # another one is not judged by them. None: unrecorded (floors apply everywhere, as before).
    machine: str | None = None
    scenarios: dict[str, ScenarioThresholds] = field(default_factory=dict)  # [scenarios."<scenario cell>"]
    pairs: dict[str, PairThresholds] = field(default_factory=dict)  # [pairs."<cell> vs <cell>"]

    def for_cell(self, name: str) -> CellThresholds:
        return self.cells.get(name, CellThresholds())

    def latency_factor_for(self, name: str) -> float:
        own = self.for_cell(name).latency_factor
        return own if own is not None else self.latency_factor


# key -> (lowest allowed, highest allowed, lowest inclusive)
_NUMBER_KEYS = {
    "latency_factor": (1.0, math.inf, False),
    "engine_latency_factor": (1.0, math.inf, False),
    "speedup_floor": (0.0, math.inf, False),
    "map50_floor": (0.0, 1.0, True),
    "fps_floor": (0.0, math.inf, False),
    "peak_rss_mb_ceiling": (0.0, math.inf, False),
}
_DEFAULT_KEYS = ("latency_factor", "engine_latency_factor", "machine", "source")
_STRING_KEYS = ("source", "machine")
_CELL_KEYS = ("speedup_floor", "map50_floor", "latency_factor", "source")
_SCENARIO_KEYS = ("fps_floor", "peak_rss_mb_ceiling", "source")
_PAIR_KEYS = ("speedup_floor", "source")


def _table_numbers(table: Any, allowed: Sequence[str], where: str) -> tuple[dict[str, float], str]:
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table")
    unknown = sorted(set(table) - set(allowed))
    if unknown:  # a misspelt floor would otherwise silently disable itself
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    numbers: dict[str, float] = {}
    for key, value in table.items():
        if key in _STRING_KEYS:
            continue
        lo, hi, lo_inclusive = _NUMBER_KEYS[key]
        in_range = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and (value >= lo if lo_inclusive else value > lo) and value <= hi
        if not in_range:
            bound = f"{'>=' if lo_inclusive else '>'} {lo:g}" + (f" and <= {hi:g}" if hi != math.inf else "")
            raise UserError(f"{where}: {key} must be a number {bound}, got {value!r}")
        numbers[key] = float(value)
    source = table.get("source")
    if not isinstance(source, str) or not source.strip():
        raise UserError(f"{where}: needs a 'source' string saying where its numbers come from")
    return numbers, source


def load_thresholds(path: str | Path) -> Thresholds:
    """Read and validate the thresholds file; :class:`UserError` names the file and the problem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"{path}: no such thresholds file") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read thresholds file ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML ({err})") from None
    unknown = sorted(set(data) - {"defaults", "cells", "scenarios", "pairs"})
    if unknown:
        raise UserError(f"{path}: unknown table(s) {', '.join(unknown)}; allowed: defaults, cells, scenarios, pairs")
    if "defaults" not in data:
        raise UserError(f"{path}: missing [defaults] table (latency_factor, source)")
    defaults, source = _table_numbers(data["defaults"], _DEFAULT_KEYS, f"{path}: [defaults]")
    if "latency_factor" not in defaults:
        raise UserError(f"{path}: [defaults] needs latency_factor")
    raw_cells = data.get("cells", {})
    if not isinstance(raw_cells, dict):
        raise UserError(f"{path}: 'cells' must be a table of [cells.\"<variant>-<engine>-<imgsz>\"] tables")
    cells = {}
    for name, table in raw_cells.items():
        try:
            split_cell_name(name)
        except UserError:
            raise UserError(f"{path}: [cells.\"{name}\"]: a cell is named <variant>-<engine>-<imgsz> "
                            f"(e.g. pruned_quant-deepsparse-640); add the image size") from None
        numbers, cell_source = _table_numbers(table, _CELL_KEYS, f"{path}: [cells.\"{name}\"]")
        cells[name] = CellThresholds(source=cell_source, **numbers)
    raw_scenarios = data.get("scenarios", {})
    if not isinstance(raw_scenarios, dict):
        raise UserError(f"{path}: 'scenarios' must be a table of [scenarios.\"<variant>-<engine>-<imgsz>-<scenario>\"] tables")
    scenario_limits = {}
    for name, table in raw_scenarios.items():
        numbers, scenario_source = _table_numbers(table, _SCENARIO_KEYS, f"{path}: [scenarios.\"{name}\"]")
        scenario_limits[name] = ScenarioThresholds(source=scenario_source, **numbers)
    pairs = _load_pairs(path, data.get("pairs", {}))
    machine = data["defaults"].get("machine")
    if machine is not None and (not isinstance(machine, str) or not machine.strip()):
        raise UserError(f"{path}: [defaults] machine must name a CPU generation, e.g. "
                        f"\"AMD family 26 model 2 (Zen 5)\" (a run's cpu_generation), got {machine!r}")
    return Thresholds(path=path, latency_factor=defaults["latency_factor"], source=source, cells=cells,
                      engine_latency_factor=defaults.get("engine_latency_factor", DEFAULT_ENGINE_LATENCY_FACTOR),
                      machine=machine, scenarios=scenario_limits, pairs=pairs)


def _load_pairs(path: Path, raw: Any) -> dict[str, PairThresholds]:
    if not isinstance(raw, dict):
        raise UserError(f"{path}: 'pairs' must be a table of [pairs.\"<cell>{PAIR_SEPARATOR}<cell>\"] tables")
    pairs = {}
    for name, table in raw.items():
        where = f"{path}: [pairs.\"{name}\"]"
        cells = name.split(PAIR_SEPARATOR)
        if len(cells) != 2:
            raise UserError(f"{where}: a pair is named \"<faster cell>{PAIR_SEPARATOR}<slower cell>\", e.g. "
                            f"\"pruned_quant-deepsparse-640{PAIR_SEPARATOR}dense-openvino_nncf-640\"")
        for cell in cells:
            try:
                split_cell_name(cell)
            except UserError:
                raise UserError(f"{where}: {cell!r} is not a cell name <variant>-<engine>-<imgsz>") from None
        numbers, source = _table_numbers(table, _PAIR_KEYS, where)
        if "speedup_floor" not in numbers:
            raise UserError(f"{where}: needs speedup_floor (how many times as fast the first cell must be)")
        pairs[name] = PairThresholds(cells[0], cells[1], numbers["speedup_floor"], source)
    return pairs


def same_generation(a: str | None, b: str | None) -> bool:
    """Whether two CPU generations are the same (unknown on either side counts as the same)."""
    from yolobench.timer import generation_slug

    return a is None or b is None or generation_slug(a) == generation_slug(b)


# Speedup floors are per CPU generation. Measured (the main job of a fresh clone, 2026-12-02): the smoke ladder on a Zen 5 (AMD family 26 model 2)
# had DeepSparse's 75%-pruned fp32 cell at 0.31x of the dense reference where the Zen 4 (family 25
# model 17) run that set the floors had 0.80x (floor 0.46), and pruned_quant, source_pq and transfer on
# DeepSparse also fell below their Zen 4 floors, while every other engine got faster on Zen 5: which
# engine wins, and by how much, changes with the generation. mAP floors do carry (same artifacts).
def speedup_floors_apply(thresholds: Thresholds, run: Run) -> bool:
    return same_generation(thresholds.machine, run.cpu_generation)


# The repository's thresholds files hold floors measured on the catalogue's own models; a cell of a
# ladder that started from the user's checkpoint (`--weights`) is another model on other data, so those
# floors say nothing about it. The user's own floors come from their run: `gate --suggest RUN`.
USER_MODEL_NOTE = ("your model: the repository's floors are the catalogue's models'; set yours with "
                   "`yolobench gate --suggest RUN > mine.toml` and `--thresholds mine.toml`")


def catalogue_thresholds(thresholds: Thresholds) -> bool:
    """Whether ``thresholds`` is one of the repository's own files (results/thresholds-*.toml)."""
    from yolobench import paths

    try:
        return thresholds.path.resolve().parent == (paths.repo_root() / "results").resolve()
    except OSError:
        return False


# A run of model files (`yolobench bench --model`) measures the user's own files: the repository's
# thresholds name the catalogue's cells, pairs and scenarios, none of which such a run has or is meant
# to have. Their rules (latency factors) still apply; so do a baseline's cells and the user's own
# thresholds (`gate --suggest RUN > mine.toml`, `--thresholds mine.toml`), which name the files' cells.
def model_file_run(run: Run) -> bool:
    """Whether every cell of the run measured a model file (``extra_info.model_file``)."""
    return bool(run.cells) and all(c.extra.get("model_file") for c in run.cells.values())


def user_model_run(run: Run) -> bool:
    """Whether every cell of the run measured the user's own model: a file (``bench --model``) or a rung
    of a ladder from the user's checkpoint (``--weights``/``--source-weights``: ``extra_info.weights``)."""
    return bool(run.cells) and all(c.extra.get("model_file") or c.extra.get("weights") for c in run.cells.values())


def applicable_thresholds(thresholds: Thresholds, run: Run) -> Thresholds:
    """``thresholds`` without the repository's catalogue entries for a run of the user's models: a run of
    model files has none of those cells; a ladder from the user's checkpoint has their names, and keeps
    them so that each row says why its floors are not applied (``evaluate``), while the catalogue's pairs
    and scenario floors, measured on other models, are dropped."""
    if not catalogue_thresholds(thresholds):
        return thresholds
    if model_file_run(run):
        return replace(thresholds, cells={}, pairs={}, scenarios={})
    if user_model_run(run):
        return replace(thresholds, pairs={}, scenarios={})
    return thresholds


# --- Evaluation ---


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
    if baseline_run is None:
        return Check(name, CHECK_LATENCY, measured, "-", None, NO_BASELINE, "no --baseline given")
    baseline = baseline_run.cells.get(name)
    if baseline is None:
        return Check(name, CHECK_LATENCY, measured, "-", None, NO_BASELINE, "new cell")
    reason = _not_comparable(baseline_run, baseline, current_run, current)
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
        for name, where in missing_cells(current, baseline, thresholds).items():
            checks.append(Check(name, CHECK_PRESENT, "missing", where, None, FAIL,
                                "skipped or failed in this run? (a slice of the matrix: --only-current)"))

    floors_apply = speedup_floors_apply(thresholds, current)
    for name, cell in sorted(current.cells.items()):
        limits = thresholds.for_cell(name)
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


# --- False-alarm study: every pair of runs of unchanged code ---


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


# --- Suggesting thresholds from a committed run ---


def _round_down(value: float, decimals: int) -> float:
    scale = 10 ** decimals
    # The epsilon keeps float error from dropping a whole step: 1.6 * 0.7 is 1.1199999..., floor 1.12.
    return math.floor(value * scale + 1e-9) / scale


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string with ASCII escapes is a valid TOML basic string


def suggest_thresholds(run: Run, thresholds: Thresholds | None = None) -> str:
    """A thresholds file with floors = measured value x safety margin (rounded down), from ``run``.

    ``[defaults]``, per-cell ``latency_factor`` overrides and the ``[pairs]`` (targets, set by hand with
    their source) are carried over from ``thresholds``.
    """
    origin = f"{run.path.parent.name}/{run.path.name} (commit {run.commit_id[:12]})"  # run-1.json.gz alone is ambiguous
    factor = thresholds.latency_factor if thresholds else DEFAULT_LATENCY_FACTOR
    factor_source = thresholds.source if thresholds else (
        "built-in DEFAULT_LATENCY_FACTOR (src/yolobench/gate.py): above the ~15% compile-to-compile spread "
        "of DeepSparse and the run-to-run drift of a shared VM")
    engine_factor = thresholds.engine_latency_factor if thresholds else DEFAULT_ENGINE_LATENCY_FACTOR
    lines = [
        "# Gate thresholds for `yolobench gate`; the decision rule is in src/yolobench/gate.py.",
        f"# Suggested by `yolobench gate --suggest` from {origin}: floor = measured x margin, rounded down",
        f"# (SPEEDUP_SAFETY_MARGIN = {SPEEDUP_SAFETY_MARGIN}, MAP50_SAFETY_MARGIN = {MAP50_SAFETY_MARGIN}).",
        "# Review the diff before committing.",
        "",
        "[defaults]",
        f"latency_factor = {factor:g}",
        f"engine_latency_factor = {engine_factor:g}",  # carried over with latency_factor (one source for both)
        *([f"machine = {_toml_string(run.cpu_generation)}"] if run.cpu_generation else []),
        f"source = {_toml_string(factor_source)}",
    ]
    for name, cell in sorted(run.cells.items()):
        numbers: list[str] = []
        reasons: list[str] = []
        if cell.speedup_vs_reference is not None and name != (cell.reference_cell or reference_cell_name(cell.imgsz)):
            floor = _round_down(cell.speedup_vs_reference * SPEEDUP_SAFETY_MARGIN, 2)
            numbers.append(f"speedup_floor = {floor:g}")
            reasons.append(f"speedup {cell.speedup_vs_reference:.2f}x x {SPEEDUP_SAFETY_MARGIN}")
        if cell.map50 is not None:
            floor = _round_down(cell.map50 * MAP50_SAFETY_MARGIN, 3)
            numbers.append(f"map50_floor = {floor:g}")
            reasons.append(f"map50 {cell.map50:.3f} x {MAP50_SAFETY_MARGIN}")
        own_factor = thresholds.cells[name].latency_factor if thresholds and name in thresholds.cells else None
        if own_factor is not None:
            numbers.append(f"latency_factor = {own_factor:g}")
            reasons.append(f"latency_factor kept from {thresholds.path.name}: {thresholds.cells[name].source}")
        if not numbers:
            continue
        cpu = cell.cpu_model or "unknown CPU"
        cpu = f"{cpu} [{run.cpu_generation}]" if run.cpu_generation else cpu
        source = (f"measured in {origin} on {cpu}, {cell.threads} threads, "
                  f"imgsz {cell.imgsz}: " + "; ".join(reasons))
        lines += ["", f"[cells.{_toml_string(name)}]", *numbers, f"source = {_toml_string(source)}"]
    lines += _suggest_scenarios(run, origin)
    for name, pair in sorted((thresholds.pairs if thresholds else {}).items()):  # targets are chosen, not derived
        lines += ["", f"[pairs.{_toml_string(name)}]", f"speedup_floor = {pair.speedup_floor:g}",
                  f"source = {_toml_string(pair.source)}"]
    return "\n".join(lines) + "\n"


def _suggest_scenarios(run: Run, origin: str) -> list[str]:
    from yolobench import scenarios

    lines = []
    for name, result in sorted(scenarios.load_scenarios(run.path).items()):
        numbers, reasons = [], []
        if result.fps is not None:
            numbers.append(f"fps_floor = {_round_down(result.fps * FPS_SAFETY_MARGIN, 1):g}")
            reasons.append(f"fps {result.fps:.1f} x {FPS_SAFETY_MARGIN}")
        if result.peak_rss_mb is not None:
            numbers.append(f"peak_rss_mb_ceiling = {math.ceil(result.peak_rss_mb * RSS_CEILING_FACTOR):g}")
            reasons.append(f"peak RSS {result.peak_rss_mb:.0f} MB x {RSS_CEILING_FACTOR}, rounded up")
        if numbers:
            where = f"{run.cpu_generation}, " if run.cpu_generation else ""
            source = f"measured in {origin} on {where}{result.threads} threads: " + "; ".join(reasons)
            lines += ["", f"[scenarios.{_toml_string(name)}]", *numbers, f"source = {_toml_string(source)}"]
    return lines
