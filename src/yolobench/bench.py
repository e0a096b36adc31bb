"""One benchmark cell (variant x engine), measured one way for pytest-benchmark and for asv.

``measure_session(artifact, engine_name, index=k, sessions=n, threads=, imgsz=)`` loads the engine's
session on the artifact (the engine picks the export form it is fast on), feeds it one fixed, real
input (the first validation image of the artifact's dataset, letterboxed: the same bytes on every run)
and times it for session k's share of the protocol of :mod:`yolobench.timer`. It returns the
:class:`~yolobench.timer.Latency` and the :class:`CellContext` every number must carry (engine version,
form, threads, DeepSparse's ``fraction_of_supported_ops``...).

A cell is ``timer.SESSIONS`` such independently loaded sessions, and the benchmark matrix runs session k
of every cell before session k+1 of any (why: ``timer.SESSIONS``); ``runfile.load_run`` joins a cell's
sessions back into one cell. Who times: ``timing`` is a function ``(call, index, sessions) -> Latency``.
By default :func:`yolobench.timer.measure`; the pytest-benchmark tests use :func:`pedantic_timing`,
which warms up by the protocol's rule and then lets pytest-benchmark time a protocol-sized number of
rounds, so the samples in the run file's ``stats`` and in its ``extra_info`` are one and the same
measurement. asv's track times ``timer.SESSIONS`` sessions back to back with the default timing.

An engine that cannot run here, or cannot take this artifact, raises
:class:`~yolobench.engines.EngineUnsupported` with its reason: pytest turns it into a skip, asv into
``NotImplementedError`` (skipped). Engines whose native code can abort the process (DeepSparse) load
each cell in a child process first, so a crash skips one cell instead of ending the whole run.

Must not: build variants (callers pass artifacts), judge numbers (the gate does) or write files.
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from yolobench import catalogue, children, engines, modelfiles, runfile, timer
from yolobench.engines import EngineUnsupported
from yolobench.errors import UserError
from yolobench.timer import Latency

# Every speedup is against this (variant, engine) at the same image size, measured in the same run.
REFERENCE_CELL = runfile.REFERENCE_CELL

# pytest-benchmark's pedantic mode needs the number of rounds up front, so after the protocol's warm-up
# the mean call is estimated over at least CALIBRATION_ITERS calls and CALIBRATION_SECONDS, and the
# rounds are sized from it. The mean, not the median: the rounds' total is n x mean. Half a second of
# calls spans a few scheduler ticks, so one stall moves it little; with 5 calls' median instead, the
# tiny-profile run on a busy 2-core VM timed 3.9-4.7 s in several cells instead of MIN_SECONDS (5 s).
# MIN_ITERS holds exactly; MIN_SECONDS as far as the estimate does (pytest-benchmark records the
# rounds' total as stats.total).
CALIBRATION_ITERS = 5
CALIBRATION_SECONDS = 0.5

# timing(call, index, sessions) -> Latency of session `index` (1-based) of `sessions`; call() is one batch.
Timing = Callable[[Callable[[], object], int, int], Latency]


def default_threads() -> int:
    """All the cores this process may use (affinity-aware): the default of every cell, always recorded."""
    return engines.default_threads()


def parse_engines(text: str | Sequence[str] | None) -> list[str]:
    """'deepsparse,onnxruntime' or a list, or None (= every engine) -> engine names, in the order given."""
    known = engines.engine_names()
    if not text:
        return list(known)
    items = text.split(",") if isinstance(text, str) else [x for part in text for x in str(part).split(",")]
    names: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item not in known:
            raise UserError(f"unknown engine {item!r}; choose from: {', '.join(known)}")
        if item not in names:
            names.append(item)
    return names


def untimed_reason(variant: str, engine_name: str, artifact: Any = None) -> str | None:
    """Why the matrix does not time ``variant`` on ``engine_name`` (None: it does). The engine says.

    A model file (``bench --model``, not in the catalogue) is described by its ``artifact``
    (``modelfiles.untimed_reason``: no PyTorch graph; a quantized file is not quantized again)."""
    if artifact is not None and modelfiles.is_model_file(artifact):
        return modelfiles.untimed_reason(engine_name, quantized=bool(artifact.meta.get("quantized")))
    if catalogue.get_variant(variant).quantized:
        return engines.get(engine_name).untimed_quantized
    return None


def timed_cell_ids(variants: Sequence[str], engine_names: Sequence[str], sizes: Sequence[int]) -> list[str]:
    """The cells the matrix times (:func:`cell_ids` less those :func:`untimed_reason` excludes)."""
    return [runfile.cell_name(v, e, z) for z in sizes for v in variants for e in engine_names
            if untimed_reason(v, e) is None]


def cell_ids(variants: Sequence[str], engine_names: Sequence[str], sizes: Sequence[int]) -> list[str]:
    """The matrix's cell names, size-major then variant-major: ``['dense-torch-640', ...]``."""
    return [runfile.cell_name(v, e, z) for z in sizes for v in variants for e in engine_names]


