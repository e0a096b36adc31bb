"""The table's rows: each cell's numbers as the report shows them (copied from the run file, two documented
ratios, the gzip size of the file its engine loaded), and the fastest configuration within one point of
dense at each size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from yolobench.report.cells import _speedup_over, _stored_latency, dense_cell_for, ordered_cells, torch_baseline_name
from yolobench.report.files import DeployedFile, deployment_file, loaded_file
from yolobench.runfile import Cell, Run

# "Within 1 point of dense": mAP@0.5 no more than 0.01 below dense's (the blog's recovery criterion).
MAP_POINTS_ALLOWED = 1.0
POINTS_PER_UNIT = 100.0  # mAP 0.412 = 41.2 points
FLOAT_SLACK = 1e-9  # so that a drop of exactly 1.0 point, stored as 0.402 vs 0.412, still qualifies


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
        if cell.incomplete:
            notes.append(f"incomplete: {cell.sessions_text()}")
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
