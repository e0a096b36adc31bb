"""pytest-benchmark side of the benchmark matrix: options, the engine axis, the reference cell.

- ``--engines a,b`` (default all four) parametrizes ``engine_name``; ``variant_name`` comes from
  ``fixtures/variants.py`` (``--variants``), so a cell's id is ``<variant>-<engine>``, e.g.
  ``test_latency[pruned_quant-deepsparse]``. Cells run engine by engine in ``--engines`` order (the
  reference cell first of all), variants in catalogue order.
- ``--threads N`` (default: every usable core), recorded in every cell.
- ``reference_cell``: dense on ONNX Runtime, measured once per session; its own test runs first.
- A plain ``pytest`` (paths from ``testpaths``) without ``--benchmark-only`` deselects the cells: the
  matrix builds every variant and times 32 cells, which is not a unit-test run. Naming the folder
  (``pytest benchmarks``) or ``--benchmark-only`` runs them. Without a path on the command line write
  ``--engines=a,b`` (with ``=``): before this file is loaded pytest takes a separate value for a path.

asv imports this module too (it imports everything under ``benchmarks/``): keep it import-light.
"""

from __future__ import annotations

import pytest

BENCH_MODULE = "test_latency.py"


def _defined(parser, name: str) -> bool:
    """Whether another plugin already added option ``name`` (then it is shared, not added twice)."""
    groups = [*getattr(parser, "_groups", []), getattr(parser, "_anonymous", None)]
    return any(name in option.names() for group in groups if group is not None
               for option in getattr(group, "options", []))


def pytest_addoption(parser):
    group = parser.getgroup("yolobench-bench", "yolobench benchmarks")
    if not _defined(parser, "--engines"):
        group.addoption("--engines", default=None,
                        help="comma-separated engines to benchmark, in this order (default: "
                             "torch,onnxruntime,deepsparse,openvino)")
    if not _defined(parser, "--threads"):
        group.addoption("--threads", type=int, default=None,
                        help="threads per engine session (default: every usable core); recorded per cell")


def engine_names(config) -> list[str]:
    from yolobench import bench
    from yolobench.errors import UserError

    try:
        return bench.parse_engines(config.getoption("--engines"))
    except UserError as err:
        raise pytest.UsageError(f"--engines: {err}") from None


@pytest.hookimpl(trylast=True)  # after fixtures/variants.py parametrized variant_name: ids read variant-engine
def pytest_generate_tests(metafunc):
    if "engine_name" in metafunc.fixturenames:
        names = engine_names(metafunc.config)
        metafunc.parametrize("engine_name", names, ids=names, scope="session")


def _is_cell(item) -> bool:
    return item.path.name == BENCH_MODULE and "engine_name" in getattr(item, "fixturenames", ())


def _implicit_run(config) -> bool:
    """True for a plain ``pytest`` whose paths came from ``testpaths``, not from the command line."""
    source = getattr(config, "args_source", None)
    return source is not None and source == pytest.Config.ArgsSource.TESTPATHS


def cell_order(config):
    """Sort key of a cell: engine-major in ``--engines`` order (so ``--engines deepsparse,...`` times every
    DeepSparse cell first), then catalogue order; the reference cell before all (speedups need it)."""
    from yolobench import bench, catalogue

    engines = engine_names(config)
    reference = bench.REFERENCE_CELL

    def key(item):
        variant, engine = item.callspec.params["variant_name"], item.callspec.params["engine_name"]
        first = 0 if (variant, engine) == reference else 1
        return (first, engines.index(engine), catalogue.VARIANT_NAMES.index(variant))

    return key


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by session-scoped parameters
def pytest_collection_modifyitems(config, items):
    if _implicit_run(config) and not config.getoption("benchmark_only", False):
        cells = [item for item in items if _is_cell(item)]
        if cells:
            config.hook.pytest_deselected(items=cells)
            items[:] = [item for item in items if not _is_cell(item)]
        return
    slots = [n for n, item in enumerate(items) if _is_cell(item)]
    ordered = sorted((items[n] for n in slots), key=cell_order(config))
    for n, item in zip(slots, ordered):
        items[n] = item


def pytest_report_header(config):
    if _implicit_run(config) and not config.getoption("benchmark_only", False):
        return "yolobench: benchmark cells deselected (run `pytest benchmarks` or `pytest --benchmark-only`)"
    return None


@pytest.fixture(scope="session")
def bench_threads(pytestconfig) -> int:
    from yolobench import bench

    threads = pytestconfig.getoption("--threads")
    if threads is not None and threads < 1:
        raise pytest.UsageError(f"--threads must be at least 1, got {threads}")
    return threads or bench.default_threads()


@pytest.fixture(scope="session")
def reference_cell(variant, build_config, bench_threads):
    """Dense on ONNX Runtime, measured once per session (by its own test, or here when it is not selected)."""
    from yolobench import bench

    variant_name, engine_name = bench.REFERENCE_CELL

    def measure():
        latency, _ = bench.measure_cell(variant(variant_name), engine_name, threads=bench_threads,
                                        imgsz=build_config.imgsz)
        return latency

    return bench.ReferenceCell(measure)
