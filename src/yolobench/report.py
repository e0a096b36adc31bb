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
  built artifact on one engine (skipped with a note when the variant is not built).

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

import math
import os
import sys
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from yolobench import bench, blog, catalogue, engines, paths
from yolobench.errors import UserError
from yolobench.runfile import Cell, Run, cell_name, load_run, reference_cell_name, speedup_of_fastest
from yolobench.store import FORM_FP32, FORMS, WEIGHTS_NAME, onnx_filename

DENSE_VARIANT = catalogue.REFERENCE_VARIANT
TORCH_ENGINE = "torch"  # dense on PyTorch at each size is the blog's "PyTorch dense" baseline
# "Within 1 point of dense": mAP@0.5 no more than 0.01 below dense's (the blog's recovery criterion).
MAP_POINTS_ALLOWED = 1.0
POINTS_PER_UNIT = 100.0  # mAP 0.412 = 41.2 points
FLOAT_SLACK = 1e-9  # so that a drop of exactly 1.0 point, stored as 0.402 vs 0.412, still qualifies
DEFAULT_DETECTION_ENGINE = "onnxruntime"
DETECTION_PANEL_HEIGHT = 360  # px: every sample image is shown at this height, boxes drawn at that scale
DETECTION_CONF = 0.25
ENGINE_ORDER = ("torch", "onnxruntime", "deepsparse", "openvino")

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
ENGINE_COLORS = {"torch": "#ee4c2c", "onnxruntime": "#4a4a4a", "deepsparse": "#1f77b4", "openvino": "#6a3d9a"}
ENGINE_MARKERS = {"torch": "o", "onnxruntime": "s", "deepsparse": "D", "openvino": "^"}

Progress = Callable[[str], None]


def torch_baseline_name(imgsz: int) -> str:
    """The blog's "PyTorch dense" baseline at ``imgsz``: ``dense-torch-640``."""
    return cell_name(DENSE_VARIANT, TORCH_ENGINE, imgsz)


# --- the table ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One cell's numbers as the report shows them: copied from the run file, two documented ratios."""

    cell: Cell
    fps: float
    p50_ms: float
    p90_ms: float
    speedup_vs_torch: float | None  # dense-torch's fastest session median / this cell's (None without dense-torch)
    speedup_vs_reference: float | None  # extra_info.speedup_vs_reference, as stored
    map50: float | None
    map50_delta_points: float | None  # (map50 - dense's map50) * 100
    dense_cell: str | None  # the dense cell the delta is taken against
    sparsity: float | None
    model_size_bytes: int | None
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.cell.name


def _stored_latency(cell: Cell, key: str) -> float:
    return float(cell.extra["latency_ms"][key])


def _order_key(cell: Cell) -> tuple:
    variants = list(catalogue.VARIANT_NAMES)
    variant_rank = variants.index(cell.variant) if cell.variant in variants else len(variants)
    engine_rank = ENGINE_ORDER.index(cell.engine) if cell.engine in ENGINE_ORDER else len(ENGINE_ORDER)
    return variant_rank, cell.variant, engine_rank, cell.engine


def ordered_cells(run: Run) -> list[Cell]:
    """Cells in catalogue order of variants, then engine order (unknown ones after, by name)."""
    return sorted(run.cells.values(), key=_order_key)


def variants_of(run: Run) -> list[str]:
    seen: list[str] = []
    for cell in ordered_cells(run):
        if cell.variant not in seen:
            seen.append(cell.variant)
    return seen


def engines_of(run: Run) -> list[str]:
    return sorted({c.engine for c in run.cells.values()},
                  key=lambda e: (ENGINE_ORDER.index(e) if e in ENGINE_ORDER else len(ENGINE_ORDER), e))


def dense_cell_for(run: Run, cell: Cell) -> Cell | None:
    """The dense cell a cell's mAP is compared with: dense on the same engine (same numerics), else the
    reference cell, else dense on PyTorch, else any dense cell; only cells that recorded an mAP."""
    candidates = [cell_name(DENSE_VARIANT, cell.engine), cell.reference_cell or REFERENCE_CELL, TORCH_BASELINE_CELL]
    candidates += sorted(n for n, c in run.cells.items() if c.variant == DENSE_VARIANT)
    for name in candidates:
        dense = run.cells.get(name)
        if dense is not None and dense.variant == DENSE_VARIANT and dense.map50 is not None:
            return dense
    return None


