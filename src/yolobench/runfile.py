"""The run file: what one benchmark run measured, as typed records.

A run file IS the JSON that ``pytest --benchmark-only --benchmark-json=RUN.json`` writes: top-level
``machine_info``, ``commit_info``, ``datetime`` and ``benchmarks: [...]``. Each benchmark of the matrix
puts its context and numbers in its ``extra_info`` (built by :func:`cell_extra_info`, the one
implementation shared by the benchmark tests and asv); pytest-benchmark's own ``stats`` are ignored.
Benchmarks without ``extra_info.cell`` (micro-benchmarks of pre/post-processing, say) are not cells.

A cell is measured in ``sessions`` independently loaded sessions, and the matrix writes one benchmark
per session (``test_latency[pruned_quant-deepsparse-s2]``, ``extra_info.session_index`` 2): session k of
every cell runs before session k+1 of any (``yolobench.timer.SESSIONS`` says why). ``load_run`` joins a
cell's sessions into one :class:`Cell` (samples in session order, statistics recomputed from them) and
its ``speedup_vs_reference`` becomes the ratio of fastest-session medians: the reference's fastest
session over the cell's (each session entry records the reference session it was compared with as
``reference_p50_ms``). Run files with one benchmark per cell (written before 2026-11-28's third
session) load as they are. A cell whose run file holds fewer sessions than its entries say it had (a
session failed, or the run was cut off) loads with those it has and says so (``Cell.incomplete``,
``sessions_missing``): its numbers are not a whole cell's, and the gate does not grade them as one.

``load_run`` validates everything the gate and the report read, and raises :class:`UserError` naming
the file, the benchmark and the field for anything wrong. Must not: measure, judge or print.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from yolobench.catalogue import REFERENCE_VARIANT
from yolobench.errors import UserError
from yolobench.store import KEY_LENGTH, is_store_key, is_store_name
from yolobench.timer import SAMPLE_DECIMALS, Latency, machine_info

# Every speedup is measured against dense on ONNX Runtime at the same image size, in the same run
# (``reference_cell_name(imgsz)``, e.g. ``dense-onnxruntime-640``), so ratios hold across runs and
# machines of one CPU generation (not across generations: see gate/thresholds.py).
REFERENCE_ENGINE = "onnxruntime"
# (variant, engine) of the reference cell; its name at a size is reference_cell_name(imgsz)
REFERENCE_CELL = (REFERENCE_VARIANT, REFERENCE_ENGINE)
_SIZED_NAME = re.compile(r"^(?P<variant>.+)-(?P<engine>[^-]+)-(?P<imgsz>\d+)$")



def _reports_fallback(engine: str) -> bool:
    """Whether the engine's graph may partly run in a fallback: then its cells must say how much ran
    natively (the engine's own ``reports_fallback``; False for an engine not installed here)."""
    from yolobench import engines

    return bool(engines.trait(engine, "reports_fallback", False))


# Stored statistics must match the stored samples: samples are rounded to SAMPLE_DECIMALS, which moves
# any statistic by far less than this; a bigger mismatch means the file was edited or mis-written.
STATS_TOLERANCE_MS = 1e-3
FPS_RELATIVE_TOLERANCE = 1e-3

LATENCY_KEYS = ("mean", "p50", "p90", "p99", "std")
# Keys every cell's extra_info carries; those marked optional may be null (not measured for this cell).
REQUIRED_KEYS = ("cell", "variant", "engine", "threads", "imgsz", "batch", "latency_ms", "samples_ms", "fps")
NULLABLE_KEYS = ("engine_version", "cpu_model", "speedup_vs_reference", "reference_cell", "sparsity",
                 "map50", "map50_95", "model_size_bytes", "form")


# machine_info[...] of a run file whose matrix is not whole: {cell: reason} for every selected cell that
# failed, was skipped or never ran (written by benchmarks/conftest.py when pytest ends; absent otherwise).
INCOMPLETE_KEY = "yolobench_incomplete"


def cell_name(variant: str, engine: str, imgsz: int) -> str:
    """The name of a matrix cell: variant, engine and input size, e.g. ``pruned_quant-deepsparse-640``."""
    return f"{variant}-{engine}-{int(imgsz)}"


def reference_cell_name(imgsz: int) -> str:
    """The cell every speedup at ``imgsz`` is measured against."""
    return cell_name(REFERENCE_VARIANT, REFERENCE_ENGINE, imgsz)


def split_cell_name(name: str) -> tuple[str, str, int]:
    """``pruned_quant-deepsparse-640`` -> ("pruned_quant", "deepsparse", 640); UserError otherwise."""
    match = _SIZED_NAME.match(name)
    if match is None:
        raise UserError(f"cell name {name!r} is not <variant>-<engine>-<imgsz> (e.g. pruned_quant-deepsparse-640)")
    return match["variant"], match["engine"], int(match["imgsz"])


def _sized(name: str, imgsz: int) -> str:
    """Run files written before cells carried their size named them ``<variant>-<engine>``."""
    return name if _SIZED_NAME.match(name) and name.endswith(f"-{imgsz}") else f"{name}-{imgsz}"


def speedup(reference: Latency, latency: Latency) -> float:
    """How many times faster than the reference: ratio of medians (robust to a few stalls)."""
    return reference.p50_ms / latency.p50_ms


def speedup_of_fastest(latency: Latency, reference_p50s_ms: list[float]) -> float | None:
    """The reference's fastest session median over this cell's fastest session median (None without a
    reference): a slow phase of the machine that hit some sessions of either moves neither minimum."""
    if not reference_p50s_ms:
        return None
    return min(reference_p50s_ms) / min(latency.session_p50s_ms() or (latency.p50_ms,))


# extra_info keys that belong to one session of a cell and differ between its sessions.
SESSION_KEYS = ("session_index", "sessions", "reference_p50_ms", "samples_ms", "latency_ms", "fps",
                "stopped_early", "session_sizes", "session_p50_ms", "speedup_vs_reference", "load_average",
                "session")
# What must be the same in every session of one cell (else they measured different things).
CELL_IDENTITY_KEYS = ("variant", "engine", "engine_version", "threads", "imgsz", "batch", "cpu_model", "form",
                      "sparsity", "map50", "model_size_bytes", "artifact_key", "reference_cell")


@dataclass(frozen=True)
class Cell:
    """One (variant, engine) cell of one run."""

    name: str
    variant: str
    engine: str
    engine_version: str | None
    threads: int
    imgsz: int
    batch: int
    cpu_model: str | None
    latency: Latency
    speedup_vs_reference: float | None
    reference_cell: str | None
    sparsity: float | None
    map50: float | None
    map50_95: float | None
    model_size_bytes: int | None
    form: str | None
    fraction_of_supported_ops: float | None
    benchmark: str = ""  # pytest-benchmark's fullname of the test that measured it
    extra: Mapping[str, Any] = field(default_factory=dict)  # every extra_info key, as written
    # Measured in sessions (one entry each): how many its entries say it had, and those not in the run
    # file (a failed or cut-off session). None and (): one whole-cell entry (older run files).
    sessions_expected: int | None = None
    sessions_missing: tuple[int, ...] = ()

    @property
    def incomplete(self) -> bool:
        """Whether sessions of this cell are missing: its latency is then not a whole cell's."""
        return bool(self.sessions_missing)

    def sessions_text(self) -> str:
        """"1 of 3 sessions (2, 3 missing)" for an incomplete cell."""
        found = (self.sessions_expected or 0) - len(self.sessions_missing)
        missing = ", ".join(map(str, self.sessions_missing))
        return f"{found} of {self.sessions_expected} sessions ({missing} missing)"


@dataclass(frozen=True)
class Run:
    """One run file: where and at which commit it ran, and its cells by name."""

    path: Path
    machine: Mapping[str, Any]
    commit: Mapping[str, Any]
    datetime: str | None
    cells: dict[str, Cell]

    @property
    def commit_id(self) -> str:
        return str(self.commit.get("id") or "unknown")

    @property
    def cpu_generation(self) -> str | None:
        """``"AMD family 26 model 2 (Zen 5)"``: what the brand string ("AMD EPYC") does not tell apart."""
        from yolobench.timer import cpu_generation

        return cpu_generation(self.machine)

    @property
    def incomplete(self) -> dict[str, str]:
        """{cell: why it is missing, or missing sessions}, as the benchmark session recorded it
        (``machine_info[INCOMPLETE_KEY]``: failed, skipped, or not run when pytest stopped); {} for a whole
        matrix, and for a run file written before this was recorded."""
        record = self.machine.get(INCOMPLETE_KEY)
        if not isinstance(record, dict):
            return {}
        return {str(cell): str(why) for cell, why in record.items()}

    def incomplete_line(self) -> str | None:
        """One line naming the cells :attr:`incomplete` lists and why (the gate and the report print it)."""
        missing = self.incomplete
        if not missing:
            return None
        return (f"not a whole matrix: {len(missing)} selected cell(s) missing or missing sessions, as recorded "
                f"when pytest ended: " + "; ".join(f"{cell} ({why})" for cell, why in sorted(missing.items())))

    @property
    def profile(self) -> str | None:
        """The build profile of the run's artifacts (None if unrecorded or mixed)."""
        profiles = {c.extra.get("profile") for c in self.cells.values()}
        return profiles.pop() if len(profiles) == 1 else None


def cell_extra_info(
    latency: Latency,
    *,
    variant: str,
    engine: str,
    engine_version: str | None,
    threads: int,
    imgsz: int,
    batch: int = 1,
    reference_latency: Latency | None = None,
    reference_cell: str | None = None,
    sparsity: float | None = None,
    map50: float | None = None,
    map50_95: float | None = None,
    model_size_bytes: int | None = None,
    form: str | None = None,
    fraction_of_supported_ops: float | None = None,
    cpu_model: str | None = None,
    session_index: int | None = None,
    sessions: int | None = None,
) -> dict:
    """The ``extra_info`` of one cell, or of session ``session_index`` of ``sessions`` of it: pass it to
    ``benchmark.extra_info.update(...)``.

    ``reference_latency`` is the reference cell's latency measured in the same run (for a session: the
    reference's session of the same index; pass the cell's own latency for the reference cell itself);
    without it ``speedup_vs_reference`` is null. ``cpu_model`` defaults to this machine's.
    """
    if (session_index is None) != (sessions is None):
        raise ValueError("session_index and sessions go together")
    if sessions is not None and not 1 <= session_index <= sessions:
        raise ValueError(f"session_index {session_index} is not in 1..{sessions}")
    if _reports_fallback(engine) and fraction_of_supported_ops is None:
        raise ValueError(f"{engine} cells must record fraction_of_supported_ops: below 1.0 part of the "
                         "graph runs in a fallback and the speed means something else")
    info = {
        "cell": cell_name(variant, engine, imgsz),
        "variant": variant,
        "engine": engine,
        "engine_version": engine_version,
        "threads": threads,
        "imgsz": imgsz,
        "batch": batch,
        "cpu_model": cpu_model if cpu_model is not None else machine_info()["cpu_model"],
        "latency_ms": latency.stats_ms(),
        "samples_ms": [round(s, SAMPLE_DECIMALS) for s in latency.samples_ms],
        "session_sizes": list(latency.session_sizes),
        "session_p50_ms": [round(p, SAMPLE_DECIMALS) for p in latency.session_p50s_ms()],
        "fps": latency.fps,
        "stopped_early": latency.stopped_early,
        "speedup_vs_reference": speedup(reference_latency, latency) if reference_latency else None,
        "reference_cell": reference_cell if reference_cell is not None else reference_cell_name(imgsz),
        "sparsity": sparsity,
        "map50": map50,
        "map50_95": map50_95,
        "model_size_bytes": model_size_bytes,
        "form": form,
    }
    if _reports_fallback(engine):
        info["fraction_of_supported_ops"] = fraction_of_supported_ops
    if sessions is not None:
        info["session_index"] = session_index
        info["sessions"] = sessions
        info["reference_p50_ms"] = reference_latency.p50_ms if reference_latency else None
    return info


def run_document(extra_infos: list[dict], *, machine: dict | None = None, commit: dict | None = None,
                 test_name: str = "test_latency") -> dict:
    """A pytest-benchmark-shaped run document holding these cells (for tools and tests)."""
    benchmarks = []
    for info in extra_infos:
        suffix = f"-s{info['session_index']}" if "session_index" in info else ""  # the matrix's ids
        name = f"{test_name}[{info.get('cell')}{suffix}]"
        benchmarks.append({"group": None, "name": name, "fullname": f"benchmarks/{name}",
                           "params": None, "param": info.get("cell"), "extra_info": info,
                           "options": {}, "stats": {}})
    return {
        "machine_info": machine if machine is not None else {"yolobench": machine_info()},
        "commit_info": commit if commit is not None else {"id": "unversioned", "dirty": False},
        "benchmarks": benchmarks,
        "datetime": None,
        "version": "yolobench",
    }


def write_run(path: str | os.PathLike, document: dict) -> Path:
    """Write a run document atomically (temp file + rename): a reader never sees half a file.

    A path ending in ``.gz`` gets the compact form (:func:`compact_document`, gzip-compressed): what a
    run committed to the repository is kept as."""
    from yolobench.fsutil import atomic_write_bytes, atomic_write_text

    if str(path).endswith(GZ_SUFFIX):
        text = json.dumps(compact_document(document), separators=(",", ":")) + "\n"
        # mtime 0 and no file name in the header: the same document gives the same bytes
        return atomic_write_bytes(path, gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    return atomic_write_text(path, json.dumps(document, indent=1) + "\n")


# A run file as pytest-benchmark writes it is 2-5.5 MB, most of it pytest-benchmark's own ``stats.data``:
# every round's time in seconds at full float precision, the same rounds the cell's ``extra_info.samples_ms``
# holds in milliseconds (rounded to SAMPLE_DECIMALS, 0.1 us). yolobench reads only ``extra_info``, so the
# compact form drops ``stats.data`` (pytest-benchmark's summary statistics stay) and is gzipped: 5.5 MB
# becomes about 0.2 MB with every number the gate, the report and the history read unchanged.
GZ_SUFFIX = ".gz"
RUN_SUFFIXES = (".json", ".json.gz")


def compact_document(document: dict) -> dict:
    """The run document without pytest-benchmark's per-round ``stats.data`` (a copy; the rest as it is)."""
    out = dict(document)
    benchmarks = []
    for bench in document.get("benchmarks") or []:
        if isinstance(bench, dict) and isinstance(bench.get("stats"), dict) and "data" in bench["stats"]:
            bench = dict(bench, stats={k: v for k, v in bench["stats"].items() if k != "data"})
        benchmarks.append(bench)
    out["benchmarks"] = benchmarks
    return out


def is_run_file(path: str | os.PathLike) -> bool:
    return str(path).endswith(RUN_SUFFIXES)


def read_document(path: str | os.PathLike) -> Any:
    """The JSON of a run file, plain or gzip-compressed (``.gz``); UserError names the file."""
    return _read_json(Path(path))


# --- Reading ---


class _Fields:
    """Typed access to one JSON object, with errors that name the file and the place."""

    def __init__(self, data: Mapping[str, Any], where: str):
        self.data = data
        self.where = where

    def fail(self, what: str) -> UserError:
        return UserError(f"{self.where}: {what}")

    def get(self, key: str, nullable: bool = False) -> Any:
        if key not in self.data:
            raise self.fail(f"missing key '{key}'")
        value = self.data[key]
        if value is None and not nullable:
            raise self.fail(f"'{key}' is null")
        return value

    def string(self, key: str, nullable: bool = False) -> str | None:
        value = self.get(key, nullable)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(f"'{key}' must be a non-empty string, got {value!r}")
        return value

    def integer(self, key: str, nullable: bool = False, minimum: int = 1) -> int | None:
        value = self.get(key, nullable)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
            raise self.fail(f"'{key}' must be an integer >= {minimum}, got {value!r}")
        return value

    def number(self, key: str, nullable: bool = False, lo: float = 0.0, hi: float = math.inf) -> float | None:
        value = self.get(key, nullable)
        if value is None:
            return None
        if not _is_number(value) or not lo <= value <= hi:
            raise self.fail(f"'{key}' must be a number in [{lo:g}, {hi:g}], got {value!r}")
        return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(path: Path) -> Any:
    try:
        if path.name.endswith(GZ_SUFFIX):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                text = handle.read()
        else:
            text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such run file") from None
    except (OSError, EOFError, UnicodeDecodeError) as err:  # gzip's BadGzipFile is an OSError
        raise UserError(f"{path}: cannot read run file ({err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None


def _load_cell(entry: Mapping[str, Any], where: str) -> Cell:
    f = _Fields(entry, where)
    name = f.string("cell")
    f.where = f"{where} (cell {name})"
    engine = f.string("engine")
    imgsz = f.integer("imgsz")
    name = _sized(name, imgsz)
    reference = f.string("reference_cell", nullable=True)
    reference = _sized(reference, imgsz) if reference else reference

    samples = f.get("samples_ms")
    if not isinstance(samples, list) or not samples:
        raise f.fail("'samples_ms' must be a non-empty list of per-iteration milliseconds")
    if not all(_is_number(s) and s >= 0 for s in samples):
        raise f.fail("'samples_ms' must hold only finite, non-negative numbers")
    stopped_early = entry.get("stopped_early", False)
    if not isinstance(stopped_early, bool):
        raise f.fail(f"'stopped_early' must be true or false, got {stopped_early!r}")
    sizes = entry.get("session_sizes", [])  # absent in run files written before sessions were recorded
    if not isinstance(sizes, list):
        raise f.fail(f"'session_sizes' must be a list of sample counts, got {sizes!r}")
    try:
        latency = Latency.from_samples(samples, stopped_early=stopped_early, session_sizes=sizes)
    except ValueError as err:
        raise f.fail(f"'samples_ms': {err}") from None

    stats = f.get("latency_ms")
    if not isinstance(stats, dict):
        raise f.fail("'latency_ms' must be an object with " + ", ".join(LATENCY_KEYS))
    stored = _Fields(stats, f"{f.where} latency_ms")
    for key, computed in latency.stats_ms().items():
        value = stored.number(key)
        if abs(value - computed) > STATS_TOLERANCE_MS:
            raise f.fail(f"latency_ms.{key} = {value:g} does not match its samples_ms ({computed:g})")
    fps = f.number("fps")
    if abs(fps - latency.fps) > FPS_RELATIVE_TOLERANCE * latency.fps:
        raise f.fail(f"fps = {fps:g} is not 1000 / mean latency ({latency.fps:g})")

    fraction_nullable = not _reports_fallback(engine)
    if fraction_nullable and "fraction_of_supported_ops" not in entry:
        fraction = None
    else:
        fraction = f.number("fraction_of_supported_ops", nullable=fraction_nullable, hi=1.0)
    size = f.integer("model_size_bytes", nullable=True)
    # The variant and the artifact key become paths (the store's <variant>-<key>/, the report's
    # detections/<variant>.png): only the store's own shapes of them are accepted.
    variant = f.string("variant")
    if not is_store_name(variant):
        raise f.fail(f"'variant' must be a variant name (lower case letters, digits and _, e.g. pruned_quant), "
                     f"got {variant!r}")
    key = entry.get("artifact_key")
    if key is not None and not is_store_key(key):
        raise f.fail(f"'artifact_key' must be an artifact key ({KEY_LENGTH} hex digits, e.g. 06ee3d074f5994cf) "
                     f"or null, got {key!r}")
    return Cell(
        name=name,
        variant=variant,
        engine=engine,
        engine_version=f.string("engine_version", nullable=True),
        threads=f.integer("threads"),
        imgsz=imgsz,
        batch=f.integer("batch"),
        cpu_model=f.string("cpu_model", nullable=True),
        latency=latency,
        speedup_vs_reference=f.number("speedup_vs_reference", nullable=True),
        reference_cell=reference,
        sparsity=f.number("sparsity", nullable=True, hi=1.0),
        map50=f.number("map50", nullable=True, hi=1.0),
        map50_95=f.number("map50_95", nullable=True, hi=1.0),
        model_size_bytes=size,
        form=f.string("form", nullable=True),
        fraction_of_supported_ops=fraction,
        extra=dict(entry),
    )


def _join_sessions(name: str, entries: list[tuple[dict, str, str, Cell]]) -> tuple[dict, str, list[str]]:
    """One cell's session entries (each already loaded by ``_load_cell``) -> one whole-cell ``extra_info``
    (validated again by ``_load_cell``)."""
    first_where = entries[0][1]
    by_index: dict[int, tuple[dict, str, str, Cell]] = {}
    for extra, where, label, cell in entries:
        f = _Fields(extra, f"{where} (cell {name})")
        index, total = f.integer("session_index"), f.integer("sessions")
        if index > total:
            raise f.fail(f"session_index {index} is above sessions {total}")
        if index in by_index:
            raise f.fail(f"session {index} of cell '{name}' appears twice (also in {by_index[index][2]})")
        if len(cell.latency.session_sizes) > 1:
            raise f.fail(f"a session entry holds one session, got session_sizes {list(cell.latency.session_sizes)}")
        by_index[index] = (extra, where, label, cell)
    ordered = [by_index[k] for k in sorted(by_index)]
    base, base_where, _, _ = ordered[0]
    for extra, where, _, _ in ordered[1:]:
        if extra.get("sessions") != base.get("sessions"):
            raise UserError(f"{where} (cell {name}): 'sessions' is {extra.get('sessions')!r} here but "
                            f"{base.get('sessions')!r} in {base_where}")
        for key in CELL_IDENTITY_KEYS:
            if extra.get(key) != base.get(key):
                raise UserError(f"{where} (cell {name}): '{key}' is {extra.get(key)!r} in this session but "
                                f"{base.get(key)!r} in {base_where}; a cell's sessions must measure the same thing")
    pooled = Latency.pooled([cell.latency for _, _, _, cell in ordered])
    if base.get("reference_cell") and name == _sized(base["reference_cell"], base.get("imgsz")):
        # The reference's own sessions, from its stored samples: its recorded reference_p50_ms is the
        # median before samples were rounded to SAMPLE_DECIMALS, which would give 0.9999996, not 1.0.
        references = list(pooled.session_p50s_ms())
    else:
        references = [float(e["reference_p50_ms"]) for e, _, _, _ in ordered if _is_number(e.get("reference_p50_ms"))]
    merged = {key: value for key, value in base.items() if key not in SESSION_KEYS}
    merged.update({
        "latency_ms": pooled.stats_ms(),
        "samples_ms": list(pooled.samples_ms),
        "fps": pooled.fps,
        "stopped_early": pooled.stopped_early,
        "session_sizes": list(pooled.session_sizes),
        "session_p50_ms": list(pooled.session_p50s_ms()),
        # Fastest session of the reference over fastest session of the cell: both robust to a slow phase.
        "speedup_vs_reference": speedup_of_fastest(pooled, references),
        "sessions": base.get("sessions"),
        "session_indices": sorted(by_index),
        "load_average": [e.get("load_average") for e, _, _, _ in ordered],
        "session": [e.get("session") for e, _, _, _ in ordered],
    })
    return merged, f"{first_where} and its other sessions", [label for _, _, label, _ in ordered]


def load_run(path: str | os.PathLike) -> Run:
    """Read and validate a run file; :class:`UserError` names the file and what is wrong."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: a run file is a JSON object (pytest --benchmark-json output), got "
                        f"{type(data).__name__}")
    top = _Fields(data, str(path))
    benchmarks = top.get("benchmarks")
    if not isinstance(benchmarks, list):
        raise top.fail("'benchmarks' must be a list")
    machine = data.get("machine_info") or {}
    commit = data.get("commit_info") or {}
    if not isinstance(machine, dict) or not isinstance(commit, dict):
        raise top.fail("'machine_info' and 'commit_info' must be objects")

    cells: dict[str, Cell] = {}
    parts: dict[str, list[tuple[dict, str, str, Cell]]] = {}  # cell -> its session entries
    for index, bench in enumerate(benchmarks):
        if not isinstance(bench, dict):
            raise top.fail(f"benchmarks[{index}] must be an object")
        label = bench.get("fullname") or bench.get("name") or "?"
        where = f"{path}: benchmarks[{index}] ({label}) extra_info"
        extra = bench.get("extra_info") or {}
        if not isinstance(extra, dict):
            raise UserError(f"{where} must be an object")
        if "cell" not in extra:
            continue  # not a matrix cell
        cell = _load_cell(extra, where)
        if "session_index" in extra:
            if cell.name in cells:
                raise UserError(f"{where}: cell '{cell.name}' has both a whole-cell entry "
                                f"({cells[cell.name].benchmark}) and session entries")
            parts.setdefault(cell.name, []).append((extra, where, str(label), cell))
            continue
        if cell.name in parts:
            raise UserError(f"{where}: cell '{cell.name}' has both a whole-cell entry and session entries "
                            f"({parts[cell.name][0][2]})")
        if cell.name in cells:
            raise UserError(f"{where}: cell '{cell.name}' appears twice (also in {cells[cell.name].benchmark}); "
                            "cell names must be unique within a run")
        cells[cell.name] = replace(cell, benchmark=str(label))
    for name, entries in parts.items():
        merged, where, labels = _join_sessions(name, entries)
        expected = merged["sessions"]
        missing = tuple(k for k in range(1, expected + 1) if k not in merged["session_indices"])
        cells[name] = replace(_load_cell(merged, where), benchmark=", ".join(labels), sessions_expected=expected,
                              sessions_missing=missing)
    if not cells:
        raise UserError(f"{path}: no benchmark cells (no benchmarks[].extra_info.cell); was it written by "
                        "`pytest --benchmark-only --benchmark-json=...` over the benchmark matrix?")
    datetime = data.get("datetime")
    return Run(path=path, machine=machine, commit=commit,
               datetime=datetime if isinstance(datetime, str) else None, cells=cells)
