"""The charts other than the tradeoff chart (in ``tradeoff``): fixed pixel sizes and font, each engine in its
own colour; per size the FPS bars and the latency distribution; the cells against the machine's peak."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from yolobench import engines
from yolobench.report.cells import Untimed, _order_key, engines_of, variants_of
from yolobench.report.formats import UNTIMED_TEXT, _join, fmt_fps
from yolobench.report.machine import MachineSummary, machine_summary
from yolobench.report.rows import Row, rows_at
from yolobench.runfile import Run, split_cell_name

# Charts: fixed pixel sizes, so the report looks the same from run to run (and tests can check them).
CHART_DPI = 100
FPS_FIGSIZE = (12.0, 6.0)  # inches -> 1200 x 600 px
TRADEOFF_FIGSIZE = (10.0, 7.0)  # -> 1000 x 700 px
FONT_FAMILY = "DejaVu Sans"  # bundled with matplotlib: nothing is fetched
# Engines' order, colours and markers are their own (engines.trait): an engine no longer installed
# (an old run file's) sorts after the others, by name, in grey circles.
UNKNOWN_ENGINE_COLOR, UNKNOWN_ENGINE_MARKER = "#555555", "o"


def _engine_color(engine: str) -> str:
    return engines.trait(engine, "color", UNKNOWN_ENGINE_COLOR)


def _engine_marker(engine: str) -> str:
    return engines.trait(engine, "marker", UNKNOWN_ENGINE_MARKER)


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
    """The chart as a 256-colour PNG (draw.palette_png: a third of matplotlib's full-colour file)."""
    import io

    import numpy as np
    from PIL import Image

    from yolobench.draw import palette_png
    from yolobench.fsutil import atomic_write_bytes

    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=CHART_DPI, format="png", metadata={"Software": None})
    buffer.seek(0)
    atomic_write_bytes(path, palette_png(np.asarray(Image.open(buffer).convert("RGB"))))


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


def distribution_name(sizes: list[int], imgsz: int) -> str:
    return "latency.png" if len(sizes) == 1 else f"latency-{imgsz}.png"


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
        _save(figure, path)
