"""What the run was measured on and from, as the report's header says it: the machine, the library
versions, the commit, and the user's checkpoint a ladder started from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from yolobench.report.cells import ordered_cells
from yolobench.report.formats import _join, md_text
from yolobench.runfile import Run
from yolobench.timer import cpu_generation


def _machine_records(run: Run) -> list[Mapping[str, Any]]:
    """machine_info and any nested record yolobench put in it (``machine_info()`` under a key)."""
    records = [run.machine]
    records += [v for v in run.machine.values() if isinstance(v, dict) and ("cpu_model" in v or "logical_cores" in v)]
    return records


def _first(records: list[Mapping[str, Any]], *keys: str) -> Any:
    for record in records:
        for key in keys:
            if record.get(key) not in (None, ""):
                return record[key]
    return None


@dataclass(frozen=True)
class MachineSummary:
    cpu_model: str
    logical_cores: Any
    usable_cores: Any
    threads: list[int]
    imgsz: list[int]
    batch: list[int]
    system: str
    python: str | None
    versions: dict[str, str] = field(default_factory=dict)
    generation: str | None = None  # "AMD family 25 model 17 (Zen 4)" where the run file records family/model


def machine_summary(run: Run) -> MachineSummary:
    records = _machine_records(run)
    cpu = run.machine.get("cpu") if isinstance(run.machine.get("cpu"), dict) else {}
    cpu_models = sorted({c.cpu_model for c in run.cells.values() if c.cpu_model})
    cpu_model = ", ".join(cpu_models) or _first(records, "cpu_model") or cpu.get("brand_raw") or "unknown CPU"
    logical = _first(records, "logical_cores") or cpu.get("count")
    usable = _first(records, "usable_cores")
    system = " ".join(str(x) for x in (_first(records, "system"), _first(records, "release", "arch", "machine")) if x)
    python = _first(records, "python_version", "python")
    versions: dict[str, str] = {}
    for cell in ordered_cells(run):
        if cell.engine_version:
            versions.setdefault(cell.engine, cell.engine_version)
    for record in records:
        for key in ("versions", "libraries"):
            if isinstance(record.get(key), dict):
                for name, version in record[key].items():
                    if version:
                        versions.setdefault(str(name), str(version))
    return MachineSummary(cpu_model=cpu_model, logical_cores=logical, usable_cores=usable,
                          threads=sorted({c.threads for c in run.cells.values()}),
                          imgsz=sorted({c.imgsz for c in run.cells.values()}),
                          batch=sorted({c.batch for c in run.cells.values()}), system=system, python=python,
                          versions=versions, generation=cpu_generation(run.machine))


def machine_line(summary: MachineSummary) -> str:
    cores = f"{summary.logical_cores if summary.logical_cores is not None else '?'} cores"
    if summary.usable_cores is not None and summary.usable_cores != summary.logical_cores:
        cores += f" ({summary.usable_cores} usable)"
    cpu = md_text(summary.cpu_model) + (f", {md_text(summary.generation)}" if summary.generation else "")
    line = f"Machine: {cpu}, {cores}, threads {_join(summary.threads)}"
    return line + (f", {md_text(summary.system)}" if summary.system else "")


def commit_line(run: Run) -> str:
    commit = run.commit
    parts = [f"Commit: {md_text(run.commit_id)}"]
    if commit.get("branch"):
        parts.append(f"branch {md_text(commit['branch'])}")
    if commit.get("dirty"):
        parts.append("with uncommitted changes")
    if commit.get("time"):
        parts.append(f"committed {md_text(commit['time'])}")
    return ", ".join(parts)


def weights_line(run: Run) -> str | None:
    """The user's checkpoints a ladder of this run started from (``--weights``/``--source-weights``), by
    file name, network and digest; None for the catalogue's own models."""
    given: dict[str, tuple[str, str]] = {}
    for cell in run.cells.values():
        weights = cell.extra.get("weights")
        if isinstance(weights, Mapping) and isinstance(weights.get("sha256"), str):
            name = md_text(Path(str(weights.get("path") or "?")).name, code=True)
            given.setdefault(weights["sha256"], (name, md_text(weights.get("family") or "?")))
    if not given:
        return None
    files = _join(f"`{name}` ({family}, sha256 {md_text(sha[:12])})" for sha, (name, family) in sorted(given.items()))
    return (f"Your model: {files}; the ladder starts from it (dense as given, or source_pq for transfer) and "
            "the rungs below derive from it")