def _speedup_over(baseline: Cell | None, cell: Cell) -> float | None:
    """baseline's fastest session median / the cell's (``runfile.speedup_of_fastest``, the rule of
    ``speedup_vs_reference``); each cell's p50 where a run file recorded no sessions."""
    if baseline is None:
        return None
    return speedup_of_fastest(cell.latency, list(baseline.latency.session_p50s_ms() or (baseline.latency.p50_ms,)))


def build_rows(run: Run) -> list[Row]:
    torch_dense = run.cells.get(TORCH_BASELINE_CELL)
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
        rows.append(Row(
            cell=cell,
            fps=float(cell.extra["fps"]),
            p50_ms=p50,
            p90_ms=_stored_latency(cell, "p90"),
            speedup_vs_torch=_speedup_over(torch_dense, cell),
            speedup_vs_reference=cell.speedup_vs_reference,
            map50=cell.map50,
            map50_delta_points=delta,
            dense_cell=dense.name if dense is not None else None,
            sparsity=cell.sparsity,
            model_size_bytes=cell.model_size_bytes,
            notes=tuple(notes),
        ))
    return rows


def fastest_within_dense(rows: Iterable[Row], points: float = MAP_POINTS_ALLOWED) -> Row | None:
    """The highest-FPS row whose mAP@0.5 is at most ``points`` below dense's (dense rows included)."""
    eligible = [r for r in rows if r.map50_delta_points is not None
                and r.map50_delta_points >= -points - FLOAT_SLACK]
    return max(eligible, key=lambda r: r.fps, default=None)


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


def table_row(row: Row) -> list[str]:
    return [row.name, row.cell.variant, row.cell.engine, fmt_fps(row.fps), fmt_ms(row.p50_ms), fmt_ms(row.p90_ms),
            fmt_ratio(row.speedup_vs_torch), fmt_ratio(row.speedup_vs_reference), fmt_map(row.map50),
            fmt_points(row.map50_delta_points), fmt_sparsity(row.sparsity), fmt_size(row.model_size_bytes),
            "; ".join(row.notes)]


def _reference_name(run: Run) -> str:
    names = sorted({c.reference_cell for c in run.cells.values() if c.reference_cell})
    return ", ".join(names) if names else REFERENCE_CELL


def table_header(run: Run) -> list[str]:
    return ["cell", "variant", "engine", "FPS", "p50 ms", "p90 ms", f"speedup vs {TORCH_BASELINE_CELL}",
            f"speedup vs {_reference_name(run)}", "mAP@0.5", "ΔmAP@0.5 vs dense (points)", "sparsity",
            "size MB", "notes"]


def markdown_table(header: list[str], rows: list[list[str]], numeric_from: int = 3, numeric_to: int = -1) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    last = len(header) + numeric_to if numeric_to < 0 else numeric_to
    align = ["---:" if numeric_from <= i < last else ":---" for i in range(len(header))]
    return "\n".join([line(header), "|" + "|".join(align) + "|", *(line(r) for r in rows)])


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
                          versions=versions)


def _join(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def machine_line(summary: MachineSummary) -> str:
    cores = f"{summary.logical_cores if summary.logical_cores is not None else '?'} cores"
    if summary.usable_cores is not None and summary.usable_cores != summary.logical_cores:
        cores += f" ({summary.usable_cores} usable)"
    line = f"Machine: {summary.cpu_model}, {cores}, threads {_join(summary.threads)}"
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
    _atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=CHART_DPI, format="png",
                                                    metadata={"Software": None}))


def _chart_subtitle(run: Run, summary: MachineSummary) -> str:
    return (f"{summary.cpu_model}, threads {_join(summary.threads)}, batch {_join(summary.batch)}, "
            f"{_join(summary.imgsz)} px  |  {Path(run.path).name}")


