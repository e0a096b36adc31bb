"""The benchmark matrix: batch-1 latency of every variant on every engine, one pytest-benchmark test per cell.

    pytest benchmarks --benchmark-only --benchmark-json results/runs/NAME.json   # the run file
    pytest benchmarks --benchmark-only -k pruned_quant --engines deepsparse      # one slice

Each cell (``<variant>-<engine>-<imgsz>``) is timed in ``--sessions`` independently loaded sessions, one test
each (id ``<variant>-<engine>-<imgsz>-s<k>``), in passes over the matrix (``benchmarks/conftest.py``), by the
protocol of ``yolobench.timer`` through ``yolobench.bench`` (pytest-benchmark records the timed rounds).
Each carries its context in ``extra_info`` (``runfile.cell_extra_info``): FPS, p50/p90/p99,
``speedup_vs_reference`` against the same session of dense on ONNX Runtime at the same size in this
run (1.0 for that cell itself; in a run of model files, ``yolobench bench --model``, the first file at that
size on ONNX Runtime), engine and version, threads, image size, CPU, sparsity, mAP, model size, export form and
DeepSparse's ``fraction_of_supported_ops``. ``runfile.load_run`` joins a cell's sessions.
An engine that cannot run a cell here is skipped with its reason, and so is a cell the engine says it
does not time (``bench.untimed_reason``: PyTorch's fake-quantized INT8, which parity tests check).
"""

from __future__ import annotations

import warnings

import pytest

from yolobench import bench, catalogue, engines, runfile
from yolobench.engines import EngineUnsupported


def test_latency(benchmark, variant, variant_name, engine_name, cell_imgsz, session_index, bench_threads,
                 bench_sessions, reference_cell):
    """Latency of one variant on one engine at one size (one of its sessions), with its speedup over the
    reference cell at that size."""
    reference = reference_cell.pair(cell_imgsz)
    is_reference = (variant_name, engine_name) == reference
    # A model file (`bench --model`) is imported, not built: its artifact says what it is.
    model_file = variant(variant_name) if variant_name not in catalogue.VARIANT_NAMES else None
    untimed = bench.untimed_reason(variant_name, engine_name, model_file)
    if untimed:
        pytest.skip(untimed)
    ok, reason = engines.get(engine_name).available()
    if not ok:  # before building anything
        pytest.skip(f"{engine_name} not available: {reason}")
    artifact = model_file or variant(variant_name)
    if not benchmark.enabled:  # --benchmark-disable: check that the cell runs, time nothing
        try:
            session, images, _ = bench.open_cell(artifact, engine_name, threads=bench_threads, imgsz=cell_imgsz)
        except EngineUnsupported as err:
            pytest.skip(f"{engine_name} cannot run {variant_name}: {err.reason}")
        assert session.run(images).shape[0] == images.shape[0]
        return

    # the reference's session of this pass, measured before this cell
    reference_latency = None if is_reference else reference_cell.latency(cell_imgsz, session_index)
    try:
        latency, context = bench.measure_session(artifact, engine_name, index=session_index, sessions=bench_sessions,
                                                 threads=bench_threads, imgsz=cell_imgsz,
                                                 timing=bench.pedantic_timing(benchmark))
    except EngineUnsupported as err:
        pytest.skip(f"{engine_name} cannot run {variant_name}: {err.reason}")
    if is_reference:
        reference_cell.record(cell_imgsz, session_index, latency)
        reference_latency = latency
    elif reference_latency is None:
        warnings.warn(f"{runfile.cell_name(variant_name, engine_name, cell_imgsz)}: no speedup_vs_reference: "
                      f"{reference_cell.reason(cell_imgsz)}", stacklevel=1)
    benchmark.extra_info.update(bench.cell_extra_info(latency, context, artifact, reference_latency,
                                                      session_index=session_index, sessions=bench_sessions,
                                                      reference_cell=runfile.cell_name(*reference, cell_imgsz)))
