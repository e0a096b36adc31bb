"""The sections that set this run beside something else: a baseline run with the gate's verdicts, the
blog's speedups, the scenarios measured on the same cells."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from yolobench import blog
from yolobench.report.cells import (_engine_rank, _order_key, _stored_latency, _variant_rank, sizes_of,
                                    torch_baseline_name, variants_of)
from yolobench.report.formats import (MISSING, _join, display_path, fmt_fps, fmt_ms, fmt_ratio, markdown_table,
                                      md_text)
from yolobench.report.machine import machine_summary
from yolobench.report.rows import Row, rows_at
from yolobench.runfile import Run, cell_name


def baseline_section(current: Run, baseline: Run, thresholds_path: Path | None) -> list[str]:
    """Per cell: the baseline's p50, this run's, their ratio and the gate's verdict, so a failed gate reads
    at a glance. The verdicts are ``yolobench gate``'s own (``gate.evaluate``), not recomputed here."""
    from yolobench import gate

    thresholds = gate.load_thresholds(thresholds_path) if thresholds_path else None
    if thresholds is None:
        thresholds = gate.Thresholds(path=Path("(none)"), latency_factor=gate.DEFAULT_LATENCY_FACTOR,
                                     source="built-in default", cells={})
    checks = gate.evaluate(current, baseline, thresholds)
    by_cell: dict[str, list] = {}
    for check in checks:
        by_cell.setdefault(check.cell, []).append(check)
    header = ["cell", "baseline p50 ms", "this run p50 ms", "ratio", "limit", "verdict", "other checks"]
    table = []
    for name in sorted(by_cell, key=lambda n: (_order_key(current.cells[n]) if n in current.cells else (9, n))):
        own = by_cell[name]
        latency = next((c for c in own if c.check == gate.CHECK_LATENCY), None)
        base = baseline.cells.get(name)
        others = [f"{c.check} {c.measured} ({c.verdict})" for c in own
                  if c is not latency and c.verdict in (gate.FAIL, gate.NOT_COMPARED)]
        verdict = gate.FAIL if any(c.failed for c in own) else (latency.verdict if latency else "")
        table.append([md_text(name), fmt_ms(_stored_latency(base, "p50")) if base else MISSING,
                      fmt_ms(_stored_latency(current.cells[name], "p50")) if name in current.cells else MISSING,
                      fmt_ratio(latency.ratio) if latency and latency.ratio is not None else MISSING,
                      latency.limit if latency else MISSING, f"**{verdict}**" if verdict == gate.FAIL else verdict,
                      "; ".join(others)])
    failed = sorted({c.cell for c in checks if c.failed})
    lines = ["## Against the baseline", "",
             f"Baseline `{display_path(baseline.path)}` (commit {md_text(baseline.commit_id[:12])}, "
             f"{md_text(baseline.cpu_generation or 'CPU generation not recorded')}), thresholds "
             f"`{display_path(thresholds.path) if thresholds_path else 'built-in defaults'}`: "
             + (f"**gate FAILS** on {', '.join(map(md_text, failed))}." if failed else "the gate passes.")
             + " Ratio = this run / baseline (the gate's latency rule, `yolobench gate`; above 1 is slower).", "",
             markdown_table(header, table, numeric_from=1, numeric_to=4), ""]
    return lines


def _variant_label(variant: str, run_variants: Iterable[str]) -> str:
    return variant if variant in run_variants else f"{variant} (not in this run)"


@dataclass(frozen=True)
class BlogComparison:
    """One rung of the blog beside this run: the run's fastest engine on that variant at the blog's size,
    and the run's cell on the blog's engine."""

    rung: blog.Rung
    fastest: Row | None
    same_engine: Row | None


def blog_side_by_side(rows: list[Row], imgsz: int = blog.IMGSZ) -> list[BlogComparison]:
    """The blog's baseline and rungs with this run's rows at ``imgsz``: per rung the row of that variant
    with the highest speedup over dense on PyTorch (the highest FPS where the run has no PyTorch baseline
    at that size), and the row on the blog's own engine."""
    at_size = rows_at(rows, imgsz)
    comparisons = []
    for rung in (blog.BASELINE, *blog.RUNGS):
        if rung is blog.BASELINE:
            candidates = [r for r in at_size if r.variant == rung.variant and r.engine == rung.engine]
        else:
            candidates = [r for r in at_size if r.variant == rung.variant]
        fastest = max(candidates, key=lambda r: (r.speedup_vs_torch or 0.0, r.fps), default=None)
        same = next((r for r in candidates if r.engine == rung.engine), None)
        comparisons.append(BlogComparison(rung, fastest, same))
    return comparisons