# --- The fixed input ---


def benchmark_image(artifact: Any, imgsz: int | None = None) -> Path:
    """The image every cell of this artifact is timed on: the first validation image, by name, of the
    set rendered at ``imgsz`` where the builder made one (a 640-px cell runs on a 640-px image).

    Falls back to ultralytics' ``bus.jpg`` only when the artifact's dataset is gone (a store restored
    without its datasets); the chosen file is recorded with every number.
    """
    from yolobench.processing import default_images  # noqa: PLC0415

    dataset = (getattr(artifact, "meta", None) or {}).get("dataset") or {}
    data_yaml = (dataset.get("eval_data_yaml") or {}).get(str(imgsz)) or dataset.get("data_yaml")
    if data_yaml and Path(data_yaml).is_file():
        from yolobench.data import check_dataset  # noqa: PLC0415

        try:
            found = check_dataset(data_yaml, decode_images=False).val_files
        except Exception:  # noqa: BLE001 (a dataset that no longer checks out: use the fallback image)
            found = ()
        if found:
            return found[0]
    return default_images()[0]


def benchmark_input(artifact: Any, imgsz: int, batch: int = 1) -> tuple[np.ndarray, Path]:
    """(batch, 3, imgsz, imgsz) float32 in [0, 1]: :func:`benchmark_image` letterboxed, repeated."""
    from yolobench.processing import load_images, preprocess  # noqa: PLC0415

    path = benchmark_image(artifact, imgsz)
    (_, image), = load_images([path])
    images, _ = preprocess([image] * batch, imgsz)
    return images, path


# --- One cell ---


@dataclass(frozen=True)
class CellContext:
    """What a cell's number was measured on; recorded beside it."""

    variant: str
    engine: str
    engine_version: str | None
    form: str | None
    threads: int
    imgsz: int
    batch: int
    fraction_of_supported_ops: float | None  # DeepSparse only: below 1.0 part runs in its fallback
    model_size_bytes: int | None  # the file the engine loaded
    input_image: str
    session: Mapping[str, Any] = field(default_factory=dict)  # Session.describe()
    # 1-minute load average just before timing. DeepSparse spin-waits on every core it was given: on
    # the 2-core VM beside a running build, tiny-profile dense DeepSparse had a 2.7 ms minimum but a
    # p50 of 49 ms in one run and 480 ms in the next, so a number measured on a busy machine says so.
    load_average: float | None = None

    @property
    def cell(self) -> str:
        return runfile.cell_name(self.variant, self.engine, self.imgsz)


# --- Loading in a child process first ---

# An engine whose native code can end the whole process instead of raising (its ``can_abort_process``)
# would take the benchmark session with it, and pytest-benchmark writes its run file only at the end.
# Such engines load and run each cell once in a child process first; a crash there skips the cell with
# the crash's reason (and the gate reports a cell missing from the baseline).
# Compiles seen here took seconds; one still running after ten minutes has hung.
PREFLIGHT_TIMEOUT_S = 600.0
_CHILD_OK, _CHILD_UNSUPPORTED, _CHILD_ERROR = 0, 3, 4
_REASON_PREFIX = "yolobench-unsupported: "  # engines print banners on the same streams
_preflight_passed: set[tuple] = set()


