"""pytest-benchmark side of the benchmark matrix: options, the engine axis, the reference cell.

- ``--engines a,b`` (default all four) parametrizes ``engine_name``; ``variant_name`` comes from
  ``fixtures/variants.py`` (``--variants``); ``cell_imgsz`` is every export size of the profile (or
  ``--imgsz N``), so a cell is ``<variant>-<engine>-<imgsz>``, e.g. ``pruned_quant-deepsparse-640``.
  Cells an engine says it does not time (``bench.untimed_reason``: PyTorch's fake-quantized INT8) are
  skipped with that reason.
- ``--sessions N`` (default ``timer.SESSIONS``) parametrizes ``session_index``: each cell is timed in N
  independently loaded sessions, one test each, ``test_latency[pruned_quant-deepsparse-640-s2]``. The
  matrix runs in N passes: pass k times session k of every cell (size by size in the profile's order;
  at each size the reference cell first, then engine by engine in ``--engines`` order, variants in
  catalogue order), so a slow phase of the machine
  lands on one session of many cells instead of every session of one (``timer.SESSIONS`` says why).
  The run file holds one benchmark per session; ``runfile.load_run`` joins them per cell.
  With ``--benchmark-disable`` (check that cells run, time nothing) only pass 1 is kept.
- ``--threads N`` (default: every usable core), recorded in every cell.
- ``reference_cell``: dense on ONNX Runtime at each size, measured once per session; its own test runs first.
  In a run of model files (``--yb-models``, ``yolobench bench --model``): the first file of each size on
  ONNX Runtime; each file's cells run at its own input size only.
- A plain ``pytest`` (paths from ``testpaths``) without ``--benchmark-only`` deselects the cells: the
  matrix builds every variant and times 32 cells, which is not a unit-test run. Naming the folder
  (``pytest benchmarks``) or ``--benchmark-only`` runs them. Without a path on the command line write
  ``--engines=a,b`` (with ``=``): before this file is loaded pytest takes a separate value for a path.

Keep it import-light: every pytest run over benchmarks/ loads it before any option is checked.
"""

from __future__ import annotations

import pytest

from fixtures import options

BENCH_MODULE = "test_latency.py"
SCENARIO_MODULE = "test_scenarios.py"


def pytest_benchmark_update_commit_info(config, commit_info):
    """``code_dirty``: whether the measured code differs from the commit. pytest-benchmark's ``dirty`` is
    true for any tracked change, the reports and history a previous main job rewrote under results/
    included; the history (``yolobench history record``) reads ``code_dirty`` where a run file has it."""
    from yolobench import paths

    changed = paths.uncommitted_code()
    if changed is not None:
        commit_info["code_dirty"] = bool(changed)


def pytest_addoption(parser):
    group = parser.getgroup("yolobench-bench", "yolobench benchmarks")
    options.add(parser, group, "engines", default=None,
                help="comma-separated engines to benchmark, in this order (default: every engine, as "
                     "`yolobench bench --help` lists them)")
    options.add(parser, group, "sessions", type=int, default=None,
                help="independently loaded sessions per cell, run in passes over the matrix "
                     "(default: yolobench.timer.SESSIONS)")
    options.add(parser, group, "threads", type=int, default=None,
                help="threads per engine session (default: every usable core); recorded per cell")
    options.add(parser, group, "scenarios", default=None,
                help="also measure these scenarios per cell after the matrix: e2e, throughput, memory or all "
                     "(benchmarks/test_scenarios.py; default: none)")
    options.add(parser, group, "scenario-variants", default=None,
                help="comma-separated variants the scenarios run on (default: the matrix's variants)")
    options.add(parser, group, "streams", type=int, default=None,
                help="concurrent streams of the throughput scenario (default: every usable core, one thread each)")


