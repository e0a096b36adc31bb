"""``gate --suggest``: a thresholds file written from a committed run (floor = measured x margin).

Must not: measure anything or touch the store.
"""

from __future__ import annotations

import json
import math

from yolobench.gate.rule import DEFAULT_ENGINE_LATENCY_FACTOR, DEFAULT_LATENCY_FACTOR
from yolobench.gate.thresholds import Thresholds, speedup_floors_apply
from yolobench.runfile import Run, reference_cell_name

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

# Scenarios (--suggest): an FPS floor gets the speedup floors' margin (FPS is one latency, not a ratio
# of two, so it is no less noisy, and it is the machine's own: applied on its CPU generation only); a
# peak-RSS ceiling is the measured peak x 1.25, rounded up: memory does not drift like time does, and a
# quarter more is a real change (a second copy of a yolov5s model's weights is ~30 MB of ~1 GB).
FPS_SAFETY_MARGIN = SPEEDUP_SAFETY_MARGIN
RSS_CEILING_FACTOR = 1.25


def _round_down(value: float, decimals: int) -> float:
    scale = 10 ** decimals
    # The epsilon keeps float error from dropping a whole step: 1.6 * 0.7 is 1.1199999..., floor 1.12.
    return math.floor(value * scale + 1e-9) / scale


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string with ASCII escapes is a valid TOML basic string


def suggest_thresholds(run: Run, thresholds: Thresholds | None = None) -> str:
    """A thresholds file with floors = measured value x safety margin (rounded down), from ``run``.

    ``[defaults]``, per-cell ``latency_factor`` overrides and the ``[pairs]`` (targets, set by hand with
    their source) are carried over from ``thresholds``; the pairs only when ``thresholds`` was measured on
    the run's CPU generation (a pair's floor is a speedup: it does not carry across generations, and
    carrying another machine's would judge this one by it once the file is its own).
    """
    origin = f"{run.path.parent.name}/{run.path.name} (commit {run.commit_id[:12]})"  # run-1.json alone is ambiguous
    factor = thresholds.latency_factor if thresholds else DEFAULT_LATENCY_FACTOR
    factor_source = thresholds.source if thresholds else (
        "built-in DEFAULT_LATENCY_FACTOR (src/yolobench/gate/rule.py): above the ~15% compile-to-compile spread "
        "of DeepSparse and the run-to-run drift of a shared VM")
    engine_factor = thresholds.engine_latency_factor if thresholds else DEFAULT_ENGINE_LATENCY_FACTOR
    lines = [
        "# Gate thresholds for `yolobench gate`; the decision rule is in src/yolobench/gate/.",
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
    pairs = thresholds.pairs if thresholds else {}
    if pairs and not speedup_floors_apply(thresholds, run):
        lines += ["", f"# The [pairs] of {thresholds.path.name} were measured on {thresholds.machine}, not on "
                      f"{run.cpu_generation}: not carried over. Set this machine's by hand from its run."]
        pairs = {}
    for name, pair in sorted(pairs.items()):  # targets are chosen, not derived
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
