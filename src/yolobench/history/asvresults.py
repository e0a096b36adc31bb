"""Run files into asv's result format: the history ``asv publish`` draws, without timing anything again.

The main job has measured every cell already (the run file); asv's own runner would time them a second
time, on a machine the first timing already kept busy. So the run's numbers are written in asv's result
format directly, where ``asv publish`` reads them (asv.conf.json's ``results_dir``, results/asv/):

    benchmarks.json                       every series recorded so far (rebuilt from the result files)
    <machine>/machine.json                the machine: CPU generation and cores
    <machine>/<commit8>-yolobench.json    one commit's points on that machine, every profile

Series. asv draws one graph per benchmark and one line per parameter value. A benchmark here is one
metric of one cell of one profile, ``smoke.latency_ms.pruned_quant-deepsparse-160``, and its parameter
``model`` is the artifact's key (its first 8 hex digits). A recipe change gives a variant a new key, so
its points start a new line on the cell's graph instead of a step in the old line; a ladder from the
user's checkpoint (``--weights``) has keys of its own too.

Metrics. asv reads every number as lower-is-better (a rise is a regression on its regressions page), so
each metric points that way: ``latency_ms`` (the fastest session's median, what the gate compares),
``map50_loss`` (1 - mAP@0.5 of that engine on the validation split), and for the scenarios ``e2e_ms``
(frame in, boxes out, median), ``ms_per_frame`` (1000 / the throughput scenario's FPS over all streams)
and ``peak_rss_mb``.

Which runs. One point per commit, machine and profile. A run made with uncommitted code changes
(``commit_info.code_dirty``, written by benchmarks/conftest.py: changes under results/ and docs do not
count; older run files: pytest-benchmark's ``dirty``) measured no commit and is skipped with the reason;
one without a commit id is refused; of two runs of one commit the later (``datetime``) is kept. A run's machine is the CPU generation and core count its
run file records (``machines.asv_machine_name``: the same names ``tox -e asv`` used), so runs from a
Zen 4 and a Zen 5 never share a line.

Must not: measure; judge (the gate judges); run asv's benchmark runner.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from yolobench.errors import UserError
from yolobench.runfile import Run, load_run

ENV_NAME = "yolobench"  # asv's environment name: part of each result file's name
RESULTS_API = 2  # asv's result-file format (asv.results.Results.api_version)
BENCHMARKS_API = 2  # asv's benchmarks.json format (asv.benchmarks.Benchmarks.api_version)
MACHINE_API = 1
KEY_DIGITS = 8
UNKNOWN_KEY = "unknown"  # run files from before artifacts had keys in extra_info
# Bump when a metric's meaning changes: asv then stops drawing results recorded under the old meaning.
SERIES_VERSION = "1"
RESULT_COLUMNS = ["result", "params", "version", "started_at", "duration"]

METRICS = {  # name -> (unit, what it is: shown on the graph's page)
    "latency_ms": ("ms", "batch-1 latency: the fastest of the cell's sessions' medians (what the gate compares)"),
    "map50_loss": ("1 - mAP@0.5", "1 - mAP@0.5 of the engine's own outputs on the validation split"),
    "e2e_ms": ("ms", "e2e scenario: one frame in, boxes out (decode, letterbox, inference, NMS), median"),
    "ms_per_frame": ("ms/frame", "throughput scenario: 1000 / FPS over all concurrent streams"),
    "peak_rss_mb": ("MB", "memory scenario: peak resident memory of a process that loads and runs the cell"),
}


@dataclass(frozen=True)
class Point:
    benchmark: str  # "smoke.latency_ms.dense-onnxruntime-160"
    model: str  # the artifact key's first KEY_DIGITS hex digits
    value: float


@dataclass(frozen=True)
class Recorded:
    run: Path
    machine: str
    commit: str
    profile: str
    points: int
    skipped: str | None  # why nothing was written (uncommitted code, a later run of the commit), else None


def _profile_of(run: Run) -> str:
    if run.profile:
        return run.profile
    if all(c.extra.get("model_file") or c.extra.get("sha256") for c in run.cells.values()):
        return "models"  # `bench --model`: files, not a profile's ladder
    raise UserError(f"{run.path}: its cells do not record one build profile; only a run of one profile "
                    "(the main job's, or `yolobench bench --profile ...`) goes into the history")


def _model(extra: Mapping[str, Any]) -> str:
    key = extra.get("artifact_key")
    return str(key)[:KEY_DIGITS] if isinstance(key, str) and key else UNKNOWN_KEY


def points(run: Run, scenario_results: Mapping[str, Any] | None = None) -> list[Point]:
    """Every number of the run that goes into the history, as asv points."""
    profile = _profile_of(run)
    out = []
    for name, cell in sorted(run.cells.items()):
        model = _model(cell.extra)
        sessions = cell.latency.session_p50s_ms() or (cell.latency.p50_ms,)
        out.append(Point(f"{profile}.latency_ms.{name}", model, min(sessions)))
        if cell.map50 is not None:
            out.append(Point(f"{profile}.map50_loss.{name}", model, 1.0 - cell.map50))
    for name, result in sorted((scenario_results or {}).items()):  # scenarios.ScenarioResult
        model = _model(result.extra)
        if result.scenario == "e2e" and result.p50_ms:
            out.append(Point(f"{profile}.e2e_ms.{name}", model, result.p50_ms))
        elif result.scenario == "throughput" and result.fps:
            out.append(Point(f"{profile}.ms_per_frame.{name}", model, 1000.0 / result.fps))
        elif result.scenario == "memory" and result.peak_rss_mb:
            out.append(Point(f"{profile}.peak_rss_mb.{name}", model, result.peak_rss_mb))
    return out


def machine_params(run: Run) -> dict[str, str]:
    """asv's machine description of the machine that made ``run`` (its run file's record)."""
    from yolobench.machines import asv_cpu, asv_machine_name

    cpu = run.machine.get("cpu") if isinstance(run.machine.get("cpu"), dict) else {}
    cores = cpu.get("count") or 0
    model = cpu.get("brand_raw") or next((c.cpu_model for c in run.cells.values() if c.cpu_model), None)
    return {"machine": asv_machine_name(run.cpu_generation, int(cores)), "cpu": asv_cpu(model, run.cpu_generation),
            "num_cpu": str(cores), "arch": str(run.machine.get("machine") or ""),
            "os": str(run.machine.get("system") or ""), "ram": ""}


def _ms(text: str | None) -> int | None:
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return int(stamp.timestamp() * 1000)


def _quoted(value: str) -> str:
    return repr(value)  # asv stores parameter values as their Python repr


def _write_json(path: Path, data: Any, api: int) -> None:
    from yolobench.fsutil import atomic_write_text

    atomic_write_text(path, json.dumps(dict(data, version=api), indent=1, sort_keys=True) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read this asv file ({err}); remove it and record its runs again") from None


def record(run_path: str | os.PathLike, results_dir: str | os.PathLike) -> Recorded:
    """Write ``run_path``'s points into the asv results under ``results_dir`` (merged with the commit's
    other profiles), then rebuild benchmarks.json. UserError for a run that cannot be a history point."""
    from yolobench.scenarios import load_scenarios

    run = load_run(run_path)
    commit = str(run.commit.get("id") or "")
    if not commit or commit == "unversioned" or len(commit) < 7:
        raise UserError(f"{run.path}: records no commit (commit_info.id); the history has one point per commit")
    profile = _profile_of(run)
    # code_dirty (benchmarks/conftest.py) ignores results/ and docs; older run files have pytest-benchmark's dirty
    dirty = run.commit.get("code_dirty", run.commit.get("dirty"))
    if dirty:
        return Recorded(run.path, machine_params(run)["machine"], commit, profile, 0,
                        f"made with uncommitted code changes at {commit[:12]}, so it measured no commit of the "
                        "history (commit them, then run again)")
    found = points(run, load_scenarios(run.path))
    started = _ms(run.datetime)
    params = machine_params(run)
    machine = params["machine"]
    root = Path(results_dir)
    folder = root / machine
    _write_json(folder / "machine.json", params, MACHINE_API)
    target = folder / f"{commit[:8]}-{ENV_NAME}.json"
    data = _read_json(target) if target.exists() else {
        "commit_hash": commit, "env_name": ENV_NAME, "params": dict(params, python="3.11"), "python": "3.11",
        "requirements": {}, "env_vars": {}, "result_columns": RESULT_COLUMNS, "results": {}, "durations": {}}
    data["date"] = _ms(run.commit.get("time")) or data.get("date") or started
    ours = {name: row for name, row in data["results"].items() if name.split(".", 1)[0] == profile}
    recorded = max((row[3] for row in ours.values() if len(row) > 3 and row[3] is not None), default=None)
    if recorded is not None and started is not None and started < recorded:
        return Recorded(run.path, machine, commit, profile, 0,
                        f"a later {profile} run of {commit[:12]} on {machine} is recorded already")
    results = {name: row for name, row in data["results"].items() if name not in ours}
    for point in found:
        results[point.benchmark] = [[point.value], [[_quoted(point.model)]], SERIES_VERSION, started, None]
    data["results"] = dict(sorted(results.items()))
    _write_json(target, data, RESULTS_API)
    rebuild_benchmarks(root)
    return Recorded(run.path, machine, commit, profile, len(found), None)


def rebuild_benchmarks(results_dir: str | os.PathLike) -> Path:
    """benchmarks.json from every result file under ``results_dir``: each series and every model key it has
    had (asv draws a result only for parameter values benchmarks.json lists)."""
    root = Path(results_dir)
    models: dict[str, set[str]] = {}
    for path in sorted(root.glob(f"*/*-{ENV_NAME}.json")):
        for name, row in _read_json(path).get("results", {}).items():
            for values in (row[1] if len(row) > 1 and row[1] else [[]]):
                models.setdefault(name, set()).update(values)
    benchmarks = {}
    for name, keys in sorted(models.items()):
        profile, metric, cell = name.split(".", 2)
        unit, what = METRICS.get(metric, ("", metric))
        benchmarks[name] = {
            "name": name, "type": "track", "unit": unit, "param_names": ["model"], "params": [sorted(keys)],
            "version": SERIES_VERSION, "timeout": 0,
            "code": f"{cell} ({profile} profile): {what}.\nRecorded from the main job's run file by "
                    "`yolobench history record`; one line per model (artifact key): a new key is another model.",
        }
    target = root / "benchmarks.json"
    _write_json(target, benchmarks, BENCHMARKS_API)
    return target
