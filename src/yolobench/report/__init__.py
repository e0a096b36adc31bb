"""The report of one benchmark run: markdown tables, charts and sample detections per variant.

``write_report(run_path, out_dir)`` writes into ``out_dir``:

- ``report.md``: one table per image size of the run (a ``full`` run: 640 px, then 416 px), one row per
  (variant, engine) cell with FPS, p50/p90 latency, speedup vs dense on PyTorch and vs the run's
  reference (dense on ONNX Runtime) at that size, mAP@0.5 (and its change vs dense) and mAP@0.5:0.95 at
  that size, sparsity, the size of the file that engine loads and its gzip size; a row "not timed" where
  the matrix does not time a cell by design (``bench.untimed_reason``: PyTorch's fake-quantized INT8);
  the machine, library versions, date and commit; the fastest configuration within one mAP point of
  dense at each size; the blog's speedups beside this run's (``yolobench.blog``); the run file it all
  comes from;
- per size, ``fps.png`` / ``tradeoff.png`` for a run of one size, ``fps-<imgsz>.png`` /
  ``tradeoff-<imgsz>.png`` for a run of several (:func:`chart_names`): FPS per variant (groups) and
  engine (bars); mAP@0.5 against FPS;
- ``detections/<variant>.png``: the same sample images with the variant's detections, run through its
  artifact the run measured on one engine (skipped with a note when the store no longer has it).

Every number in the tables is copied from the run file (``benchmarks[].extra_info``) and only rounded for
display; the derived columns are documented in the report itself: the speedup vs dense on PyTorch
(ratio of fastest-session medians, ``runfile.speedup_of_fastest``, the rule of the run's own
``speedup_vs_reference``), the mAP change (difference of stored mAPs) and the gzip size (of the cell's
file in the artifact store, looked up by the ``artifact_key`` the cell records; "—" with a footnote where
the store does not have it).

Must not: measure anything, build or train a variant (a missing build is a note in the report, not a
build), or write anything outside ``out_dir``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from yolobench import bench, blog, catalogue, engines, paths
from yolobench.errors import UserError
from yolobench.fsutil import atomic_write, atomic_write_bytes, atomic_write_text
from yolobench.runfile import (Cell, Run, cell_name, load_run, reference_cell_name, speedup_of_fastest,
                               split_cell_name)
from yolobench.store import FORM_FP32, FORMS, WEIGHTS_NAME, Store, onnx_filename
from yolobench.timer import cpu_generation

DENSE_VARIANT = catalogue.REFERENCE_VARIANT
TORCH_ENGINE = "torch"  # dense on PyTorch at each size is the blog's "PyTorch dense" baseline
# "Within 1 point of dense": mAP@0.5 no more than 0.01 below dense's (the blog's recovery criterion).
MAP_POINTS_ALLOWED = 1.0
POINTS_PER_UNIT = 100.0  # mAP 0.412 = 41.2 points
FLOAT_SLACK = 1e-9  # so that a drop of exactly 1.0 point, stored as 0.402 vs 0.412, still qualifies
DETECTION_PANEL_HEIGHT = 360  # px: every sample image is shown at this height, boxes drawn at that scale
DETECTION_CONF = 0.25

# Compressed size: what the blog's source publishes beside each model (sparse weights compress). gzip
# at level 9 in a gzip wrapper without name or time stamp: the same bytes for the same file every time.
GZIP_LEVEL = 9
_GZIP_WBITS = 31  # zlib: deflate in a gzip wrapper (mtime 0, no file name)

# Table markers: what a "—" or "not timed" means is said under the table, never left to guess.
UNTIMED_TEXT = "not timed"
UNTIMED_MARK = "†"
NO_COMPRESSED_MARK = "‡"
MISSING = "—"

# Charts: fixed pixel sizes, so the report looks the same from run to run (and tests can check them).
CHART_DPI = 100
FPS_FIGSIZE = (12.0, 6.0)  # inches -> 1200 x 600 px
TRADEOFF_FIGSIZE = (10.0, 7.0)  # -> 1000 x 700 px
FONT_FAMILY = "DejaVu Sans"  # bundled with matplotlib: nothing is fetched
# Engines' order, colours and markers are their own (engines.trait): an engine no longer installed
# (an old run file's) sorts after the others, by name, in grey circles.
UNKNOWN_ENGINE_COLOR, UNKNOWN_ENGINE_MARKER = "#555555", "o"

Progress = Callable[[str], None]


def torch_baseline_name(imgsz: int) -> str:
    """The blog's "PyTorch dense" baseline at ``imgsz``: ``dense-torch-640``."""
    return cell_name(DENSE_VARIANT, TORCH_ENGINE, imgsz)


# --- the table ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One cell's numbers as the report shows them: copied from the run file, two documented ratios, and
    the gzip size of the file the cell's engine loaded (from the store)."""

    cell: Cell
    fps: float
    p50_ms: float
    p90_ms: float
    speedup_vs_torch: float | None  # dense-torch's fastest session median / this cell's, same size (None without it)
    speedup_vs_reference: float | None  # extra_info.speedup_vs_reference, as stored
    map50: float | None
    map50_delta_points: float | None  # (map50 - dense's map50) * 100, dense at the same size
    dense_cell: str | None  # the dense cell the delta is taken against
    sparsity: float | None
    model_size_bytes: int | None
    notes: tuple[str, ...] = ()
    map50_95: float | None = None
    file: str | None = None  # the file the engine loaded (its name in the artifact)
    compressed_bytes: int | None = None  # gzip -9 of that file, from the store
    compressed_missing: str | None = None  # why compressed_bytes is None
    p99_ms: float | None = None

    @property
    def name(self) -> str:
        return self.cell.name

    @property
    def variant(self) -> str:
        return self.cell.variant

    @property
    def engine(self) -> str:
        return self.cell.engine

    @property
    def imgsz(self) -> int:
        return self.cell.imgsz


@dataclass(frozen=True)
class Untimed:
    """A cell the matrix does not time by design: shown as "not timed" with the engine's reason."""

    variant: str
    engine: str
    imgsz: int
    reason: str

    @property
    def name(self) -> str:
        return cell_name(self.variant, self.engine, self.imgsz)


def _stored_latency(cell: Cell, key: str) -> float:
    return float(cell.extra["latency_ms"][key])


def _variant_rank(variant: str) -> tuple:
    variants = list(catalogue.VARIANT_NAMES)
    return (variants.index(variant) if variant in variants else len(variants)), variant


def _engine_rank(engine: str) -> tuple:
    order = engines.trait(engine, "order")
    return (0, order) if order is not None else (1, 0), engine


def _engine_color(engine: str) -> str:
    return engines.trait(engine, "color", UNKNOWN_ENGINE_COLOR)


def _engine_marker(engine: str) -> str:
    return engines.trait(engine, "marker", UNKNOWN_ENGINE_MARKER)


def _order_key(item) -> tuple:
    """Size (largest first), catalogue order of variants, engine order (unknown ones after, by name)."""
    return -item.imgsz, _variant_rank(item.variant), _engine_rank(item.engine)


def ordered_cells(run: Run) -> list[Cell]:
    return sorted(run.cells.values(), key=_order_key)


def sizes_of(run: Run) -> list[int]:
    """The run's image sizes, largest first (a ``full`` run: [640, 416])."""
    return sorted({c.imgsz for c in run.cells.values()}, reverse=True)


def variants_of(run: Run, imgsz: int | None = None) -> list[str]:
    """The run's variants (at ``imgsz``, if given) in catalogue order."""
    return sorted({c.variant for c in run.cells.values() if imgsz is None or c.imgsz == imgsz}, key=_variant_rank)


def engines_of(run: Run) -> list[str]:
    return sorted({c.engine for c in run.cells.values()}, key=_engine_rank)


def _untimed_reason(variant: str, engine: str, run: Run | None = None) -> str | None:
    from yolobench import modelfiles

    files = [c.extra["model_file"] for c in (run.cells.values() if run is not None else ())
             if c.variant == variant and isinstance(c.extra.get("model_file"), Mapping)]
    try:
        if files:  # a model file (`bench --model`): its cells say what it is
            return modelfiles.untimed_reason(engine, quantized=bool(files[0].get("quantized")))
        return bench.untimed_reason(variant, engine)
    except UserError:  # a variant or engine this checkout does not know: nothing to say about it
        return None