def plot_fps(run: Run, rows: list[Row], path: Path) -> None:
    """Grouped bars: one group per variant, one bar per engine, the FPS written on each bar."""
    summary = machine_summary(run)
    variants, engines = variants_of(run), engines_of(run)
    by_cell = {r.name: r for r in rows}
    with _rc():
        figure = _figure(FPS_FIGSIZE)
        axes = figure.add_subplot(1, 1, 1)
        # Each group shows only the engines it has, centred: a missing cell leaves no hole.
        per_group = {v: [e for e in engines if cell_name(v, e) in by_cell] for v in variants}
        width = 0.8 / max(len(e) for e in per_group.values())
        bars = len(rows)
        vertical = bars > 12  # horizontal numbers over many narrow bars would run into each other
        value_size = 9 if not vertical else 8
        top = max(r.fps for r in rows)
        labelled: set[str] = set()
        for i, variant in enumerate(variants):
            present = per_group[variant]
            for k, engine in enumerate(present):
                row = by_cell[cell_name(variant, engine)]
                x = i + (k - (len(present) - 1) / 2) * width
                drawn = axes.bar([x], [row.fps], width * 0.92, color=ENGINE_COLORS.get(engine), edgecolor="white",
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
        order = [labels.index(e) for e in engines if e in labels]
        axes.legend([handles[i] for i in order], [labels[i] for i in order], loc="lower right",
                    bbox_to_anchor=(1.0, 1.01), frameon=False, ncols=len(order), fontsize=9, borderaxespad=0)
        axes.set_title("Throughput per variant and engine (higher is better)", loc="left", pad=22)
        axes.text(0.0, 1.02, _chart_subtitle(run, summary), transform=axes.transAxes, fontsize=9, color="#555555")
        figure.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.16)
        _save(figure, path)


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


