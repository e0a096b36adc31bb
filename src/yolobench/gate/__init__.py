"""The CI gate: does the current run fall short of the committed thresholds or of a baseline run?

A cell fails the gate when
  (a) its ``speedup_vs_reference`` is below its ``speedup_floor`` (machine-independent: both latencies
      come from the same run on the same machine);
  (b) its median latency got worse than the baseline's by more than ``latency_factor`` AND by more than
      the noise of the two runs (see :func:`compare_latency`); only when both runs measured the cell on
      the same CPU model with the same image size and batch (a change of threads is compared, and named);
  (c) it is in the baseline, or has floors in the thresholds, but is missing from the current run;
  (d) its ``map50`` is below its ``map50_floor``;
  (e) sessions of it are missing from the current run (a failed or cut-off session): its latency is then
      not graded as a whole cell's, in either run.
A check without a floor (or without a comparable baseline) is reported as such, never invented.

The thresholds file (``results/thresholds-<profile>.toml``) is data: every number in it carries a ``source``.
``suggest_thresholds`` writes one from a committed run. Must not: measure anything or touch the store.

The package, one idea per module: ``rule`` (the latency decision rule), ``thresholds`` (the thresholds
file and which of its floors apply to a run), ``checks`` (the evaluation: one row per check),
``table`` (the verdict as text), ``study`` (the false-alarm study), ``suggest`` (``gate --suggest``),
``load`` (was the machine busy with other work during the run).
Every public name is importable from ``yolobench.gate`` itself.
"""

from __future__ import annotations

from yolobench.gate.checks import (CHECK_ENGINE, CHECK_FPS, CHECK_LATENCY, CHECK_MAP50, CHECK_PAIR,
                                   CHECK_PRESENT, CHECK_RSS, CHECK_SPEEDUP, FAIL, NO_BASELINE, NO_FLOOR,
                                   NOT_COMPARED, OK, Check, evaluate, missing_cells, missing_scenarios)
from yolobench.gate.load import LOAD_MARGIN, load_limit, load_line, loaded_cells, machine_cores
from yolobench.gate.rule import (BASIS_P50, BASIS_SESSIONS, DEFAULT_ENGINE_LATENCY_FACTOR,
                                 DEFAULT_LATENCY_FACTOR, ENGINE_MIN_CELLS, LatencyComparison, compare_latency,
                                 run_noise_ms)
from yolobench.gate.study import PairVerdict, format_study, study
from yolobench.gate.suggest import (FPS_SAFETY_MARGIN, MAP50_SAFETY_MARGIN, RSS_CEILING_FACTOR,
                                    SPEEDUP_SAFETY_MARGIN, suggest_thresholds)
from yolobench.gate.table import describe_run, format_table, summary
from yolobench.gate.thresholds import (PAIR_SEPARATOR, USER_MODEL_NOTE, CellThresholds, PairThresholds,
                                       ScenarioThresholds, Thresholds, applicable_thresholds,
                                       catalogue_thresholds, load_thresholds, model_file_run,
                                       same_generation, speedup_floors_apply, user_model_run)

__all__ = [
    # the latency decision rule
    "DEFAULT_LATENCY_FACTOR", "DEFAULT_ENGINE_LATENCY_FACTOR", "ENGINE_MIN_CELLS", "BASIS_P50",
    "BASIS_SESSIONS", "LatencyComparison", "compare_latency", "run_noise_ms",
    # the thresholds file
    "PAIR_SEPARATOR", "USER_MODEL_NOTE", "CellThresholds", "PairThresholds", "ScenarioThresholds", "Thresholds",
    "applicable_thresholds", "catalogue_thresholds", "load_thresholds", "model_file_run", "same_generation",
    "speedup_floors_apply", "user_model_run",
    # the evaluation
    "CHECK_PRESENT", "CHECK_LATENCY", "CHECK_SPEEDUP", "CHECK_MAP50", "CHECK_ENGINE", "CHECK_FPS", "CHECK_RSS",
    "CHECK_PAIR", "OK", "FAIL", "NO_FLOOR", "NO_BASELINE", "NOT_COMPARED", "Check", "evaluate",
    "missing_cells", "missing_scenarios",
    # a loaded machine
    "LOAD_MARGIN", "load_limit", "load_line", "loaded_cells", "machine_cores",
    # the verdict as text, the false-alarm study, --suggest
    "describe_run", "format_table", "summary", "PairVerdict", "format_study", "study",
    "SPEEDUP_SAFETY_MARGIN", "MAP50_SAFETY_MARGIN", "FPS_SAFETY_MARGIN", "RSS_CEILING_FACTOR",
    "suggest_thresholds",
]