def preflight(artifact: Any, engine_name: str, *, threads: int, imgsz: int, batch: int = 1) -> None:
    """Load and run the cell once in a child process (only for an engine that ``can_abort_process``).

    :class:`EngineUnsupported` when the child crashed, hung or found the engine unsupported; a Python
    error in the child is left for the caller's own load to raise with its traceback.
    """
    if not engines.trait(engine_name, "can_abort_process", False):
        return
    key = (str(artifact.path), engine_name, threads, imgsz, batch)
    if key in _preflight_passed:
        return
    code = "import sys; from yolobench.bench import _preflight_child; sys.exit(_preflight_child(sys.argv[1:]))"
    args = [str(artifact.path), artifact.name, artifact.key, engine_name, str(threads), str(imgsz), str(batch)]
    try:
        child = children.run([sys.executable, "-c", code, *args], capture_output=True,
                             timeout=PREFLIGHT_TIMEOUT_S, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        raise EngineUnsupported(f"{engine_name} did not load {artifact.name} within {PREFLIGHT_TIMEOUT_S:g} s "
                                "(child process killed)") from None
    if child.returncode in (_CHILD_OK, _CHILD_ERROR):
        _preflight_passed.add(key)
        return
    output = (child.stdout or "") + (child.stderr or "")
    if child.returncode == _CHILD_UNSUPPORTED:
        reasons = [line[len(_REASON_PREFIX):] for line in (child.stdout or "").splitlines()
                   if line.startswith(_REASON_PREFIX)]
        raise EngineUnsupported(reasons[-1] if reasons else f"{engine_name} cannot run {artifact.name}")
    raise EngineUnsupported(f"{engine_name} crashed loading {artifact.name} (exit status {child.returncode} in a "
                            f"child process): {_crash_line(output)}")


def _crash_line(output: str) -> str:
    """The line of a native crash report that names the failure (DeepSparse: 'Assertion at ...')."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ("Assertion at", "Error", "error", "Segmentation fault", "Aborted"):
        for line in lines:
            if marker in line and not line.startswith("["):
                return line[:300]
    return lines[-1][:300] if lines else "no output"


def artifact_at(path: str | Path, name: str, key: str) -> Any:
    """The artifact a parent process named by its folder, variant and key (children that load one cell)."""
    from yolobench.store import META_NAME, Artifact  # noqa: PLC0415

    return Artifact(name=name, key=key, path=Path(path), meta=json.loads((Path(path) / META_NAME).read_text()))


def _preflight_child(argv: Sequence[str]) -> int:
    """Child side of :func:`preflight`: exit 0 (ran), 3 (EngineUnsupported, reason on stdout), 4 (error)."""
    path, name, key, engine_name, threads, imgsz, batch = argv
    try:
        artifact = artifact_at(path, name, key)
        session, images, _ = open_cell(artifact, engine_name, threads=int(threads), imgsz=int(imgsz),
                                        batch=int(batch), isolate=False)
        session.run(images)
    except EngineUnsupported as err:
        print(_REASON_PREFIX + err.reason, flush=True)
        return _CHILD_UNSUPPORTED
    except Exception:  # noqa: BLE001 (the parent loads again in-process and raises it with its traceback)
        import traceback  # noqa: PLC0415

        traceback.print_exc()
        return _CHILD_ERROR
    return _CHILD_OK


def _model_size(artifact: Any, session: engines.Session) -> int | None:
    if session.model_path is not None:
        try:
            return Path(session.model_path).stat().st_size
        except OSError:
            return None
    from yolobench.store import WEIGHTS_NAME  # noqa: PLC0415

    return ((getattr(artifact, "meta", None) or {}).get("file_sizes") or {}).get(WEIGHTS_NAME)


def _check_unchanged(artifact: Any, session: engines.Session) -> None:
    """UserError when the file the engine loaded is no longer the one the store verified for this artifact.

    The run file records the artifact's key for every cell; a file replaced under a running benchmark
    would be timed under a key that is not its model's. The cell fails with the reason (it is neither
    measured nor skipped); the next build finds the entry corrupt, sets it aside and rebuilds it."""
    from yolobench.store import WEIGHTS_NAME  # noqa: PLC0415

    check = getattr(artifact, "changed_since_verified", None)
    if check is None:  # not a store entry (a stand-in)
        return
    path = session.model_path if session.model_path is not None else Path(artifact.path) / WEIGHTS_NAME
    changed = check(path)
    if changed:
        raise UserError(f"{artifact.name} (key {artifact.key}) changed in the store after it was verified: {changed}; "
                        f"this cell is not measured; the next run (yolobench build or bench) sets the entry aside as "
                        "corrupt and builds it again")


def open_cell(artifact: Any, engine_name: str, *, threads: int | None = None, imgsz: int | None = None,
              batch: int = 1, isolate: bool = True) -> tuple[engines.Session, np.ndarray, CellContext]:
    """Load the session and the fixed input; :class:`EngineUnsupported` if this engine cannot run it here.

    ``isolate``: for an engine that ``can_abort_process``, load and run it in a child process first (:func:`preflight`).
    """
    engine = engines.get(engine_name)
    ok, reason = engine.available()
    if not ok:
        raise EngineUnsupported(reason)
    threads = default_threads() if threads is None else int(threads)
    imgsz = int(imgsz if imgsz is not None else artifact.imgsz)
    if isolate:
        preflight(artifact, engine_name, threads=threads, imgsz=imgsz, batch=batch)
    session = engine.load(modelfiles.engine_model(artifact, engine), batch=batch, threads=threads, imgsz=imgsz)
    _check_unchanged(artifact, session)
    images, image_path = benchmark_input(artifact, imgsz, batch)
    context = CellContext(
        variant=artifact.name, engine=engine_name, engine_version=session.engine_version, form=session.form,
        threads=session.threads, imgsz=imgsz, batch=batch,
        fraction_of_supported_ops=session.fraction_of_supported_ops,
        model_size_bytes=_model_size(artifact, session), input_image=image_path.name,
        session=session.describe())
    return session, images, context


def measure_session(artifact: Any, engine_name: str, *, index: int = 1, sessions: int = timer.SESSIONS,
                    threads: int | None = None, imgsz: int | None = None, batch: int = 1,
                    timing: Timing | None = None) -> tuple[Latency, CellContext]:
    """Session ``index`` (1-based) of ``sessions`` of one cell: loaded anew, timed for its share of the
    protocol (:func:`yolobench.timer.session_budget`); returns its Latency and the cell's context.

    ``timing(call, index, sessions)`` times it (default :func:`yolobench.timer.measure`).
    """
    timer.session_budget(index, sessions)  # ValueError for an index outside 1..sessions, before loading
    session, images, context = open_cell(artifact, engine_name, threads=threads, imgsz=imgsz, batch=batch)
    context = replace(context, load_average=load_average())
    run = session.run
    del session

    def call() -> object:
        return run(images)

    timing = timing or (lambda fn, k, n: timer.measure(fn, **timer.session_budget(k, n)))
    latency = timing(call, index, sessions)
    if not latency.session_sizes:  # one session: say so, so that the entry describes itself
        latency = replace(latency, session_sizes=(latency.n,))
    return latency, context


def load_average() -> float | None:
    """The 1-minute system load average (runnable processes), or None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


