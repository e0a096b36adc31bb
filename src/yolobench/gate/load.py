"""Was the machine busy with other work while the run timed its cells? The rule over the 1-minute load
average each cell recorded just before it was timed (``bench.load_average``).

Latencies measured beside other work are slower than the machine's own, by any amount: on the 2-core VM
beside a running build, dense DeepSparse had a p50 of 49 ms in one run and 480 ms in the next. A
baseline made from such a run makes every later run look fast, and a run compared on such a machine
looks slow. The gate says so (a warning line; under ``--strict`` a failure).

Must not: read files or measure anything.
"""

from __future__ import annotations

import math
from typing import Any

from yolobench.runfile import Run

# The rule: a cell was timed on a loaded machine when the 1-minute load average it recorded is above the
# machine's logical cores + LOAD_MARGIN.
#   - The benchmark itself keeps up to one runnable thread per core (every engine runs on every usable
#     core, and DeepSparse and ONNX Runtime spin-wait), and each cell's load is read just after the
#     session before it was timed, so an idle machine running the benchmark shows a load up to about its
#     core count: the three committed baselines, on 2-core VMs, recorded 1.25 to 2.0 (medians 1.58-1.74)
#     over their 396 timed sessions (results/baselines/).
#   - Above the core count, something else was runnable too; LOAD_MARGIN (half a core's worth, averaged
#     over the last minute) keeps a short-lived neighbour (a shell, a log write) from counting.
#   - Logical cores, not the usable ones: the load average counts runnable threads of the whole system
#     (a container or a taskset sees the host's), as the logical core count does.
LOAD_MARGIN = 0.5


def machine_cores(run: Run) -> int | None:
    """The machine's logical cores as the run file records them: yolobench's own machine record
    (``logical_cores``), else pytest-benchmark's (``cpu.count``), else the most threads a cell ran with
    (every engine's default is every usable core); None where none is recorded."""
    records = [run.machine, *(v for v in run.machine.values() if isinstance(v, dict))]
    for record in records:
        for key in ("logical_cores", "count"):
            value = record.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    threads = [c.threads for c in run.cells.values()]
    return max(threads) if threads else None


def _loads(value: Any) -> list[float]:
    """The load averages of one cell: a number (one entry per cell), or one per session (joined cells)."""
    values = value if isinstance(value, list) else [value]
    return [float(v) for v in values
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def load_limit(run: Run) -> float | None:
    cores = machine_cores(run)
    return None if cores is None else cores + LOAD_MARGIN


def loaded_cells(run: Run) -> dict[str, float]:
    """{cell: the highest load average recorded at it} for every cell timed on a loaded machine (above
    ``load_limit``); {} when none was, or when the run recorded no load (run files before it did)."""
    limit = load_limit(run)
    if limit is None:
        return {}
    found = {}
    for name, cell in sorted(run.cells.items()):
        loads = _loads(cell.extra.get("load_average"))
        if loads and max(loads) > limit:
            found[name] = max(loads)
    return found


def load_line(run: Run) -> str | None:
    """The one line saying the run was timed on a loaded machine (which cells, what load), or None."""
    loaded = loaded_cells(run)
    if not loaded:
        return None
    shown = ", ".join(f"{name} ({load:g})" for name, load in list(loaded.items())[:5])
    more = f" and {len(loaded) - 5} more" if len(loaded) > 5 else ""
    return (f"the machine was loaded during this run: the 1-minute load average was above "
            f"{load_limit(run):g} ({machine_cores(run)} cores + {LOAD_MARGIN:g}) at {len(loaded)} of "
            f"{len(run.cells)} cells: {shown}{more}; other work ran beside the benchmark, so its latencies are "
            f"slower than this machine's own: run it again with nothing else running")
