"""The tradeoff chart: mAP@0.5 against FPS at one size, a point per cell, each point labelled where its
text overlaps no other label, point or edge."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from yolobench.report.cells import _engine_rank, variants_of
from yolobench.report.charts import TRADEOFF_FIGSIZE, _chart_subtitle, _engine_marker, _figure, _rc, _save
from yolobench.report.machine import machine_summary
from yolobench.report.rows import Row, rows_at
from yolobench.runfile import Run

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
