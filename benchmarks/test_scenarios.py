"""Scenarios beside the latency matrix: end-to-end frame latency, multi-stream throughput, peak memory.

    pytest benchmarks --benchmark-only --yb-scenarios=all --yb-scenario-variants=dense,pruned_quant
    yolobench bench --scenarios e2e,throughput --scenario-variants pruned_quant

One test per (variant, engine, size, scenario), id ``<variant>-<engine>-<imgsz>-<scenario>`` (throughput
adds its stream count: ``...-throughput2``), selected only when ``--yb-scenarios`` names scenarios
(``e2e``, ``throughput``, ``memory`` or ``all``); they run after the whole latency matrix. What each
measures and why: ``yolobench.scenarios``. Cells the matrix does not time (PyTorch's fake-quantized
INT8) are skipped with the same reason.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from yolobench import bench, catalogue, engines, scenarios, timer
from yolobench.engines import EngineUnsupported

# e2e is timed like one session of a matrix cell (a third of the protocol), the engine alone beside it
# for the share of pre/post-processing, briefly: its own numbers are the matrix's.
INFERENCE_ONLY_BUDGET = {"min_iters": 20, "min_seconds": 1.0, "max_seconds": 20.0}


def _skip_untimed(variant_name: str, engine_name: str, variant=None) -> None:
    # a model file (`bench --model`) is imported, not built: its artifact says what it is
    model_file = variant(variant_name) if variant is not None and variant_name not in catalogue.VARIANT_NAMES else None
    untimed = bench.untimed_reason(variant_name, engine_name, model_file)
    if untimed:
        pytest.skip(untimed)
    ok, reason = engines.get(engine_name).available()
    if not ok:
        pytest.skip(f"{engine_name} not available: {reason}")


def test_scenario(benchmark, variant, scenario_variant, engine_name, cell_imgsz, scenario, bench_threads,
                  bench_streams):
    _skip_untimed(scenario_variant, engine_name, variant)
    artifact = variant(scenario_variant)
    try:
        if scenario == scenarios.MEMORY:  # in a fresh process: this one's peak says nothing about one cell
            values = benchmark.pedantic(scenarios.measure_memory, args=(artifact, engine_name),
                                        kwargs={"threads": bench_threads, "imgsz": cell_imgsz},
                                        rounds=1, iterations=1)
            context = SimpleNamespace(threads=values.pop("threads"), engine_version=values.pop("engine_version"),
                                      form=values.pop("form"))
            streams = None
        elif scenario == scenarios.THROUGHPUT:
            per_stream = scenarios.threads_per_stream(bench_threads, bench_streams)
            opened = [bench.open_cell(artifact, engine_name, threads=per_stream, imgsz=cell_imgsz)
                      for _ in range(bench_streams)]
            context = opened[0][2]
            calls = [(lambda s=s, x=x: s.run(x)) for s, x, _ in opened]
            result = benchmark.pedantic(scenarios.run_streams, args=(calls,),
                                        kwargs={"threads_per_stream": per_stream}, rounds=1, iterations=1)
            values = scenarios.throughput_values(result)
            streams = bench_streams
        else:
            session, images, context = bench.open_cell(artifact, engine_name, threads=bench_threads, imgsz=cell_imgsz)
            from yolobench.processing import load_images

            (_, frame), = load_images([bench.benchmark_image(artifact, cell_imgsz)])
            inference = timer.measure(lambda: session.run(images), **INFERENCE_ONLY_BUDGET)
            e2e = bench.pedantic_timing(benchmark)(scenarios.end_to_end_call(session, frame, cell_imgsz),
                                                   1, timer.SESSIONS)
            values = scenarios.e2e_values(e2e, inference)
            values["frame_shape"] = list(frame.shape[:2])
            streams = None
    except EngineUnsupported as err:
        pytest.skip(f"{engine_name} cannot run {scenario_variant}: {err.reason}")
    benchmark.extra_info.update(scenarios.extra_info(
        scenario, variant=scenario_variant, engine=engine_name, imgsz=cell_imgsz, threads=context.threads,
        engine_version=context.engine_version, form=context.form, artifact_key=getattr(artifact, "key", None),
        values=values, streams=streams))