def untimed_cells(run: Run) -> list[Untimed]:
    """Cells missing from the run because the matrix does not time them (``bench.untimed_reason``): for
    each size, each of the run's variants at that size on each of the run's engines."""
    missing = []
    for imgsz in sizes_of(run):
        for variant in variants_of(run, imgsz):
            for engine in engines_of(run):
                if cell_name(variant, engine, imgsz) in run.cells:
                    continue
                reason = _untimed_reason(variant, engine, run)
                if reason is not None:
                    missing.append(Untimed(variant, engine, imgsz, reason))
    return missing


def dense_cell_for(run: Run, cell: Cell) -> Cell | None:
    """The dense cell a cell's mAP is compared with, at the same size (mAP depends on it): dense on the same
    engine (same numerics), else the reference cell, else dense on PyTorch, else any dense cell; only cells
    that recorded an mAP."""
    candidates = [cell_name(DENSE_VARIANT, cell.engine, cell.imgsz), cell.reference_cell or "",
                  reference_cell_name(cell.imgsz), torch_baseline_name(cell.imgsz)]
    candidates += sorted(n for n, c in run.cells.items() if c.variant == DENSE_VARIANT)
    for name in candidates:
        dense = run.cells.get(name)
        if (dense is not None and dense.variant == DENSE_VARIANT and dense.imgsz == cell.imgsz
                and dense.map50 is not None):
            return dense
    return None


def _speedup_over(baseline: Cell | None, cell: Cell) -> float | None:
    """baseline's fastest session median / the cell's (``runfile.speedup_of_fastest``, the rule of
    ``speedup_vs_reference``); each cell's p50 where a run file recorded no sessions."""
    if baseline is None:
        return None
    return speedup_of_fastest(cell.latency, list(baseline.latency.session_p50s_ms() or (baseline.latency.p50_ms,)))


# --- the file a user deploys -------------------------------------------------------------------------


def loaded_file(cell: Cell) -> str | None:
    """The name (inside its artifact) of the file the cell's engine loaded: the session's ``model_path``
    for ONNX engines, the weights for PyTorch; from the form and size where the run recorded no session."""
    sessions = cell.extra.get("session")
    for record in sessions if isinstance(sessions, list) else [sessions]:
        if isinstance(record, Mapping) and record.get("model_path"):
            return PurePath(str(record["model_path"])).name
    if cell.engine == TORCH_ENGINE or cell.form == engines.FORM_TORCH:
        return WEIGHTS_NAME
    if cell.form in FORMS:
        return onnx_filename(cell.form, cell.imgsz)
    return None


def _engine_made_file(cell: Cell) -> Path | None:
    """The file the cell's session loaded when the engine made it outside the store (recorded by its full
    path, still there, and of the size the run recorded), else None."""
    sessions = cell.extra.get("session")
    for record in sessions if isinstance(sessions, list) else [sessions]:
        if isinstance(record, Mapping) and record.get("model_path"):
            path = Path(str(record["model_path"]))
            store_file = any(part.startswith(f"{cell.variant}-") for part in path.parts[-3:-1])
            if (path.is_absolute() and not store_file and path.is_file() and cell.model_size_bytes is not None
                    and path.stat().st_size == cell.model_size_bytes):
                return path
    return None


def deployment_file(variant: str, engine: str, imgsz: int) -> str | None:
    """The file a deployment of ``variant`` on ``engine`` loads: the weights on PyTorch; the engine's
    preferred quantized graph for a quantized variant (DeepSparse: the converted INT8 ONNX; ONNX Runtime,
    OpenVINO: the QDQ ONNX); the FP32 ONNX otherwise. None for a variant or engine this checkout lacks."""
    try:
        spec, runtime = catalogue.get_variant(variant), engines.get(engine)
    except UserError:
        return None
    if engine == TORCH_ENGINE:
        return WEIGHTS_NAME
    return onnx_filename(runtime.preferred_forms[0] if spec.quantized else FORM_FP32, imgsz)


def gzip_size(path: str | os.PathLike, chunk: int = 1 << 20) -> int:
    """Bytes of the file after ``gzip -9`` (no name, time stamp 0: the same for the same file every time)."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    total = 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            total += len(compressor.compress(block))
    return total + len(compressor.flush())


@dataclass(frozen=True)
class DeployedFile:
    file: str | None
    compressed_bytes: int | None
    missing: str | None = None  # why compressed_bytes is None


def deployed_files(run: Run, store, say: Progress | None = None) -> dict[str, DeployedFile]:
    """Per cell: the file its engine loaded and that file's gzip size, read from the artifact the cell
    records (``artifact_key``) in ``store`` (looked up, never built; each file compressed once)."""
    say = say or (lambda message: None)
    artifacts: dict[tuple[str, str], Any] = {}
    compressed: dict[Path, int] = {}
    result = {}
    for cell in ordered_cells(run):
        file, key = loaded_file(cell), cell.extra.get("artifact_key")
        missing, size = None, None
        outside = _engine_made_file(cell)
        if outside is not None:  # a file the engine made from the artifact (openvino_nncf's INT8 model)
            if outside not in compressed:
                say(f"compressing {outside}")
                compressed[outside] = gzip_size(outside)
            result[cell.name] = DeployedFile(file, compressed[outside], None)
            continue
        if file is None:
            missing = "the run does not record which file the engine loaded"
        elif not key:
            missing = "the run does not record which artifact the cell measured (no `artifact_key`)"
        else:
            if (cell.variant, str(key)) not in artifacts:
                artifacts[cell.variant, str(key)] = store.get(cell.variant, str(key), deep=False)
            artifact = artifacts[cell.variant, str(key)]
            path = artifact.path / file if artifact is not None else None
            if artifact is None:
                missing = f"the store ({store.root}) does not have artifact {cell.variant}-{key}"
            elif not path.is_file():
                missing = f"artifact {cell.variant}-{key} in the store has no {file}"
            elif cell.model_size_bytes is not None and path.stat().st_size != cell.model_size_bytes:
                missing = (f"{file} of artifact {cell.variant}-{key} is {path.stat().st_size} bytes in the store, "
                           f"the run recorded {cell.model_size_bytes}: not the file measured")
            else:
                if path not in compressed:
                    say(f"compressing {cell.variant}-{key}/{file}")
                    compressed[path] = gzip_size(path)
                size = compressed[path]
        result[cell.name] = DeployedFile(file, size, missing)
    return result


def build_rows(run: Run, deployed: Mapping[str, DeployedFile] | None = None) -> list[Row]:
    """The table's rows, largest size first; ``deployed``: :func:`deployed_files` (no gzip sizes without)."""
    rows = []
    for cell in ordered_cells(run):
        p50 = _stored_latency(cell, "p50")
        notes = []
        dense = dense_cell_for(run, cell) if cell.map50 is not None else None
        delta = None
        if dense is not None:
            delta = (cell.map50 - dense.map50) * POINTS_PER_UNIT
            if dense.engine != cell.engine:
                notes.append(f"mAP change vs {dense.name}")
        if cell.latency.stopped_early:
            notes.append("stopped early (few samples)")
        if cell.fraction_of_supported_ops is not None and cell.fraction_of_supported_ops < 1.0:
            notes.append(f"{cell.fraction_of_supported_ops:.0%} of ops native, rest in a fallback")
        file = loaded_file(cell)
        expected = deployment_file(cell.variant, cell.engine, cell.imgsz)
        if file is not None and expected is not None and file != expected:
            notes.append(f"loaded {file}, a deployment loads {expected}")
        found = (deployed or {}).get(cell.name) or DeployedFile(file, None, "the store was not consulted")
        rows.append(Row(
            cell=cell,
            fps=float(cell.extra["fps"]),
            p50_ms=p50,
            p90_ms=_stored_latency(cell, "p90"),
            p99_ms=_stored_latency(cell, "p99"),
            speedup_vs_torch=_speedup_over(run.cells.get(torch_baseline_name(cell.imgsz)), cell),
            speedup_vs_reference=cell.speedup_vs_reference,
            map50=cell.map50,
            map50_delta_points=delta,
            dense_cell=dense.name if dense is not None else None,
            sparsity=cell.sparsity,
            model_size_bytes=cell.model_size_bytes,
            notes=tuple(notes),
            map50_95=cell.map50_95,
            file=file,
            compressed_bytes=found.compressed_bytes,
            compressed_missing=found.missing,
        ))
    return rows