def engine_names(config) -> list[str]:
    from yolobench import bench
    from yolobench.errors import UserError

    try:
        return bench.parse_engines(options.get(config, "engines"))
    except UserError as err:
        raise pytest.UsageError(f"--engines: {err}") from None


def scenario_names(config) -> list[str]:
    from yolobench import scenarios
    from yolobench.errors import UserError

    try:
        return scenarios.parse_scenarios(options.get(config, "scenarios"))
    except UserError as err:
        raise pytest.UsageError(f"--scenarios: {err}") from None


def scenario_variants(config) -> list[str]:
    from fixtures.variants import _config
    from yolobench import catalogue
    from yolobench.errors import UserError

    text = options.get(config, "scenario_variants")
    if not text:
        return list(_config(config).variants)
    try:
        return list(catalogue.parse_variants(text))
    except UserError as err:
        raise pytest.UsageError(f"--scenario-variants: {err}") from None


def session_count(config) -> int:
    from yolobench import timer

    sessions = options.get(config, "sessions")
    if sessions is None:
        return timer.SESSIONS
    if sessions < 1:
        raise pytest.UsageError(f"--sessions must be at least 1, got {sessions}")
    return sessions


@pytest.hookimpl(trylast=True)  # after fixtures/variants.py parametrized variant_name: ids read variant-engine-sK
def pytest_generate_tests(metafunc):
    if "scenario_variant" in metafunc.fixturenames:  # first: ids read variant-engine-size-scenario
        names = scenario_variants(metafunc.config)
        metafunc.parametrize("scenario_variant", names, ids=names, scope="session")
    if "engine_name" in metafunc.fixturenames:
        names = engine_names(metafunc.config)
        metafunc.parametrize("engine_name", names, ids=names, scope="session")
    if "cell_imgsz" in metafunc.fixturenames:
        from fixtures.variants import _config

        sizes = list(_config(metafunc.config).sizes)
        metafunc.parametrize("cell_imgsz", sizes, ids=[str(z) for z in sizes], scope="session")
    if "scenario" in metafunc.fixturenames:
        chosen = scenario_names(metafunc.config)
        metafunc.parametrize("scenario", chosen, ids=chosen)
    if "session_index" in metafunc.fixturenames:
        indices = list(range(1, session_count(metafunc.config) + 1))
        metafunc.parametrize("session_index", indices, ids=[f"s{k}" for k in indices])


def _is_cell(item) -> bool:
    return item.path.name == BENCH_MODULE and "engine_name" in getattr(item, "fixturenames", ())


def _is_scenario(item) -> bool:
    return item.path.name == SCENARIO_MODULE and "scenario" in getattr(item, "fixturenames", ())


def _implicit_run(config) -> bool:
    """True for a plain ``pytest`` whose paths came from ``testpaths``, not from the command line."""
    source = getattr(config, "args_source", None)
    return source is not None and source == pytest.Config.ArgsSource.TESTPATHS


def cell_order(config):
    """Sort key of a cell's session: pass by pass (session k of every cell before session k+1 of any);
    within a pass size by size in the profile's order, then engine-major in ``--engines`` order (so
    ``--engines deepsparse,...`` times every DeepSparse cell first), then catalogue order; at each size
    the reference cell first in each pass (speedups need it)."""
    from fixtures.variants import _config

    engines = engine_names(config)
    build = _config(config)
    sizes, variants = list(build.sizes), list(build.variants)  # variants in catalogue order, or model files'
    references = {imgsz: reference_pair(config, imgsz) for imgsz in sizes}

    def key(item):
        params = item.callspec.params
        variant, engine = params["variant_name"], params["engine_name"]
        imgsz = params.get("cell_imgsz", sizes[0])
        first = 0 if (variant, engine) == references[imgsz] else 1
        return (params.get("session_index", 1), sizes.index(imgsz), first, engines.index(engine),
                variants.index(variant))

    return key


