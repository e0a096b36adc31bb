"""The gate's thresholds file (``results/thresholds-<profile>.toml``): its model, loading and validation,
and which of its floors apply to a run (its CPU generation; the catalogue's models or the user's own).

The file is data: every number in it carries a ``source``. Must not: measure anything or touch the store.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from yolobench.errors import UserError
from yolobench.gate.rule import DEFAULT_ENGINE_LATENCY_FACTOR
from yolobench.runfile import Run, split_cell_name

PAIR_SEPARATOR = " vs "


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
