"""The run's cells as the report orders and compares them: its sizes, variants and engines (catalogue and
engine order), the cells not timed by design, the dense cell a cell's mAP is compared with and the PyTorch
baseline its speedup is taken over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from yolobench import bench, catalogue, engines
from yolobench.errors import UserError
from yolobench.runfile import Cell, Run, cell_name, reference_cell_name, speedup_of_fastest

DENSE_VARIANT = catalogue.REFERENCE_VARIANT
TORCH_ENGINE = "torch"  # dense on PyTorch at each size is the blog's "PyTorch dense" baseline

Progress = Callable[[str], None]  # what the report says it is doing (``write_report(progress=...)``)


def torch_baseline_name(imgsz: int) -> str:
    """The blog's "PyTorch dense" baseline at ``imgsz``: ``dense-torch-640``."""
    return cell_name(DENSE_VARIANT, TORCH_ENGINE, imgsz)


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