def rows_at(rows: Iterable[Row], imgsz: int) -> list[Row]:
    return [r for r in rows if r.imgsz == imgsz]


def fastest_within_dense(rows: Iterable[Row], points: float = MAP_POINTS_ALLOWED) -> Row | None:
    """The highest-FPS row whose mAP@0.5 is at most ``points`` below dense's (dense rows included).
    Pass the rows of one size: FPS at different sizes do not compare."""
    eligible = [r for r in rows if r.map50_delta_points is not None
                and r.map50_delta_points >= -points - FLOAT_SLACK]
    return max(eligible, key=lambda r: r.fps, default=None)


def fastest_per_size(rows: list[Row]) -> dict[int, Row | None]:
    """:func:`fastest_within_dense` at each size of the rows, largest size first."""
    return {imgsz: fastest_within_dense(rows_at(rows, imgsz))
            for imgsz in sorted({r.imgsz for r in rows}, reverse=True)}


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


def fmt_compressed(row: Row) -> str:
    return MISSING + NO_COMPRESSED_MARK if row.compressed_bytes is None else fmt_size(row.compressed_bytes)


def table_row(row: Row) -> list[str]:
    return [row.name, row.variant, row.engine, fmt_fps(row.fps), fmt_ms(row.p50_ms), fmt_ms(row.p90_ms),
            fmt_ms(row.p99_ms) if row.p99_ms is not None else MISSING, fmt_ratio(row.speedup_vs_torch), fmt_ratio(row.speedup_vs_reference), fmt_map(row.map50),
            fmt_points(row.map50_delta_points), fmt_map(row.map50_95), fmt_sparsity(row.sparsity),
            fmt_size(row.model_size_bytes), fmt_compressed(row), row.file or "n/a", "; ".join(row.notes)]


def untimed_row(item: Untimed, columns: int) -> list[str]:
    """A "not timed" row: the variant and engine, the marker in FPS, a dash in every number."""
    return ([item.name, item.variant, item.engine, UNTIMED_TEXT + UNTIMED_MARK] + [MISSING] * (columns - 5)
            + [f"by design, see {UNTIMED_MARK} below"])


def reference_name(run: Run, imgsz: int) -> str:
    """The reference the run's cells at ``imgsz`` name (``dense-onnxruntime-<imgsz>`` unless recorded otherwise)."""
    names = sorted({c.reference_cell for c in run.cells.values() if c.imgsz == imgsz and c.reference_cell})
    return ", ".join(names) if names else reference_cell_name(imgsz)


def table_header(run: Run, imgsz: int) -> list[str]:
    return ["cell", "variant", "engine", "FPS", "p50 ms", "p90 ms", "p99 ms", f"speedup vs {torch_baseline_name(imgsz)}",
            f"speedup vs {reference_name(run, imgsz)}", "mAP@0.5", "ΔmAP@0.5 vs dense (points)", "mAP@0.5:0.95",
            "sparsity", "size MB", "gzip MB", "file", "notes"]


def size_table(run: Run, rows: list[Row], untimed: list[Untimed], imgsz: int) -> str:
    """The table of one size: its cells and its "not timed" ones, in catalogue and engine order."""
    header = table_header(run, imgsz)
    items = sorted([*rows_at(rows, imgsz), *(u for u in untimed if u.imgsz == imgsz)], key=_order_key)
    lines = [table_row(i) if isinstance(i, Row) else untimed_row(i, len(header)) for i in items]
    return markdown_table(header, lines, numeric_to=-2)


def markdown_table(header: list[str], rows: list[list[str]], numeric_from: int = 3, numeric_to: int = -1) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    last = len(header) + numeric_to if numeric_to < 0 else numeric_to
    align = ["---:" if numeric_from <= i < last else ":---" for i in range(len(header))]
    return "\n".join([line(header), "|" + "|".join(align) + "|", *(line(r) for r in rows)])


def table_footnotes(rows: list[Row], untimed: list[Untimed], imgsz: int) -> list[str]:
    """What each marker of the table at ``imgsz`` means: the untimed reasons, why a gzip size is missing."""
    notes = []
    reasons: dict[str, list[str]] = {}
    for item in (u for u in untimed if u.imgsz == imgsz):
        reasons.setdefault(item.reason, []).append(item.name)
    for reason, names in reasons.items():
        notes.append(f"{UNTIMED_MARK} {_join(names)}: {UNTIMED_TEXT} by design (`bench.untimed_reason`): {reason}.")
    missing: dict[str, list[str]] = {}
    at_size = rows_at(rows, imgsz)
    for row in at_size:
        if row.compressed_bytes is None:
            missing.setdefault(row.compressed_missing or "unknown", []).append(row.name)
    for why, names in missing.items():
        which = "every cell" if len(names) == len(at_size) > 1 else _join(names)
        notes.append(f"{NO_COMPRESSED_MARK} gzip size of {which} not computed: {why}; the report reads the "
                     "store, it never builds.")
    return notes


# --- the machine -------------------------------------------------------------------------------------


def _machine_records(run: Run) -> list[Mapping[str, Any]]:
    """machine_info and any nested record yolobench put in it (``machine_info()`` under a key)."""
    records = [run.machine]
    records += [v for v in run.machine.values() if isinstance(v, dict) and ("cpu_model" in v or "logical_cores" in v)]
    return records


def _first(records: list[Mapping[str, Any]], *keys: str) -> Any:
    for record in records:
        for key in keys:
            if record.get(key) not in (None, ""):
                return record[key]
    return None


@dataclass(frozen=True)
class MachineSummary:
    cpu_model: str
    logical_cores: Any
    usable_cores: Any
    threads: list[int]
    imgsz: list[int]
    batch: list[int]
    system: str
    python: str | None
    versions: dict[str, str] = field(default_factory=dict)
    generation: str | None = None  # "AMD family 25 model 17 (Zen 4)" where the run file records family/model


def machine_summary(run: Run) -> MachineSummary:
    records = _machine_records(run)
    cpu = run.machine.get("cpu") if isinstance(run.machine.get("cpu"), dict) else {}
    cpu_models = sorted({c.cpu_model for c in run.cells.values() if c.cpu_model})
    cpu_model = ", ".join(cpu_models) or _first(records, "cpu_model") or cpu.get("brand_raw") or "unknown CPU"
    logical = _first(records, "logical_cores") or cpu.get("count")
    usable = _first(records, "usable_cores")
    system = " ".join(str(x) for x in (_first(records, "system"), _first(records, "release", "arch", "machine")) if x)
    python = _first(records, "python_version", "python")
    versions: dict[str, str] = {}
    for cell in ordered_cells(run):
        if cell.engine_version:
            versions.setdefault(cell.engine, cell.engine_version)
    for record in records:
        for key in ("versions", "libraries"):
            if isinstance(record.get(key), dict):
                for name, version in record[key].items():
                    if version:
                        versions.setdefault(str(name), str(version))
    return MachineSummary(cpu_model=cpu_model, logical_cores=logical, usable_cores=usable,
                          threads=sorted({c.threads for c in run.cells.values()}),
                          imgsz=sorted({c.imgsz for c in run.cells.values()}),
                          batch=sorted({c.batch for c in run.cells.values()}), system=system, python=python,
                          versions=versions, generation=cpu_generation(run.machine))