def plot_tradeoff(run: Run, rows: list[Row], path: Path, highlight: Row | None = None) -> None:
    """mAP@0.5 against FPS, one labelled point per cell; the fastest within one point of dense circled."""
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    summary = machine_summary(run)
    with_map = [r for r in rows if r.map50 is not None]
    variants = variants_of(run)
    colors = matplotlib.colormaps["tab10"]

    def color_of(variant: str):
        return colors(variants.index(variant) % 10)

    with _rc():
        figure = _figure(TRADEOFF_FIGSIZE)
        axes = figure.add_subplot(1, 1, 1)
        figure.subplots_adjust(left=0.08, right=0.78, top=0.88, bottom=0.1)
        for row in with_map:
            axes.scatter([row.fps], [row.map50], s=55, marker=ENGINE_MARKERS.get(row.cell.engine, "o"),
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
        axes.set_title("Accuracy vs speed: one point per variant x engine", loc="left", pad=22)
        axes.text(0.0, 1.02, _chart_subtitle(run, summary), transform=axes.transAxes, fontsize=9, color="#555555")

        # Legends beside the plot (never over a point): engines by marker, variants by colour.
        engine_handles = [Line2D([], [], marker=ENGINE_MARKERS.get(e, "o"), linestyle="", color="#999999",
                                 markeredgecolor="black", markersize=8, label=e) for e in engines_of(run)]
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
        _place_labels(figure, axes, [(r.fps, r.map50, r.name) for r in with_map],
                      ringed=[k for k, r in enumerate(with_map) if shown_highlight and r.name == highlight.name])
        _save(figure, path)


# --- detections --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleImage:
    label: str  # the caption: where the image comes from
    image: np.ndarray


def sample_images(profile: str, data: str | os.PathLike | None) -> list[SampleImage]:
    """The first validation image of the dataset the variants were trained on, and ultralytics' two photos."""
    from yolobench import builder
    from yolobench.data import check_dataset
    from yolobench.processing import IMAGE_SUFFIXES, default_images, load_images

    spec = catalogue.get_variant(DENSE_VARIANT)
    data_yaml = builder.dataset_for(spec, catalogue.get_profile(profile), data)
    info = check_dataset(data_yaml, decode_images=False)
    val = sorted(p for d in info.val_dirs for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not val:
        raise UserError(f"{data_yaml}: the validation split has no images to draw detections on")
    samples = [SampleImage(f"validation: {val[0].name}", load_images(val[0])[0][1])]
    samples += [SampleImage(path.name, image) for path, image in load_images(default_images())]
    return samples


def detection_sheet(detector, samples: list[SampleImage],
                    height: int = DETECTION_PANEL_HEIGHT) -> tuple[np.ndarray, list[int]]:
    """Every sample with the detector's detections drawn at display scale, side by side; and the counts."""
    from yolobench import draw

    panels, counts = [], []
    for sample in samples:
        detections, _ = detector.detect(sample.image)
        shown, factor = draw.resize_to_height(sample.image, height)
        panels.append((draw.draw_detections(shown, draw.scale_detections(detections, factor), detector.names),
                       f"{sample.label}: {len(detections)} detections"))
        counts.append(len(detections))
    title = (f"{detector.variant} on {detector.engine} ({detector.form} graph, {detector.imgsz} px input, "
             f"conf {detector.conf:g})")
    return draw.contact_sheet(panels, title), counts


@dataclass(frozen=True)
class DetectionResult:
    variant: str
    image: Path | None  # relative to the report folder; None when skipped
    note: str
    not_built: bool = False


def _detection_imgsz(run: Run, variant: str, artifact) -> int | None:
    sizes = sorted({c.imgsz for c in run.cells.values() if c.variant == variant})
    return next((s for s in sizes if s in artifact.export_sizes), None)


def draw_detections_for(run: Run, out_dir: Path, *, profile: str, data, store, engine: str,
                        say: Progress) -> list[DetectionResult]:
    from yolobench import annotate
    from yolobench.store import Store

    store = store if store is not None else Store()
    results: list[DetectionResult] = []
    samples: list[SampleImage] | None = None
    for variant in variants_of(run):
        # The artifact the run measured (its cells name it) where the store still has it, else the one
        # the profile builds today.
        keys = {c.extra.get("artifact_key") for c in run.cells.values() if c.variant == variant}
        measured = next(iter(keys)) if len(keys) == 1 and None not in keys else None
        artifact = store.get(variant, str(measured)) if measured else None
        if artifact is None:
            try:
                artifact = annotate.load_built(variant, profile, data, store)
            except UserError as err:
                results.append(DetectionResult(variant, None, f"skipped: {err}"))
                continue
        if artifact is None:
            build = f"yolobench build --variants {variant} --profile {profile}" + (f" --data {data}" if data else "")
            results.append(DetectionResult(variant, None, f"skipped: not built for profile {profile} in {store.root} "
                                                          f"(`{build}` builds it)", not_built=True))
            continue
        if measured and artifact.key != measured:
            say(f"{variant}: artifact {measured} of the run is not in {store.root}; drawing {artifact.key}")
        if samples is None:
            samples = sample_images(profile, data)
        say(f"drawing detections of {variant} on {engine}")
        try:
            detector = annotate.Detector.load(artifact, engine, imgsz=_detection_imgsz(run, variant, artifact),
                                              conf=DETECTION_CONF)
        except UserError as err:
            results.append(DetectionResult(variant, None, f"skipped: {err}"))
            continue
        sheet, counts = detection_sheet(detector, samples)
        relative = Path("detections") / f"{variant}.png"
        _write_png(out_dir / relative, sheet)
        if artifact.key == measured:
            which = "the one this run measured"
        elif measured:
            which = f"the profile's current build; the run measured {measured}, no longer in the store"
        else:
            which = "the profile's current build; the run does not record which artifact it measured"
        per_image = ", ".join(f"{n} ({s.label.split(': ')[-1]})" for n, s in zip(counts, samples))
        results.append(DetectionResult(variant, relative, (
            f"Artifact {artifact.key} ({which}), {engine} {detector.form} graph at {detector.imgsz} px, "
            f"conf {detector.conf:g}; detections per image: {per_image}.")))
    return results


# --- writing -----------------------------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """``write(tmp)`` then rename onto ``path``: a reader never sees half a file. The temporary name is
    made here, not by mkstemp, so the file gets the user's usual permissions (mkstemp's are 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:  # pragma: no cover - a uint8 BGR image always encodes
        raise RuntimeError(f"cannot encode {path}")
    _atomic_write(path, lambda tmp: Path(tmp).write_bytes(encoded.tobytes()))


def render_markdown(run: Run, rows: list[Row], *, detections: list[DetectionResult] | None,
                    detections_note: str = "") -> str:
    summary = machine_summary(run)
    source = display_path(run.path)
    best = fastest_within_dense(rows)
    torch_present = TORCH_BASELINE_CELL in run.cells
    lines = [
        "# yolobench report",
        "",
        f"Run file: `{source}` (every number below is copied from its `benchmarks[].extra_info`, rounded for display)",
        "",
        f"- {machine_line(summary)}",
        f"- Library versions: {_join(f'{k} {v}' for k, v in summary.versions.items()) or 'not recorded'}"
        + (f"; Python {summary.python}" if summary.python else ""),
        f"- Date: {run.datetime or 'not recorded'}",
        f"- {commit_line(run)}",
        f"- Batch {_join(summary.batch)}, input {_join(summary.imgsz)} px, {len(rows)} cells",
        "",
    ]
    if best is not None:
        lines.append(f"fastest configuration within {MAP_POINTS_ALLOWED:g} point of dense mAP: {best.name} at "
                     f"{fmt_fps(best.fps)} FPS (mAP@0.5 {fmt_map(best.map50)}, {fmt_points(best.map50_delta_points)} "
                     f"points vs {best.dense_cell})")
    else:
        lines.append(f"fastest configuration within {MAP_POINTS_ALLOWED:g} point of dense mAP: n/a (no cell has an "
                     "mAP@0.5 and a dense cell with one to compare against)")
    lines += ["", markdown_table(table_header(run), [table_row(r) for r in rows]), ""]
    lines += [
        "How to read it:",
        "",
        "- FPS = 1000 / mean latency (`fps`); p50, p90 = `latency_ms.p50`, `latency_ms.p90` (batch 1, one stream).",
        f"- speedup vs {TORCH_BASELINE_CELL} = its fastest `session_p50_ms` / the cell's fastest `session_p50_ms` "
        "(`latency_ms.p50` where a run recorded no sessions): the rule of the run's own speedups, robust to a slow "
        "phase of the machine that hit some sessions"
        + ("." if torch_present else f"; n/a: this run has no {TORCH_BASELINE_CELL} cell."),
        f"- speedup vs {_reference_name(run)} = `speedup_vs_reference` as recorded in the run (same rule, measured "
        "in the same run).",
        "- ΔmAP@0.5 = (cell `map50` - dense `map50`) x 100, in points, against dense on the same engine (a note "
        "names the dense cell when it is another one).",
        "- sparsity = `sparsity` (fraction of zero weights) in %; size MB = `model_size_bytes` / 10^6.",
        "",
        "![FPS per variant and engine](fps.png)",
        "",
        "![mAP@0.5 vs FPS](tradeoff.png)",
        "",
        "## Detections",
        "",
    ]
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
    fps_chart: Path
    tradeoff_chart: Path
    rows: list[Row]
    detections: list[DetectionResult] | None
    profile: str


def write_report(run_path: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None, *,
                 profile: str | None = None, data: str | os.PathLike | None = None, store=None,
                 detections: bool = True, engine: str = DEFAULT_DETECTION_ENGINE,
                 progress: Progress | None = None) -> Report:
    say = progress or (lambda message: None)
    if detections:
        from yolobench import engines

        engines.get(engine)  # an unknown engine is a usage error, found before anything is written
    run = load_run(run_path if run_path is not None else newest_run())
    if profile is None:
        profile = infer_profile(run)
    catalogue.get_profile(profile)
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    rows = build_rows(run)
    say(f"{run.path}: {len(rows)} cells")

    fps_chart, tradeoff_chart = out / "fps.png", out / "tradeoff.png"
    plot_fps(run, rows, fps_chart)
    plot_tradeoff(run, rows, tradeoff_chart, fastest_within_dense(rows))

    drawn = None
    if detections:
        drawn = draw_detections_for(run, out, profile=profile, data=data, store=store, engine=engine, say=say)
        note = (f"Sample images with each variant's detections (profile {profile}, {engine}, conf "
                f"{DETECTION_CONF:g}): the first validation image of the dataset and ultralytics' two photos. "
                "The boxes show what the model finds, not how fast it is.")
    else:
        note = "Not drawn (--no-detections)."
    text = render_markdown(run, rows, detections=drawn, detections_note=note)
    markdown = out / "report.md"
    _atomic_write(markdown, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return Report(run=run, out_dir=out, markdown=markdown, fps_chart=fps_chart, tradeoff_chart=tradeoff_chart,
                  rows=rows, detections=drawn, profile=profile)


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