# --- pytest-benchmark as the timer ---


@dataclass(frozen=True)
class RoundsPlan:
    rounds: int
    stopped_early: bool  # MAX_SECONDS bounds the rounds below MIN_ITERS (the protocol's stopped_early)


def protocol_rounds(call_ms: float, *, min_iters: int = timer.MIN_ITERS, min_seconds: float = timer.MIN_SECONDS,
                    max_seconds: float = timer.MAX_SECONDS) -> RoundsPlan:
    """The protocol's stopping rule as a round count for a call of ``call_ms``: at least ``min_iters``
    calls and ``min_seconds`` of timing, at most ``max_seconds``."""
    if not call_ms > 0 or not math.isfinite(call_ms):
        raise ValueError(f"call_ms must be positive and finite, got {call_ms!r}")
    wanted = max(min_iters, math.ceil(min_seconds * timer.MS_PER_S / call_ms))
    cap = max(1, math.floor(max_seconds * timer.MS_PER_S / call_ms))
    return RoundsPlan(rounds=min(wanted, cap), stopped_early=wanted > cap)


def latency_from_benchmark(stats: Any, *, stopped_early: bool = False, session_sizes: Sequence[int] = ()) -> Latency:
    """A :class:`Latency` from pytest-benchmark's per-round durations (seconds; one call per round)."""
    data = getattr(getattr(stats, "stats", stats), "data", None)
    if not data:
        raise ValueError("pytest-benchmark recorded no rounds")
    if getattr(stats, "iterations", 1) != 1:
        raise ValueError("cells are timed one call per round (iterations=1)")
    return Latency.from_samples((s * timer.MS_PER_S for s in data), stopped_early=stopped_early,
                                session_sizes=session_sizes)