def _join(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def machine_line(summary: MachineSummary) -> str:
    cores = f"{summary.logical_cores if summary.logical_cores is not None else '?'} cores"
    if summary.usable_cores is not None and summary.usable_cores != summary.logical_cores:
        cores += f" ({summary.usable_cores} usable)"
    cpu = summary.cpu_model + (f", {summary.generation}" if summary.generation else "")
    line = f"Machine: {cpu}, {cores}, threads {_join(summary.threads)}"
    return line + (f", {summary.system}" if summary.system else "")


def commit_line(run: Run) -> str:
    commit = run.commit
    parts = [f"Commit: {run.commit_id}"]
    if commit.get("branch"):
        parts.append(f"branch {commit['branch']}")
    if commit.get("dirty"):
        parts.append("with uncommitted changes")
    if commit.get("time"):
        parts.append(f"committed {commit['time']}")
    return ", ".join(parts)


def display_path(path: Path) -> str:
    """A path as the report cites it: relative to the checkout when inside it (the committed report), else absolute."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(paths.repo_root().resolve()))
    except ValueError:
        return str(resolved)


# --- charts ------------------------------------------------------------------------------------------


def _figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=CHART_DPI)
    FigureCanvasAgg(figure)  # a private canvas: no pyplot, no global state, no display
    return figure


def _rc():
    import matplotlib

    return matplotlib.rc_context({"font.family": FONT_FAMILY, "font.size": 10, "axes.titlesize": 12,
                                  "svg.fonttype": "none"})


def _save(figure, path: Path) -> None:
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=CHART_DPI, format="png",
                                                    metadata={"Software": None}))


def _chart_subtitle(run: Run, summary: MachineSummary, imgsz: int) -> str:
    cpu = summary.cpu_model + (f" ({summary.generation})" if summary.generation else "")
    return (f"{cpu}, threads {_join(summary.threads)}, batch {_join(summary.batch)}, "
            f"{imgsz} px  |  {Path(run.path).name}")


def chart_names(sizes: list[int]) -> dict[int, tuple[str, str]]:
    """Per size, the FPS and tradeoff charts' file names: ``fps.png`` and ``tradeoff.png`` for a run of one
    size (as before sizes were in cell names), ``fps-<imgsz>.png`` and ``tradeoff-<imgsz>.png`` otherwise."""
    if len(sizes) == 1:
        return {sizes[0]: ("fps.png", "tradeoff.png")}
    return {imgsz: (f"fps-{imgsz}.png", f"tradeoff-{imgsz}.png") for imgsz in sizes}


def plot_fps(run: Run, rows: list[Row], path: Path, imgsz: int, untimed: Iterable[Untimed] = ()) -> None:
    """Grouped bars of the cells at ``imgsz``: one group per variant, one bar per engine, the FPS written on
    each bar; "not timed" written where a cell is not timed by design."""
    summary = machine_summary(run)
    rows = rows_at(rows, imgsz)
    untimed = {(u.variant, u.engine): u for u in untimed if u.imgsz == imgsz}
    variants, engine_names = variants_of(run, imgsz), engines_of(run)
    by_pair = {(r.variant, r.engine): r for r in rows}
    with _rc():
        figure = _figure(FPS_FIGSIZE)
        axes = figure.add_subplot(1, 1, 1)
        # Each group shows only the engines it has (timed or not timed by design), centred: a missing cell
        # leaves no hole.
        per_group = {v: [e for e in engine_names if (v, e) in by_pair or (v, e) in untimed] for v in variants}
        width = 0.8 / max(len(e) for e in per_group.values())
        bars = sum(len(e) for e in per_group.values())
        vertical = bars > 12  # horizontal numbers over many narrow bars would run into each other
        value_size = 9 if not vertical else 8
        top = max(r.fps for r in rows)
        labelled: set[str] = set()
        for i, variant in enumerate(variants):
            present = per_group[variant]
            for k, engine in enumerate(present):
                x = i + (k - (len(present) - 1) / 2) * width
                row = by_pair.get((variant, engine))
                if row is None:  # not timed by design: say so where the bar would be
                    axes.text(x, top * 0.02, UNTIMED_TEXT, rotation=90, ha="center", va="bottom",
                              fontsize=value_size, color=_engine_color(engine), zorder=4)
                    continue
                drawn = axes.bar([x], [row.fps], width * 0.92, color=_engine_color(engine), edgecolor="white",
                                 linewidth=0.5, zorder=3, label=None if engine in labelled else engine)
                labelled.add(engine)
                axes.bar_label(drawn, labels=[fmt_fps(row.fps)], padding=3, fontsize=value_size,
                               rotation=90 if vertical else 0, zorder=4)
        axes.set_xticks(range(len(variants)), variants, rotation=20 if len(variants) > 5 else 0,
                        ha="right" if len(variants) > 5 else "center")
        # Headroom for the numbers on the tallest bar (vertical labels need more).
        axes.set_ylim(0, top * (1.22 if vertical else 1.12))
        axes.set_xlim(-0.6, len(variants) - 0.4)
        axes.set_ylabel("frames per second (1000 / mean latency)")
        axes.set_xlabel("variant")
        axes.grid(axis="y", color="#dddddd", zorder=0)
        axes.spines[["top", "right"]].set_visible(False)
        handles, labels = axes.get_legend_handles_labels()
        order = [labels.index(e) for e in engine_names if e in labels]
        axes.legend([handles[i] for i in order], [labels[i] for i in order], loc="lower right",
                    bbox_to_anchor=(1.0, 1.01), frameon=False, ncols=len(order), fontsize=9, borderaxespad=0)
        axes.set_title(f"Throughput per variant and engine at {imgsz} px (higher is better)", loc="left", pad=22)
        axes.text(0.0, 1.02, _chart_subtitle(run, summary, imgsz), transform=axes.transAxes, fontsize=9,
                  color="#555555")
        figure.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.16)
        _save(figure, path)


def plot_latency_distribution(run: Run, rows: list[Row], path: Path, imgsz: int) -> None:
    """One box per cell at ``imgsz`` from its stored samples (all sessions): median, quartiles, whiskers at
    the 1st and 99th percentile, the rest as dots; log scale, so 5 ms and 500 ms cells both read."""
    summary = machine_summary(run)
    rows = sorted(rows_at(rows, imgsz), key=lambda r: _order_key(r))
    with _rc():
        figure = _figure((FPS_FIGSIZE[0], max(3.0, 0.28 * len(rows) + 1.4)))
        axes = figure.add_subplot(1, 1, 1)
        data = [list(r.cell.latency.samples_ms) for r in rows]
        boxes = axes.boxplot(data, vert=False, whis=(1, 99), widths=0.6, patch_artist=True,
                             flierprops={"markersize": 2, "alpha": 0.4})
        for patch, row in zip(boxes["boxes"], rows):
            patch.set_facecolor(_engine_color(row.engine))
            patch.set_alpha(0.75)
        axes.set_yticks(range(1, len(rows) + 1), [r.name for r in rows], fontsize=8)
        axes.invert_yaxis()
        axes.set_xscale("log")
        axes.set_xlabel("latency per call, ms (log scale; box: quartiles, whiskers: p1 and p99)")
        axes.grid(axis="x", color="#dddddd", which="both", zorder=0)
        axes.spines[["top", "right"]].set_visible(False)
        axes.set_title(f"Latency distribution per cell at {imgsz} px (lower is better)", loc="left", pad=22)
        axes.text(0.0, 1.01, _chart_subtitle(run, summary, imgsz), transform=axes.transAxes, fontsize=9,
                  color="#555555")
        figure.tight_layout()
        _save(figure, path)


def distribution_name(sizes: list[int], imgsz: int) -> str:
    return "latency.png" if len(sizes) == 1 else f"latency-{imgsz}.png"


# --- against a baseline --------------------------------------------------------------------------------


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
        table.append([name, fmt_ms(_stored_latency(base, "p50")) if base else MISSING,
                      fmt_ms(_stored_latency(current.cells[name], "p50")) if name in current.cells else MISSING,
                      fmt_ratio(latency.ratio) if latency and latency.ratio is not None else MISSING,
                      latency.limit if latency else MISSING, f"**{verdict}**" if verdict == gate.FAIL else verdict,
                      "; ".join(others)])
    failed = sorted({c.cell for c in checks if c.failed})
    lines = ["## Against the baseline", "",
             f"Baseline `{display_path(baseline.path)}` (commit {baseline.commit_id[:12]}, "
             f"{baseline.cpu_generation or 'CPU generation not recorded'}), thresholds "
             f"`{display_path(thresholds.path) if thresholds_path else 'built-in defaults'}`: "
             + (f"**gate FAILS** on {', '.join(failed)}." if failed else "the gate passes.")
             + " Ratio = this run / baseline (the gate's latency rule, `yolobench gate`; above 1 is slower).", "",
             markdown_table(header, table, numeric_from=1, numeric_to=4), ""]
    return lines


# Label placement: candidate spots around a point at growing distances (display pixels) in 8 directions;
# the first spot that overlaps nothing wins, else the least-overlapping one. Far spots get a leader line.
LABEL_RADII_PX = (6, 16, 30, 46, 64, 84)
LABEL_DIRECTIONS = tuple(range(0, 360, 45))
LABEL_FONT_SIZE = 8
LEADER_LINE_MIN_PX = 12
# A chart's x axis turns logarithmic when the FPS spread is this wide: a 20x speedup beside the
# baseline would otherwise squeeze every slow cell into the left edge.
LOG_AXIS_MIN_RATIO = 4.0


def _overlap_area(box, others) -> float:
    total = 0.0
    for o in others:
        w = min(box[2], o[2]) - max(box[0], o[0])
        h = min(box[3], o[3]) - max(box[1], o[1])
        if w > 0 and h > 0:
            total += w * h
    return total


def _place_labels(figure, axes, points: list[tuple[float, float, str]], marker_px: float = 10.0,
                  ringed: Iterable[int] = (), ring_px: float = 26.0) -> None:
    """Label each point where its text overlaps no other label, point or the axes' edge (greedy).

    ``ringed``: indices of points drawn with a ring around them (a bigger obstacle)."""
    renderer = figure.canvas.get_renderer()
    frame = axes.get_window_extent(renderer)
    px_per_pt = figure.dpi / 72.0
    centres = [tuple(axes.transData.transform((x, y))) for x, y, _ in points]
    ringed = set(ringed)
    half = [(ring_px if i in ringed else marker_px) / 2 for i in range(len(points))]
    markers = [(cx - r, cy - r, cx + r, cy + r) for (cx, cy), r in zip(centres, half)]
    sizes = []
    for _, _, text in points:
        probe = axes.text(0, 0, text, fontsize=LABEL_FONT_SIZE)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        sizes.append((extent.width, extent.height))
    placed: list[tuple[float, float, float, float]] = []
    # Crowded points first: they have the fewest good spots.
    crowding = [sum(1 for o in centres if math.dist(c, o) < 60) for c in centres]
    for index in sorted(range(len(points)), key=lambda i: (-crowding[i], points[i][0])):
        (cx, cy), (w, h) = centres[index], sizes[index]
        own_ring = [markers[index]] if index in ringed else []  # a ringed point's label goes outside its ring
        others = markers[:index] + markers[index + 1:] + own_ring
        best = None
        for radius in LABEL_RADII_PX:
            for angle in LABEL_DIRECTIONS:
                dx, dy = radius * math.cos(math.radians(angle)), radius * math.sin(math.radians(angle))
                ha = "left" if dx > 1 else "right" if dx < -1 else "center"
                va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
                x0 = cx + dx - {"left": 0, "right": w, "center": w / 2}[ha]
                y0 = cy + dy - {"bottom": 0, "top": h, "center": h / 2}[va]
                box = (x0 - 1, y0 - 1, x0 + w + 1, y0 + h + 1)
                outside = (max(frame.x0 - box[0], 0) + max(box[2] - frame.x1, 0)
                           + max(frame.y0 - box[1], 0) + max(box[3] - frame.y1, 0)) * 1000
                cost = _overlap_area(box, placed) + _overlap_area(box, others) + outside + radius * 0.01
                if best is None or cost < best[0]:
                    best = (cost, dx, dy, ha, va, box)
            if best[0] < 1:  # nothing overlapped at this distance: do not look further out
                break
        _, dx, dy, ha, va, box = best
        leader = math.hypot(dx, dy) >= LEADER_LINE_MIN_PX
        x, y, text = points[index]
        axes.annotate(text, (x, y), xytext=(dx / px_per_pt, dy / px_per_pt), textcoords="offset points", ha=ha,
                      va=va, fontsize=LABEL_FONT_SIZE, zorder=5,
                      arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.6, "shrinkA": 0, "shrinkB": 4}
                      if leader else None)
        placed.append(box)


def plot_tradeoff(run: Run, rows: list[Row], path: Path, imgsz: int, highlight: Row | None = None) -> None:
    """mAP@0.5 against FPS at ``imgsz``, one labelled point per cell; the fastest within one point of dense
    circled."""
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    summary = machine_summary(run)
    rows = rows_at(rows, imgsz)
    with_map = [r for r in rows if r.map50 is not None]
    variants = variants_of(run, imgsz)
    colors = matplotlib.colormaps["tab10"]

    def color_of(variant: str):
        return colors(variants.index(variant) % 10)

    with _rc():
        figure = _figure(TRADEOFF_FIGSIZE)
        axes = figure.add_subplot(1, 1, 1)
        figure.subplots_adjust(left=0.08, right=0.78, top=0.88, bottom=0.1)
        for row in with_map:
            axes.scatter([row.fps], [row.map50], s=55, marker=_engine_marker(row.cell.engine),
                         color=color_of(row.cell.variant), edgecolor="black", linewidth=0.5, zorder=4)
        shown_highlight = highlight is not None and highlight.map50 is not None
        if shown_highlight:
            axes.scatter([highlight.fps], [highlight.map50], s=300, facecolor="none", edgecolor="#2ca02c",
                         linewidth=2, zorder=3)
        if with_map:
            fps = [r.fps for r in with_map]
            maps = [r.map50 for r in with_map]
            if max(fps) / min(fps) >= LOG_AXIS_MIN_RATIO:
                axes.set_xscale("log")
                axes.set_xlim(min(fps) / 1.35, max(fps) * 1.6)
                lo, hi = axes.get_xlim()
                ticks = [m * 10 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                         for m in (1, 2, 5) if lo <= m * 10 ** k <= hi]
                axes.xaxis.set_major_locator(FixedLocator(ticks))
                axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                axes.xaxis.set_minor_formatter(NullFormatter())
                axes.set_xlabel("frames per second, log scale (higher is better)")
            else:
                axes.set_xlim(0, max(fps) * 1.3)  # room on the right for the fastest points' labels
                axes.set_xlabel("frames per second (higher is better)")
            span = max(max(maps) - min(maps), 0.02)
            axes.set_ylim(max(0.0, min(maps) - 0.2 * span), min(1.0, max(maps) + 0.2 * span) + 1e-3)
        else:
            axes.text(0.5, 0.5, "no cell of this run recorded mAP@0.5", transform=axes.transAxes, ha="center")
            axes.set_xlabel("frames per second (higher is better)")
        axes.set_ylabel("mAP@0.5 (higher is better)")
        axes.grid(color="#e5e5e5", which="major", zorder=0)
        axes.spines[["top", "right"]].set_visible(False)
        axes.set_title(f"Accuracy vs speed at {imgsz} px: one point per variant x engine", loc="left", pad=22)
        axes.text(0.0, 1.02, _chart_subtitle(run, summary, imgsz), transform=axes.transAxes, fontsize=9,
                  color="#555555")

        # Legends beside the plot (never over a point): engines by marker, variants by colour.
        engine_handles = [Line2D([], [], marker=_engine_marker(e), linestyle="", color="#999999",
                                 markeredgecolor="black", markersize=8, label=e)
                          for e in sorted({r.engine for r in rows}, key=_engine_rank)]
        if shown_highlight:
            engine_handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none",
                                         markeredgecolor="#2ca02c", markeredgewidth=2, markersize=13,
                                         label="fastest within\n1 point of dense"))
        first = axes.legend(handles=engine_handles, title="engine", loc="upper left", bbox_to_anchor=(1.02, 1.0),
                            frameon=False, fontsize=9, alignment="left")
        axes.add_artist(first)
        variant_handles = [Line2D([], [], marker="o", linestyle="", color=color_of(v), markeredgecolor="black",
                                  markersize=8, label=v) for v in variants]
        axes.legend(handles=variant_handles, title="variant", loc="lower left", bbox_to_anchor=(1.02, 0.0),
                    frameon=False, fontsize=9, alignment="left")
        missing = [r.name for r in rows if r.map50 is None]
        if missing:
            figure.text(0.01, 0.01, "no mAP recorded: " + ", ".join(missing), fontsize=8, color="#555555")
        # The title names the size: each point is labelled by variant and engine.
        _place_labels(figure, axes, [(r.fps, r.map50, f"{r.variant}-{r.engine}") for r in with_map],
                      ringed=[k for k, r in enumerate(with_map) if shown_highlight and r.name == highlight.name])
        _save(figure, path)


# --- detections --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleImage:
    label: str  # the caption: where the image comes from
    image: np.ndarray
    truth: tuple[np.ndarray, np.ndarray] | None = None  # labelled (xyxy boxes in image pixels, class ids)


# ultralytics' two photos (a bus, people) only say something to a model that knows these classes.
COCO_PHOTO_CLASSES = {"person", "bus"}
VALIDATION_SAMPLES = 2  # validation images per sheet, each with its ground truth


def sample_images(data_yaml: str | os.PathLike | None, names: Mapping[int, str] | None = None) -> list[SampleImage]:
    """The first ``VALIDATION_SAMPLES`` validation images of ``data_yaml`` (the set the artifact was judged
    on, as its meta names it) with their labels; ultralytics' two photos only when the model's classes
    include theirs (on the built-in shapes they would show nothing, or false positives)."""
    from yolobench.evaluate import validation_set
    from yolobench.processing import default_images, load_images

    if data_yaml is None:  # a model file run without --data: no labelled images, ultralytics' photos only
        return [SampleImage(path.name, image) for path, image in load_images(default_images())]
    images, labels, _ = validation_set(data_yaml)
    if not images:
        raise UserError(f"{data_yaml}: the validation split has no images to draw detections on")
    samples = [SampleImage(f"validation: {path.name}", load_images(path)[0][1], truth=label)
               for path, label in list(zip(images, labels))[:VALIDATION_SAMPLES]]
    if names and COCO_PHOTO_CLASSES <= {str(n) for n in names.values()}:
        samples += [SampleImage(path.name, image) for path, image in load_images(default_images())]
    return samples


def _truth_panel(sample: SampleImage, names, height: int):
    from yolobench import draw
    from yolobench.processing import Detections

    boxes, classes = sample.truth
    truth = Detections(boxes, np.ones(len(classes)), classes)
    shown, factor = draw.resize_to_height(sample.image, height)
    return (draw.draw_detections(shown, draw.scale_detections(truth, factor), names),
            f"ground truth: {len(classes)} objects")


def detection_sheet(detectors: Sequence, samples: list[SampleImage],
                    height: int = DETECTION_PANEL_HEIGHT) -> tuple[np.ndarray, dict[str, list[int]]]:
    """One row per sample image: its ground truth (where labelled), then the same image on every engine;
    and per engine the detection count of each image. Engines that agree draw the same boxes."""
    from yolobench import draw

    rows, counts = [], {d.engine: [] for d in detectors}
    names = detectors[0].names
    for sample in samples:
        panels = [_truth_panel(sample, names, height)] if sample.truth is not None else []
        for detector in detectors:
            detections, _ = detector.detect(sample.image)
            shown, factor = draw.resize_to_height(sample.image, height)
            panels.append((draw.draw_detections(shown, draw.scale_detections(detections, factor), detector.names),
                           f"{detector.engine} ({detector.form}): {len(detections)} detections"))
            counts[detector.engine].append(len(detections))
        rows.append(draw.contact_sheet(panels, sample.label))
    first = detectors[0]
    title = (f"{first.variant}: the same images on every engine ({first.imgsz} px input, conf {first.conf:g}); "
             "leftmost: the labels")
    width = max(r.shape[1] for r in rows)
    padded = [np.hstack([r, np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)]) if r.shape[1] < width
              else r for r in rows]
    return np.vstack([draw.caption_strip(width, title, height=44, scale=0.75), *padded]), counts


@dataclass(frozen=True)
class DetectionResult:
    variant: str
    image: Path | None  # relative to the report folder; None when skipped
    note: str
    not_built: bool = False


def _detection_imgsz(run: Run, variant: str, artifact) -> int | None:
    sizes = sorted({c.imgsz for c in run.cells.values() if c.variant == variant})
    return next((s for s in sizes if s in artifact.export_sizes), None)


def draw_detections_for(run: Run, out_dir: Path, *, profile: str, data, store, engine: str | None,
                        say: Progress) -> list[DetectionResult]:
    """A detection sheet per variant, from the artifact the run's cells name (``artifact_key``) when the
    store has it, on every engine the run measured it on (or only ``engine``). The report reads: it never
    builds, and never recomputes a key to guess which artifact a run meant (that needs the recipes, the
    data and SparseML of today, not of the run)."""
    from yolobench import annotate

    store = store if store is not None else Store()
    results: list[DetectionResult] = []
    for variant in variants_of(run):
        keys = {c.extra.get("artifact_key") for c in run.cells.values() if c.variant == variant}
        measured = next(iter(keys)) if len(keys) == 1 and None not in keys else None
        artifact = store.get(variant, str(measured)) if measured else None
        if artifact is None:
            build = f"yolobench build --variants {variant} --profile {profile}" + (f" --data {data}" if data else "")
            why = (f"artifact {measured}, which this run measured, is not in {store.root}" if measured else
                   "the run does not record which artifact it measured")
            results.append(DetectionResult(variant, None, f"skipped: {why} (`{build}` builds the current one; "
                                                          "a new run then names it)", not_built=True))
            continue
        imgsz = _detection_imgsz(run, variant, artifact)
        wanted = [engine] if engine else [e for e in engines_of(run)
                                           if any(c.variant == variant and c.engine == e for c in run.cells.values())]
        detectors, skipped = [], []
        for name in wanted:
            say(f"drawing detections of {variant} on {name}")
            try:
                bench.preflight(artifact, name, threads=bench.default_threads(), imgsz=imgsz)
                detectors.append(annotate.Detector.load(artifact, name, imgsz=imgsz, conf=DETECTION_CONF))
            except (UserError, engines.EngineUnsupported) as err:
                skipped.append(f"{name}: {getattr(err, 'reason', err)}")
        if not detectors:
            results.append(DetectionResult(variant, None, "skipped: " + "; ".join(skipped)))
            continue
        try:
            samples = sample_images(artifact.eval_data_yaml(imgsz), detectors[0].names)
        except UserError as err:
            results.append(DetectionResult(variant, None, f"skipped: {err}"))
            continue
        sheet, counts = detection_sheet(detectors, samples)
        relative = Path("detections") / f"{variant}.png"
        _write_png(out_dir / relative, sheet)
        per_engine = "; ".join(f"{e} {', '.join(map(str, n))}" for e, n in counts.items())
        truths = ", ".join(str(len(s.truth[1])) for s in samples if s.truth is not None)
        note = (f"Artifact {artifact.key} (the one this run measured) at {imgsz} px, conf {DETECTION_CONF:g}; "
                f"labelled objects per image: {truths}; detections per image: {per_engine}.")
        if skipped:
            note += " Not drawn: " + "; ".join(skipped) + "."
        results.append(DetectionResult(variant, relative, note))
        detectors.clear()  # one variant's sessions at a time
    return results


# --- writing -----------------------------------------------------------------------------------------


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:  # pragma: no cover - a uint8 BGR image always encodes
        raise RuntimeError(f"cannot encode {path}")
    atomic_write_bytes(path, encoded.tobytes())


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
        lines[-1] += (f" This run ({summary.cpu_model}, threads {_join(summary.threads)}, {imgsz} px): the speedup "
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
                    fastest.engine if fastest else f"not in this run at {imgsz} px"]
        body.append([rung.label, _variant_label(rung.variant, run_variants), fmt_fps(rung.fps),
                     fmt_ratio(rung.speedup_vs_torch), *mine])
    return [*lines, "", markdown_table(header, body, numeric_from=2), ""]


def fastest_line(imgsz: int, best: Row | None) -> str:
    lead = f"fastest configuration within {MAP_POINTS_ALLOWED:g} point of dense mAP at {imgsz} px"
    if best is None:
        return (f"{lead}: n/a (no cell has an mAP@0.5 and a dense cell at {imgsz} px with one to compare "
                "against)")
    return (f"{lead}: {best.name} at {fmt_fps(best.fps)} FPS (mAP@0.5 {fmt_map(best.map50)}, "
            f"{fmt_points(best.map50_delta_points)} points vs {best.dense_cell})")


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
            table.append([cell_name(variant, engine, size), fmt_fps(single) if cell else MISSING,
                          fmt_fps(e2e.fps) if e2e else MISSING, fmt_ms(e2e.p50_ms) if e2e else MISSING,
                          fmt_ms(e2e.p99_ms) if e2e else MISSING,
                          f"{100 * overhead:.0f}" if overhead is not None else MISSING,
                          fmt_fps(tput.fps) if tput else MISSING, str(tput.extra.get("streams")) if tput else MISSING,
                          fmt_ratio(gain), f"{mem.peak_rss_mb:.0f}" if mem else MISSING])
        lines += [f"### {imgsz} px", "", markdown_table(header, table, numeric_from=1, numeric_to=len(header)), ""]
    return lines


# --- the machine's limit and the per-layer profiles: measured by `yolobench peak` / `profile`, read here ---

def measurements_dir(kind: str) -> Path:
    """Where committed measurements of a kind live: results/peak, results/profiles."""
    return paths.repo_root() / "results" / kind


def auto_peak(run: Run) -> Path:
    """results/peak/<cpu generation>.json: the peak is the machine's, the same for every profile."""
    from yolobench.timer import generation_slug

    return measurements_dir("peak") / f"{generation_slug(run.cpu_generation or 'unknown')}.json"


def auto_profiles(run: Run, profile: str) -> list[Path]:
    """results/profiles/<profile>-<cpu generation>*.md, sorted."""
    from yolobench.timer import generation_slug

    prefix = f"{profile}-{generation_slug(run.cpu_generation or 'unknown')}"
    folder = measurements_dir("profiles")
    return sorted(folder.glob(f"{prefix}*.md")) if folder.is_dir() else []


def peak_section(run: Run, peak_file: Path | None, store, chart: Path) -> list[str]:
    """The machine's peak (read from ``yolobench peak --out`` JSON) and each timed cell as a share of it,
    with a chart; or what to run where no measurement of this CPU generation exists."""
    from yolobench import peak as peak_module

    lines = ["## The machine's limit", ""]
    command = (f"`yolobench peak --run {display_path(run.path)} --out results/peak/"
               f"{auto_peak(run).stem}` on an idle machine")
    if peak_file is None or not Path(peak_file).is_file():
        return lines + [f"Not measured on this CPU generation ({run.cpu_generation or 'not recorded'}): {command}.", ""]
    data = json.loads(Path(peak_file).read_text())
    measured_on = data.get("cpu_generation")
    if measured_on != run.cpu_generation:
        return lines + [f"`{display_path(peak_file)}` was measured on {measured_on}, this run on "
                        f"{run.cpu_generation}: not comparable. {command}.", ""]
    peak = peak_module.Peak.from_dict(data)
    rows, skipped = peak_module.roofline_rows(run, store)
    plot_roofline(rows, peak, chart, machine_summary(run))
    lines += [f"From `{display_path(peak_file)}` ({measured_on}); the cells are this run's.", "",
              peak_module.format_peak(peak, rows).rstrip(), "",
              f"![each cell's effective throughput against the machine's peak]({chart.name})", ""]
    lines += [f"- not shown: {why}" for why in skipped]
    return lines + ([""] if skipped else [])


def plot_roofline(rows, peak, path: Path, summary) -> None:
    """Each cell's effective dense-equivalent GMAC/s (bars), the machine's float and INT8 peaks (lines)."""
    rows = sorted(rows, key=lambda r: r.macs * r.fps)
    with _rc():
        figure = _figure((9, max(3.0, 0.28 * len(rows) + 1.5)))
        axes = figure.add_subplot(1, 1, 1)
        values = [r.macs * r.fps / 1e9 for r in rows]
        colors = [_engine_color(split_cell_name(r.cell)[1]) for r in rows]
        axes.barh([r.cell for r in rows], values, color=colors, zorder=3)
        for label, value, style in (("float peak", peak.float_, "--"), ("INT8 peak", peak.int8, "-")):
            if value:
                axes.axvline(value / 1e9, color="#333333", linestyle=style, linewidth=1, zorder=4)
                axes.text(value / 1e9, len(rows) - 0.5, f" {label} {value / 1e9:.0f}", fontsize=8, va="top")
        axes.set_xlabel("effective dense-equivalent GMAC/s (model MACs x FPS)")
        axes.tick_params(axis="y", labelsize=7)
        axes.set_title(f"Cells against the machine's peak ({summary.generation or 'CPU'})", fontsize=10)
        figure.tight_layout()
        figure.savefig(path)


def profiles_section(run: Run, profile_files: list[Path], profile: str) -> list[str]:
    """The committed per-layer profiles (``yolobench profile --out``), verbatim, each under its file name."""
    lines = ["## Where the time goes: per-layer profiles", ""]
    if not profile_files:
        from yolobench.timer import generation_slug

        name = f"{profile}-{generation_slug(run.cpu_generation or 'unknown')}-CELL.md"
        return lines + [f"None committed for profile {profile} on {run.cpu_generation or 'this CPU'}: e.g. "
                        f"`yolobench profile --profile {profile} --variant pruned_quant --engine deepsparse --vs "
                        f"oneshot:openvino --out results/profiles/{name}` on an idle machine.", ""]
    for path in profile_files:
        lines += [f"### `{display_path(path)}`", "", Path(path).read_text().strip(), ""]
    return lines


def weights_line(run: Run) -> str | None:
    """The user's checkpoints a ladder of this run started from (``--weights``/``--source-weights``), by
    file name, network and digest; None for the catalogue's own models."""
    given: dict[str, tuple[str, str]] = {}
    for cell in run.cells.values():
        weights = cell.extra.get("weights")
        if isinstance(weights, Mapping) and isinstance(weights.get("sha256"), str):
            name = Path(str(weights.get("path") or "?")).name.replace("`", "")
            given.setdefault(weights["sha256"], (name, str(weights.get("family") or "?").replace("`", "")))
    if not given:
        return None
    files = _join(f"`{name}` ({family}, sha256 {sha[:12]})" for sha, (name, family) in sorted(given.items()))
    return (f"Your model: {files}; the ladder starts from it (dense as given, or source_pq for transfer) and "
            "the rungs below derive from it")


def render_markdown(run: Run, rows: list[Row], *, detections: list[DetectionResult] | None,
                    detections_note: str = "", untimed: list[Untimed] | None = None,
                    baseline_lines: list[str] | None = None, machine_lines: list[str] | None = None) -> str:
    summary = machine_summary(run)
    source = display_path(run.path)
    untimed = untimed_cells(run) if untimed is None else untimed
    sizes = sizes_of(run)
    charts = chart_names(sizes)
    counted = f"{len(rows)} cells" + (f", {len(untimed)} not timed by design" if untimed else "")
    lines = [
        "# yolobench report",
        "",
        f"Run file: `{source}` (every number below is copied from its `benchmarks[].extra_info`, rounded for display)",
        "",
        f"- {machine_line(summary)}",
        f"- Library versions: {_join(f'{k} {v}' for k, v in summary.versions.items()) or 'not recorded'}"
        + (f"; Python {summary.python}" if summary.python else ""),
        f"- Date: {run.datetime or 'not recorded'}",
        *([f"- {line}"] if (line := weights_line(run)) else []),
        f"- {commit_line(run)}",
        f"- Batch {_join(summary.batch)}, input {_join(sizes)} px (a table per size), {counted}",
        "",
    ]
    lines += [fastest_line(imgsz, best) for imgsz, best in fastest_per_size(rows).items()]
    lines.append("")
    for imgsz in sizes:
        fps_name, tradeoff_name = charts[imgsz]
        lines += [f"## {imgsz} px", "", size_table(run, rows, untimed, imgsz), ""]
        footnotes = table_footnotes(rows, untimed, imgsz)
        if footnotes:
            lines += [*footnotes, ""] if len(footnotes) == 1 else [*(f"- {n}" for n in footnotes), ""]
        lines += [f"![FPS per variant and engine at {imgsz} px]({fps_name})", "",
                  f"![mAP@0.5 vs FPS at {imgsz} px]({tradeoff_name})", "",
                  f"![latency distribution per cell at {imgsz} px]({distribution_name(sizes, imgsz)})", ""]
    lines += baseline_lines or []
    lines += scenario_section(run)
    lines += machine_lines or []
    missing_torch = [torch_baseline_name(s) for s in sizes if torch_baseline_name(s) not in run.cells]
    lines += [
        "## How to read the tables",
        "",
        "- FPS = 1000 / mean latency (`fps`); p50, p90, p99 = `latency_ms.p50`, `.p90`, `.p99` (batch 1, one stream); "
        "the distribution of every cell's samples is drawn under each size's table.",
        "- speedup vs dense-torch-<size> = its fastest `session_p50_ms` / the cell's fastest `session_p50_ms` "
        "(`latency_ms.p50` where a run recorded no sessions), at the same size: the rule of the run's own speedups, "
        "robust to a slow phase of the machine that hit some sessions"
        + (f"; n/a: this run has no {_join(missing_torch)} cell." if missing_torch else "."),
        "- speedup vs dense-onnxruntime-<size> = `speedup_vs_reference` as recorded in the run (same rule, measured "
        "in the same run against the reference at the same size"
        + ("; a run of model files, `yolobench bench --model`, names its own reference: the first file on ONNX "
           "Runtime)." if any(c.extra.get("model_file") for c in run.cells.values()) else ")."),
        "- mAP@0.5, mAP@0.5:0.95 = `map50`, `map50_95`: the artifact's accuracy at the table's size. "
        "ΔmAP@0.5 = (cell `map50` - dense `map50`) x 100, in points, against dense on the same engine at the same "
        "size (a note names the dense cell when it is another one).",
        "- sparsity = `sparsity` (fraction of zero weights) in %.",
        "- size MB = `model_size_bytes` / 10^6: the file the engine loads (`file`, from the cell's session): "
        "`weights.pt` on PyTorch; for a quantized variant the converted INT8 ONNX on DeepSparse and the QDQ ONNX "
        "on ONNX Runtime and OpenVINO; the FP32 ONNX otherwise (a note says where a cell loaded another one).",
        f"- gzip MB = that file after gzip at level {GZIP_LEVEL} / 10^6 (what the blog's source publishes: sparse "
        "weights compress), computed from the artifact's file in the store, found by the cell's `artifact_key` "
        f"({MISSING}{NO_COMPRESSED_MARK} where the store does not have it).",
        f"- {UNTIMED_TEXT}{UNTIMED_MARK}: a cell the matrix does not time by design; the reason is under the table.",
        "",
    ]
    lines += blog_section(run, rows)
    lines += ["## Detections", ""]
    if detections is None:
        lines.append(detections_note or "Not drawn.")
    else:
        lines.append(detections_note)
        lines.append("")
        for result in detections:
            if result.image is not None:
                lines += [f"### {result.variant}", "", result.note, "",
                          f"![{result.variant} detections]({result.image.as_posix()})", ""]
            else:
                lines += [f"### {result.variant}", "", result.note, ""]
    return "\n".join(lines).rstrip() + "\n"


# --- entry point -------------------------------------------------------------------------------------


def default_runs_dir() -> Path:
    return paths.repo_root() / "results" / "runs"


def default_out_dir() -> Path:
    return paths.repo_root() / "results" / "report"


def newest_run(folder: Path | None = None) -> Path:
    """The newest ``*.json`` in ``results/runs`` (by modification time, then name: a fresh clone has equal times)."""
    folder = default_runs_dir() if folder is None else Path(folder)
    runs = [p for p in folder.glob("*.json") if p.is_file()] if folder.is_dir() else []
    if not runs:
        raise UserError(f"no run files in {folder}: pass --run RUN.json (written by `pytest --benchmark-only "
                        "--benchmark-json=RUN.json`)")
    return max(runs, key=lambda p: (p.stat().st_mtime, p.name))


def infer_profile(run: Run) -> str:
    """The build profile of a run: recorded in its cells, else the one whose export sizes match, else smoke."""
    recorded = {str(c.extra["profile"]) for c in run.cells.values() if c.extra.get("profile")}
    if len(recorded) == 1:
        return recorded.pop()
    sizes = {c.imgsz for c in run.cells.values()}
    matching = [name for name, p in catalogue.PROFILES.items() if sizes <= set(p.export_imgsz)]
    return matching[0] if len(matching) == 1 else "smoke"


@dataclass(frozen=True)
class Report:
    run: Run
    out_dir: Path
    markdown: Path
    fps_chart: Path  # the first (largest) size's; every size's in fps_charts
    tradeoff_chart: Path
    rows: list[Row]
    detections: list[DetectionResult] | None
    profile: str
    fps_charts: dict[int, Path] = field(default_factory=dict)
    tradeoff_charts: dict[int, Path] = field(default_factory=dict)
    untimed: list[Untimed] = field(default_factory=list)
    distribution_charts: dict[int, Path] = field(default_factory=dict)

    @property
    def charts(self) -> list[Path]:
        return [p for imgsz in self.fps_charts for p in (self.fps_charts[imgsz], self.tradeoff_charts[imgsz],
                                                         self.distribution_charts.get(imgsz)) if p is not None]


def write_report(run_path: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None, *,
                 profile: str | None = None, data: str | os.PathLike | None = None, store=None,
                 detections: bool = True, engine: str | None = None,
                 progress: Progress | None = None, baseline: str | os.PathLike | None = None,
                 thresholds: str | os.PathLike | None = None, peak: str | os.PathLike | None = None,
                 profiles: Sequence[str | os.PathLike] | None = None) -> Report:
    """``peak``: a ``yolobench peak --out`` JSON or "auto" (results/peak/<generation>.json); ``profiles``:
    ``yolobench profile --out`` markdown files or ["auto"] (results/profiles/<profile>-<generation>*.md).
    Neither is measured here: the report reads what was measured and says what to run where nothing was."""
    say = progress or (lambda message: None)
    if detections and engine:
        engines.get(engine)  # an unknown engine is a usage error, found before anything is written
    run = load_run(run_path if run_path is not None else newest_run())
    if profile is None:
        profile = infer_profile(run)
    catalogue.get_profile(profile)
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    store = store if store is not None else Store()
    rows = build_rows(run, deployed_files(run, store, say))
    untimed = untimed_cells(run)
    say(f"{run.path}: {len(rows)} cells" + (f", {len(untimed)} not timed by design" if untimed else ""))

    fps_charts, tradeoff_charts, distribution_charts = {}, {}, {}
    for imgsz, (fps_name, tradeoff_name) in chart_names(sizes_of(run)).items():
        fps_charts[imgsz], tradeoff_charts[imgsz] = out / fps_name, out / tradeoff_name
        plot_fps(run, rows, fps_charts[imgsz], imgsz, untimed)
        plot_tradeoff(run, rows, tradeoff_charts[imgsz], imgsz, fastest_within_dense(rows_at(rows, imgsz)))
        distribution_charts[imgsz] = out / distribution_name(sizes_of(run), imgsz)
        plot_latency_distribution(run, rows, distribution_charts[imgsz], imgsz)
    baseline_lines = None
    if baseline is not None:
        baseline_lines = baseline_section(run, load_run(baseline), Path(thresholds) if thresholds else None)

    drawn = None
    if detections:
        drawn = draw_detections_for(run, out, profile=profile, data=data, store=store, engine=engine, say=say)
        on = f"on {engine}" if engine else "on every engine the run measured it on"
        note = (f"Each variant's detections {on} (profile {profile}, conf {DETECTION_CONF:g}): the first "
                f"{VALIDATION_SAMPLES} validation images of its dataset, each row starting with the labels (ground "
                "truth), then the same image on each engine: engines that agree draw the same boxes. ultralytics' "
                "street photos are added only for a model whose classes include theirs. The boxes show what the "
                "model finds, not how fast it is.")
    else:
        note = "Not drawn (--no-detections)."
    machine_lines = []
    if peak is not None:
        peak_file = auto_peak(run) if str(peak) == "auto" else Path(peak)
        machine_lines += peak_section(run, peak_file, store, out / "roofline.png")
    if profiles is not None:
        files = auto_profiles(run, profile) if [str(p) for p in profiles] == ["auto"] else [Path(p) for p in profiles]
        machine_lines += profiles_section(run, files, profile)
    text = render_markdown(run, rows, detections=drawn, detections_note=note, untimed=untimed,
                           baseline_lines=baseline_lines, machine_lines=machine_lines)
    markdown = out / "report.md"
    atomic_write_text(markdown, text)
    first = sizes_of(run)[0]
    return Report(run=run, out_dir=out, markdown=markdown, fps_chart=fps_charts[first],
                  tradeoff_chart=tradeoff_charts[first], rows=rows, detections=drawn, profile=profile,
                  fps_charts=fps_charts, tradeoff_charts=tradeoff_charts, untimed=untimed,
                  distribution_charts=distribution_charts)


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