def blog_section(run: Run, rows: list[Row]) -> list[str]:
    """The lines of "The blog side by side": the blog's speedups over PyTorch and this run's at the same size."""
    imgsz, baseline = blog.IMGSZ, torch_baseline_name(blog.IMGSZ)
    summary = machine_summary(run)
    has_size = imgsz in sizes_of(run)
    lines = ["## The blog side by side", "",
             f"The blog: {blog.source_line()}; its speedup = the rung's FPS / PyTorch's {blog.TORCH_FPS:g} FPS, "
             "every rung on DeepSparse (the numbers are in `yolobench.blog`)."]
    if not has_size:
        lines += ["", f"This run has no {imgsz} px cells (it timed {_join(sizes_of(run))} px): the comparison needs "
                  f"them, since the blog measured at {imgsz} px (the `full` profile times {imgsz} px). Only the "
                  "blog's numbers are shown."]
    else:
        lines[-1] += (f" This run ({md_text(summary.cpu_model)}, threads {_join(summary.threads)}, {imgsz} px): the speedup "
                      f"over {baseline} (its fastest `session_p50_ms` / the cell's, as in the table) of the engine "
                      "fastest on that rung, and of DeepSparse, the blog's engine.")
        if baseline not in run.cells:
            lines[-1] += f" This run has no {baseline} cell: its speedups over PyTorch need one (n/a below)."
    run_variants = variants_of(run)
    header = ["rung (blog)", "variant", "blog FPS", "blog speedup vs PyTorch",
              f"this run: DeepSparse speedup vs {baseline}", f"this run: fastest engine's speedup vs {baseline}",
              "this run: fastest engine"]
    body = []
    for comparison in blog_side_by_side(rows, imgsz):
        rung = comparison.rung
        if not has_size:
            mine = [MISSING, MISSING, MISSING]
        else:
            fastest, same = comparison.fastest, comparison.same_engine
            mine = [MISSING if rung is blog.BASELINE or same is None else fmt_ratio(same.speedup_vs_torch),
                    fmt_ratio(fastest.speedup_vs_torch) if fastest else MISSING,
                    md_text(fastest.engine) if fastest else f"not in this run at {imgsz} px"]
        body.append([rung.label, _variant_label(rung.variant, run_variants), fmt_fps(rung.fps),
                     fmt_ratio(rung.speedup_vs_torch), *mine])
    return [*lines, "", markdown_table(header, body, numeric_from=2), ""]


def scenario_section(run: Run) -> list[str]:
    """The scenarios measured in this run (``yolobench.scenarios``), beside the matrix's single-stream FPS."""
    from yolobench import scenarios

    found = scenarios.load_scenarios(run.path)
    if not found:
        return []
    by_cell: dict[tuple[str, str, int], dict[str, Any]] = {}
    for result in found.values():
        by_cell.setdefault((result.variant, result.engine, result.imgsz), {})[result.scenario] = result
    lines = ["## Scenarios", "",
             "Beside the matrix's batch-1, one-request-at-a-time latency, on the same cells: **e2e** = one frame "
             "in, boxes out (letterbox + run + decode + NMS at conf "
             f"{scenarios.E2E_CONF:g}, IoU {scenarios.E2E_IOU:g}); pre/post = the share of the e2e median not spent "
             "in the engine; **throughput** = N sessions called concurrently, each with threads / N threads, "
             f"frames per second of wall time over {scenarios.THROUGHPUT_SECONDS:g} s; gain = that / the cell's "
             "single-stream FPS in this run; **peak RSS** = a fresh process that loads the cell and runs it "
             f"{scenarios.MEMORY_RUNS} times (Python and the engine's libraries included).", ""]
    header = ["cell", "single-stream FPS", "e2e FPS", "e2e p50 ms", "e2e p99 ms", "pre/post %",
              "throughput FPS", "streams", "gain", "peak RSS MB"]
    for imgsz in sorted({k[2] for k in by_cell}, reverse=True):
        table = []
        keys = sorted((k for k in by_cell if k[2] == imgsz), key=lambda k: (_variant_rank(k[0]), _engine_rank(k[1])))
        for variant, engine, size in keys:
            got = by_cell[variant, engine, size]
            cell = run.cells.get(cell_name(variant, engine, size))
            e2e, tput, mem = got.get(scenarios.E2E), got.get(scenarios.THROUGHPUT), got.get(scenarios.MEMORY)
            overhead = e2e.extra.get("overhead_fraction") if e2e else None
            single = cell.latency.fps if cell else None
            gain = tput.fps / single if tput and single else None
            table.append([md_text(cell_name(variant, engine, size)), fmt_fps(single) if cell else MISSING,
                          fmt_fps(e2e.fps) if e2e else MISSING, fmt_ms(e2e.p50_ms) if e2e else MISSING,
                          fmt_ms(e2e.p99_ms) if e2e else MISSING,
                          f"{100 * overhead:.0f}" if overhead is not None else MISSING,
                          fmt_fps(tput.fps) if tput else MISSING, md_text(tput.extra.get("streams")) if tput else MISSING,
                          fmt_ratio(gain), f"{mem.peak_rss_mb:.0f}" if mem else MISSING])
        lines += [f"### {imgsz} px", "", markdown_table(header, table, numeric_from=1, numeric_to=len(header)), ""]
    return lines