def reference_pair(config, imgsz: int) -> tuple[str, str]:
    """(variant, engine) of the reference cell at ``imgsz``: dense on ONNX Runtime; in a run of model
    files (``--yb-models``, ``yolobench bench --model``) the first file of that size on ONNX Runtime (the
    catalogue's dense is not in such a run)."""
    from fixtures.variants import _config
    from yolobench import bench

    for model in _config(config).models:
        if model.imgsz == imgsz:
            return model.name, bench.REFERENCE_CELL[1]
    return bench.REFERENCE_CELL


def _other_size(config, item) -> bool:
    """A cell of a model file at a size that is not the file's (a run of files of several sizes)."""
    from fixtures.variants import _config

    params = getattr(item, "callspec", None) and item.callspec.params
    name = params and (params.get("variant_name") or params.get("scenario_variant"))
    if not name or "cell_imgsz" not in params:
        return False
    sizes = {m.name: m.imgsz for m in _config(config).models}
    return name in sizes and sizes[name] != params["cell_imgsz"]


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by session-scoped parameters
def pytest_collection_modifyitems(config, items):
    if _implicit_run(config) and not config.getoption("benchmark_only", False):
        cells = [item for item in items if _is_cell(item) or _is_scenario(item)]
        if cells:
            config.hook.pytest_deselected(items=cells)
            items[:] = [item for item in items if item not in cells]
        return
    if not scenario_names(config):  # scenarios run only when asked for (--yb-scenarios)
        unasked = [item for item in items if _is_scenario(item)]
        if unasked:
            config.hook.pytest_deselected(items=unasked)
            items[:] = [item for item in items if item not in unasked]
    elsewhere = [item for item in items if _other_size(config, item)]  # a model file runs at its own size
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if item not in elsewhere]
    # --benchmark-disable (pytest-benchmark's own rule): one load per cell checks that it runs
    if config.getoption("benchmark_disable", False) and not config.getoption("benchmark_enable", False):
        later = [item for item in items if _is_cell(item) and item.callspec.params.get("session_index", 1) > 1]
        if later:
            config.hook.pytest_deselected(items=later)
            items[:] = [item for item in items if item not in later]
    slots = [n for n, item in enumerate(items) if _is_cell(item)]
    ordered = sorted((items[n] for n in slots), key=cell_order(config))
    for n, item in zip(slots, ordered):
        items[n] = item
    outcomes = config.pluginmanager.get_plugin(CellOutcomes.name)
    if outcomes is not None:
        outcomes.cells = {item.nodeid: _timed_cell(config, item) for item in ordered}


# --- what the run file says about the cells it lacks ---


class CellOutcomes:
    """How each selected session of the matrix ended: ``cells`` (nodeid -> cell name, None for a cell the
    matrix does not time by design) and ``outcomes`` (nodeid -> why it did not pass; "" for passed)."""

    name = "yolobench-cell-outcomes"

    def __init__(self):
        self.cells: dict[str, str | None] = {}
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report):
        if report.nodeid not in self.cells:
            return
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            self.outcomes[report.nodeid] = "failed: " + _one_line(crash.message if crash is not None
                                                                  else report.longreprtext)
        elif report.skipped and report.nodeid not in self.outcomes:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.outcomes[report.nodeid] = "skipped: " + _one_line(reason.removeprefix("Skipped: "))
        elif report.when == "call" and report.passed:
            self.outcomes.setdefault(report.nodeid, "")


def _timed_cell(config, item) -> str | None:
    """The cell ``item`` times a session of, or None for one the matrix skips by design (``untimed_reason``)."""
    from fixtures.variants import _config
    from yolobench import bench, catalogue, modelfiles, runfile

    params = item.callspec.params
    variant, engine = params["variant_name"], params["engine_name"]
    imgsz = params.get("cell_imgsz", _config(config).sizes[0])
    model = next((m for m in _config(config).models if m.name == variant), None)
    if model is not None:
        untimed = modelfiles.untimed_reason(engine, quantized=model.quantized)
    else:
        untimed = bench.untimed_reason(variant, engine) if variant in catalogue.VARIANT_NAMES else None
    return None if untimed else runfile.cell_name(variant, engine, imgsz)


