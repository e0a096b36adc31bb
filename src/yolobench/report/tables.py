"""The table of each image size: a row per cell and per cell not timed by design, its header, what each
marker means under it; and the line naming the fastest configuration within one point of dense."""

from __future__ import annotations

from yolobench.report.cells import Untimed, _order_key, torch_baseline_name
from yolobench.report.formats import (MISSING, NO_COMPRESSED_MARK, UNTIMED_MARK, UNTIMED_TEXT, _join, fmt_fps,
                                      fmt_map, fmt_ms, fmt_points, fmt_ratio, fmt_size, fmt_sparsity, markdown_table,
                                      md_text)
from yolobench.report.rows import MAP_POINTS_ALLOWED, Row, rows_at
from yolobench.runfile import Run, reference_cell_name


def fmt_compressed(row: Row) -> str:
    return MISSING + NO_COMPRESSED_MARK if row.compressed_bytes is None else fmt_size(row.compressed_bytes)


def table_row(row: Row) -> list[str]:
    return [md_text(row.name), md_text(row.variant), md_text(row.engine), fmt_fps(row.fps), fmt_ms(row.p50_ms),
            fmt_ms(row.p90_ms), fmt_ms(row.p99_ms) if row.p99_ms is not None else MISSING,
            fmt_ratio(row.speedup_vs_torch), fmt_ratio(row.speedup_vs_reference), fmt_map(row.map50),
            fmt_points(row.map50_delta_points), fmt_map(row.map50_95), fmt_sparsity(row.sparsity),
            fmt_size(row.model_size_bytes), fmt_compressed(row), md_text(row.file or "n/a"), md_text("; ".join(row.notes))]


def untimed_row(item: Untimed, columns: int) -> list[str]:
    """A "not timed" row: the variant and engine, the marker in FPS, a dash in every number."""
    return ([md_text(item.name), md_text(item.variant), md_text(item.engine), UNTIMED_TEXT + UNTIMED_MARK]
            + [MISSING] * (columns - 5)
            + [f"by design, see {UNTIMED_MARK} below"])


def reference_name(run: Run, imgsz: int) -> str:
    """The reference the run's cells at ``imgsz`` name (``dense-onnxruntime-<imgsz>`` unless recorded otherwise)."""
    names = sorted({c.reference_cell for c in run.cells.values() if c.imgsz == imgsz and c.reference_cell})
    return ", ".join(map(md_text, names)) if names else reference_cell_name(imgsz)


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


def table_footnotes(rows: list[Row], untimed: list[Untimed], imgsz: int) -> list[str]:
    """What each marker of the table at ``imgsz`` means: the untimed reasons, why a gzip size is missing."""
    notes = []
    reasons: dict[str, list[str]] = {}
    for item in (u for u in untimed if u.imgsz == imgsz):
        reasons.setdefault(item.reason, []).append(item.name)
    for reason, names in reasons.items():
        notes.append(f"{UNTIMED_MARK} {_join(map(md_text, names))}: {UNTIMED_TEXT} by design (`bench.untimed_reason`): "
                     f"{reason}.")
    missing: dict[str, list[str]] = {}
    at_size = rows_at(rows, imgsz)
    for row in at_size:
        if row.compressed_bytes is None:
            missing.setdefault(row.compressed_missing or "unknown", []).append(row.name)
    for why, names in missing.items():
        which = "every cell" if len(names) == len(at_size) > 1 else _join(map(md_text, names))
        notes.append(f"{NO_COMPRESSED_MARK} gzip size of {which} not computed: {why}; the report reads the "
                     "store, it never builds.")
    return notes


def fastest_line(imgsz: int, best: Row | None) -> str:
    lead = f"fastest configuration within {MAP_POINTS_ALLOWED:g} point of dense mAP at {imgsz} px"
    if best is None:
        return (f"{lead}: n/a (no cell has an mAP@0.5 and a dense cell at {imgsz} px with one to compare "
                "against)")
    return (f"{lead}: {md_text(best.name)} at {fmt_fps(best.fps)} FPS (mAP@0.5 {fmt_map(best.map50)}, "
            f"{fmt_points(best.map50_delta_points)} points vs {md_text(best.dense_cell)})")