def pedantic_timing(benchmark: Any) -> Timing:
    """A ``timing`` that records one session into pytest-benchmark's ``benchmark`` fixture (one ``pedantic`` call).

    The protocol's warm-up plus the calibration calls size the rounds (:func:`protocol_rounds` of their
    mean, for this session's :func:`~yolobench.timer.session_budget`); pytest-benchmark then times them.
    The returned Latency is built from pytest-benchmark's own samples.
    """

    def timing(call: Callable[[], object], index: int, sessions: int) -> Latency:
        budget = timer.session_budget(index, sessions)
        estimate = timer.measure(call, min_iters=CALIBRATION_ITERS, min_seconds=CALIBRATION_SECONDS)
        plan = protocol_rounds(estimate.mean_ms, **budget)
        gc.collect()  # as timer.measure: warm-up garbage is collected before the timed calls
        benchmark.pedantic(call, rounds=plan.rounds, warmup_rounds=0, iterations=1)
        if plan.stopped_early:
            warnings.warn(f"{plan.rounds} rounds of ~{estimate.mean_ms:.0f} ms fill this session's "
                          f"max_seconds={budget['max_seconds']:g} before {budget['min_iters']} samples; "
                          "percentiles are less stable", timer.MeasurementWarning, stacklevel=2)
        return latency_from_benchmark(benchmark.stats, stopped_early=plan.stopped_early)

    return timing


# --- The reference cell ---


class ReferenceCell:
    """The reference cell's sessions, each measured at most once per pytest session.

    Session k of the reference is recorded by its own benchmark test (:meth:`record`; the matrix runs
    it first in pass k), or measured through ``measure(k)`` by the first cell of pass k that needs it
    (when the reference is not selected). If it cannot run here, ``latency(k)`` is None and ``reason``
    says why: speedups are then null, never guessed.
    """

    def __init__(self, measure: Callable[[int, int], Latency],
                 pair: Callable[[int], tuple[str, str]] | None = None):
        self._measure = measure  # (imgsz, session index) -> Latency
        # (variant, engine) of the reference at a size: REFERENCE_CELL, or in a run of model files
        # (``bench --model``) the first file at that size on the reference engine
        self._pair = pair or (lambda imgsz: REFERENCE_CELL)
        self._latency: dict[tuple[int, int], Latency] = {}
        self.reasons: dict[int, str] = {}  # imgsz -> why the reference cannot run at that size
        self.measured_by: dict[tuple[int, int], str] = {}  # "its own test" or "the session fixture"

    def record(self, imgsz: int, index: int, latency: Latency) -> None:
        if (imgsz, index) not in self._latency:
            self._latency[imgsz, index], self.measured_by[imgsz, index] = latency, "its own test"

    def pair(self, imgsz: int) -> tuple[str, str]:
        """(variant, engine) of the reference cell at ``imgsz``."""
        return self._pair(imgsz)

    def name(self, imgsz: int) -> str:
        return runfile.cell_name(*self.pair(imgsz), imgsz)

    def reason(self, imgsz: int) -> str | None:
        return self.reasons.get(imgsz)

    def latency(self, imgsz: int, index: int) -> Latency | None:
        if (imgsz, index) not in self._latency and imgsz not in self.reasons:
            try:
                self._latency[imgsz, index] = self._measure(imgsz, index)
                self.measured_by[imgsz, index] = "the session fixture"
            except EngineUnsupported as err:
                self.reasons[imgsz] = f"reference cell {self.name(imgsz)} cannot run here: {err.reason}"
        return self._latency.get((imgsz, index))