def _one_line(text: str, limit: int = 300) -> str:
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line[:limit]


def missing_cells(config) -> dict[str, str]:
    """{cell: why the run file lacks it, or lacks some of its sessions}: every selected cell of the matrix
    (those the matrix times) with a session that failed, was skipped or never ran (pytest stopped)."""
    from collections import defaultdict

    plugin = config.pluginmanager.get_plugin(CellOutcomes.name)
    sessions = defaultdict(list)
    for nodeid, cell in (plugin.cells if plugin is not None else {}).items():
        if cell is not None:
            sessions[cell].append(plugin.outcomes.get(nodeid, "not run: pytest stopped before it"))
    missing = {}
    for cell, outcomes in sessions.items():
        lacking = [(k, why) for k, why in enumerate(outcomes, 1) if why]
        if not lacking:
            continue
        k, why = lacking[0]
        if len(outcomes) > 1:
            why = f"{len(lacking)} of {len(outcomes)} sessions missing (session {k}: {why})"
        missing[cell] = why
    return missing


def pytest_benchmark_update_json(config, benchmarks, output_json):  # noqa: ARG001
    """A run file is never half a matrix without saying so: ``machine_info["yolobench_incomplete"]`` names
    each selected cell that failed, was skipped or never ran, with the reason (``runfile.Run.incomplete``;
    the gate and the report show it). Absent when every selected cell was timed."""
    from yolobench import runfile

    missing = missing_cells(config)
    if missing and isinstance(output_json.get("machine_info"), dict):
        output_json["machine_info"][runfile.INCOMPLETE_KEY] = missing


def pytest_configure(config):
    if config.pluginmanager.get_plugin(CellOutcomes.name) is None:
        config.pluginmanager.register(CellOutcomes(), CellOutcomes.name)
    session_count(config)  # a bad --sessions is a usage error (exit 4) before collection
    scenario_names(config)
    streams = options.get(config, "streams")
    if streams is not None and streams < 1:
        raise pytest.UsageError(f"--streams must be at least 1, got {streams}")


def pytest_report_header(config):
    if _implicit_run(config) and not config.getoption("benchmark_only", False):
        return "yolobench: benchmark cells deselected (run `pytest benchmarks` or `pytest --benchmark-only`)"
    return None


@pytest.fixture(scope="session")
def bench_threads(pytestconfig) -> int:
    from yolobench import bench

    threads = options.get(pytestconfig, "threads")
    if threads is not None and threads < 1:
        raise pytest.UsageError(f"--threads must be at least 1, got {threads}")
    return threads or bench.default_threads()


@pytest.fixture(scope="session")
def bench_streams(pytestconfig, bench_threads) -> int:
    return options.get(pytestconfig, "streams") or bench_threads


@pytest.fixture(scope="session")
def bench_sessions(pytestconfig) -> int:
    return session_count(pytestconfig)


@pytest.fixture(scope="session")
def reference_cell(variant, build_config, bench_threads, bench_sessions, pytestconfig):
    """Dense on ONNX Runtime at each size (in a run of model files: the first file of that size on ONNX
    Runtime, ``reference_pair``): session k measured once per pytest session, by its own test in pass k,
    or here when it is not selected."""
    from yolobench import bench

    def pair(imgsz: int) -> tuple[str, str]:
        return reference_pair(pytestconfig, imgsz)

    def measure(imgsz: int, index: int):
        variant_name, engine_name = pair(imgsz)
        latency, _ = bench.measure_session(variant(variant_name), engine_name, index=index, sessions=bench_sessions,
                                           threads=bench_threads, imgsz=imgsz)
        return latency

    return bench.ReferenceCell(measure, pair)
