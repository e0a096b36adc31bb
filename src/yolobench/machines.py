"""One table across machines: the same matrix run on several runner types, side by side.

Each run's cells carry ``speedup_vs_reference``: the cell against dense on ONNX Runtime at the same
size, measured in the same run on the same machine. That ratio is what can stand side by side across
machines (both numbers share the machine, so its clock and core count cancel); a latency in
milliseconds cannot (a faster CPU makes every cell faster). The table therefore shows speedups per
machine and, per machine, which engine is fastest on each variant: on this project's two AMD EPYC
generations the fastest engine of a rung is not always the same, which a latency table would hide.

Latencies appear only as each machine's own reference p50 (its scale), never compared. Runs are
labelled by CPU generation (the brand string "AMD EPYC" does not tell Zen 4 from Zen 5), with the
file name where two runs share a generation.

Must not: measure or judge (the gate judges one machine's run against its own baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from yolobench import catalogue
from yolobench.errors import UserError
from yolobench.mdtext import md_text
from yolobench.runfile import Run, reference_cell_name


@dataclass(frozen=True)
class Column:
    label: str  # "AMD family 26 model 2 (Zen 5)", or with the file name when generations repeat
    run: Run


def columns(runs: Sequence[Run]) -> list[Column]:
    if not runs:
        raise UserError("name at least one run file")
    generations = [run.cpu_generation or (run.cells and next(iter(run.cells.values())).cpu_model) or "unknown CPU"
                   for run in runs]
    out = []
    for run, generation in zip(runs, generations):
        label = generation if generations.count(generation) == 1 else f"{generation} [{run.path.name}]"
        out.append(Column(label, run))
    return out


def _order(name: str, run_cells) -> tuple:
    cell = run_cells[name]
    variant_rank = (catalogue.VARIANT_NAMES.index(cell.variant) if cell.variant in catalogue.VARIANT_NAMES
                    else len(catalogue.VARIANT_NAMES))
    return (-cell.imgsz, variant_rank, cell.variant, cell.engine)


def speedup_rows(cols: Sequence[Column]) -> list[tuple[str, list[float | None]]]:
    """(cell, speedup per column) for every cell in any run, size by size (largest first), catalogue order."""
    every = {}
    for col in cols:
        every.update(col.run.cells)
    names = sorted(every, key=lambda n: _order(n, every))
    return [(name, [getattr(col.run.cells.get(name), "speedup_vs_reference", None) for col in cols])
            for name in names]


def fastest_engines(col: Column) -> dict[tuple[str, int], tuple[str, float]]:
    """(variant, imgsz) -> (engine, speedup) of the engine with the highest speedup in this run."""
    best: dict[tuple[str, int], tuple[str, float]] = {}
    for cell in col.run.cells.values():
        if cell.speedup_vs_reference is None:
            continue
        key = (cell.variant, cell.imgsz)
        if key not in best or cell.speedup_vs_reference > best[key][1]:
            best[key] = (cell.engine, cell.speedup_vs_reference)
    return best


# Session fields that describe the cell, not how the engine was set up.
_NOT_SETTINGS = {"engine", "model_path", "imgsz", "batch", "threads", "form"}


def engine_settings(col: Column) -> dict[str, dict[str, str]]:
    """engine -> its session settings in this run (precision hint, streams...), from the first cell that has them."""
    out: dict[str, dict[str, str]] = {}
    for cell in col.run.cells.values():
        session = cell.extra.get("session")
        session = session[0] if isinstance(session, list) and session else session
        if cell.engine in out or not isinstance(session, dict):
            continue
        out[cell.engine] = {k: str(v) for k, v in session.items() if k not in _NOT_SETTINGS}
    return out


def settings_that_differ(cols: Sequence[Column]) -> list[tuple[str, str, list[str]]]:
    """(engine, setting, value per column) where the runs set an engine up differently."""
    per = [engine_settings(col) for col in cols]
    rows = []
    for engine in sorted({e for p in per for e in p}):
        keys = sorted({k for p in per for k in p.get(engine, {})})
        for key in keys:
            values = [p.get(engine, {}).get(key, "—") for p in per]
            if len(set(values)) > 1:
                rows.append((engine, key, values))
    return rows


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def markdown(cols: Sequence[Column]) -> str:
    lines = ["# One matrix, several machines", ""]
    lines.append("Speedup of each cell over dense on ONNX Runtime at the same size, measured in the same run on "
                 "the same machine (`speedup_vs_reference`): comparable across machines. Latencies are not "
                 "(a faster CPU makes every cell faster); each machine's reference p50 is given as its scale.")
    lines.append("")
    lines.append("| machine | run | commit | threads | reference p50 ms by size |")
    lines.append("|---|---|---|---|---|")
    for col in cols:
        run = col.run
        threads = sorted({c.threads for c in run.cells.values()})
        sizes = sorted({c.imgsz for c in run.cells.values()}, reverse=True)
        refs = []
        for size in sizes:
            ref = run.cells.get(reference_cell_name(size))
            refs.append(f"{size}: {ref.latency.p50_ms:.1f}" if ref else f"{size}: —")
        lines.append(f"| {md_text(col.label)} | `{md_text(run.path.name, code=True)}` | {md_text(run.commit_id[:12])} | "
                     f"{', '.join(map(str, threads))} | {'; '.join(refs)} |")
    differ = settings_that_differ(cols)
    if differ:
        lines += ["", "**Engine settings differ between these runs** (from each cell's recorded session): a speedup "
                  "change on these engines may come from the setting, not the CPU.", ""]
        lines.append("| engine | setting | " + " | ".join(md_text(col.label) for col in cols) + " |")
        lines.append("|---|---|" + "---|" * len(cols))
        lines += [f"| {md_text(engine)} | {md_text(key)} | " + " | ".join(md_text(v) for v in values) + " |"
                  for engine, key, values in differ]
    lines += ["", "## Speedup vs the in-run reference", ""]
    header = "| cell | " + " | ".join(md_text(col.label) for col in cols) + " |"
    if len(cols) == 2:
        header += f" {md_text(cols[1].label)} / {md_text(cols[0].label)} |"
    lines += [header, "|---" * (header.count("|") - 1) + "|"]
    for name, values in speedup_rows(cols):
        row = f"| {md_text(name)} | " + " | ".join(_fmt(v) for v in values) + " |"
        if len(cols) == 2:
            a, b = values
            row += f" {b / a:.2f} |" if a and b else " — |"
        lines.append(row)
    lines += ["", "## Fastest engine per variant", ""]
    best = [fastest_engines(col) for col in cols]
    keys = sorted({k for b in best for k in b},
                  key=lambda k: (-k[1], catalogue.VARIANT_NAMES.index(k[0]) if k[0] in catalogue.VARIANT_NAMES
                                 else len(catalogue.VARIANT_NAMES), k[0]))
    lines.append("| variant | size | " + " | ".join(md_text(col.label) for col in cols) + " | same engine everywhere |")
    lines.append("|---|---|" + "---|" * len(cols) + "---|")
    for variant, size in keys:
        entries = [f"{md_text(b[(variant, size)][0])} ({b[(variant, size)][1]:.2f}x)" if (variant, size) in b else "—"
                   for b in best]
        differs = len({b[(variant, size)][0] for b in best if (variant, size) in b}) > 1
        lines.append(f"| {md_text(variant)} | {size} | " + " | ".join(entries) + f" | {'no' if differs else 'yes'} |")
    return "\n".join(lines) + "\n"


def as_json(cols: Sequence[Column]) -> dict:
    return {
        "machines": [{"label": col.label, "run": str(col.run.path), "commit": col.run.commit_id,
                      "cpu_generation": col.run.cpu_generation} for col in cols],
        "speedup_vs_reference": {name: dict(zip((c.label for c in cols), values))
                                 for name, values in speedup_rows(cols)},
        "fastest_engine": [{f"{v}-{z}": {"engine": e, "speedup": s} for (v, z), (e, s) in fastest_engines(c).items()}
                           for c in cols],
    }


# --- asv: one history per machine type ---


def asv_machine_name(generation: str | None, cores: int) -> str:
    """``amd-family25-model17-2c``: the asv machine a run's points go to (``yolobench.history``).

    asv keeps one history per machine name and defaults to the host name, which is "vm" on every machine
    of this project, Zen 4 and Zen 5 alike: their numbers would share one line. Named by CPU generation
    and cores, each runner type gets its own history."""
    from yolobench.timer import generation_slug

    return f"{generation_slug(generation)}-{cores}c" if generation else f"unknown-cpu-{cores}c"


def asv_cpu(cpu_model: str | None, generation: str | None) -> str:
    return f"{cpu_model} [{generation}]" if generation else str(cpu_model)