# --- What a cell records ---


def artifact_summary(artifact: Any, imgsz: int | None = None) -> dict[str, Any]:
    """Sparsity and accuracy of the artifact, from its meta.json (the PyTorch model's mAP at build time,
    at ``imgsz`` where the builder measured each export size)."""
    meta = getattr(artifact, "meta", None) or {}
    metrics = meta.get("metrics") or {}
    by_size = meta.get("metrics_by_imgsz")
    if imgsz is not None and by_size is not None:
        metrics = by_size.get(str(imgsz)) or {}
    return {"sparsity": (meta.get("sparsity") or {}).get("overall"), "map50": metrics.get("map50"),
            "map50_95": metrics.get("map50_95")}


def cell_extra_info(latency: Latency, context: CellContext, artifact: Any, reference_latency: Latency | None,
                    *, session_index: int | None = None, sessions: int | None = None,
                    reference_cell: str | None = None) -> dict[str, Any]:
    """The run-file ``extra_info`` of one cell, or of session ``session_index`` of ``sessions`` of it
    (``runfile.cell_extra_info`` plus where it came from). ``reference_cell``: its name where it is not
    ``runfile.reference_cell_name`` (a run of model files)."""
    summary = artifact_summary(artifact, context.imgsz)
    info = runfile.cell_extra_info(
        latency, variant=context.variant, engine=context.engine, engine_version=context.engine_version,
        threads=context.threads, imgsz=context.imgsz, batch=context.batch, reference_latency=reference_latency,
        sparsity=summary["sparsity"], map50=summary["map50"], map50_95=summary["map50_95"],
        model_size_bytes=context.model_size_bytes, form=context.form,
        fraction_of_supported_ops=context.fraction_of_supported_ops, session_index=session_index,
        sessions=sessions, reference_cell=reference_cell)
    meta = getattr(artifact, "meta", None) or {}
    info.update({
        "artifact_key": getattr(artifact, "key", None),
        "profile": meta.get("profile"),
        "input_image": context.input_image,
        "load_average": context.load_average,
        "protocol": timer.protocol(),
        "session": dict(context.session),
    })
    if meta.get("weights"):  # a ladder from the user's checkpoint: which file, by digest
        info["weights"] = {k: meta["weights"].get(k) for k in ("sha256", "family", "path")}
    if modelfiles.is_model_file(artifact):  # a file given to `bench --model`: which file, by digest
        origin = meta["origin"]
        info["model_file"] = {"path": origin.get("model_file"), "sha256": origin.get("sha256"),
                              "form": origin.get("form"), "quantized": bool(meta.get("quantized"))}
    return info


def engine_map(artifact: Any, engine_name: str, *, threads: int | None = None,
               imgsz: int | None = None) -> dict[str, Any]:
    """mAP@0.5 and mAP@0.5:0.95 of this engine on the artifact's validation split (``yolobench.evaluate``)."""
    session, _, context = open_cell(artifact, engine_name, threads=threads, imgsz=imgsz)
    return session_map(session, artifact, context.imgsz)


def session_map(session: engines.Session, artifact: Any, imgsz: int) -> dict[str, Any]:
    """mAP of an open session on the artifact's validation split (the builder recreates a missing built-in one)."""
    from yolobench.evaluate import evaluate  # noqa: PLC0415

    return evaluate(session.run, artifact.eval_data_yaml(imgsz), imgsz)
