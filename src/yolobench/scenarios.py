"""Scenarios beside single-stream latency: what a deployment pays end to end, in parallel, in memory.

The matrix (``bench.measure_session``) times one thing: the engine's ``run`` on a prepared batch-1
input, one request at a time. Users of CPU inference ask three more questions, each measured here on
the same artifact, engine, size and threads as a matrix cell and written as its own benchmark entry:

- ``e2e``: end-to-end latency of one frame, as a video pipeline like the blog's pays it: letterbox
  and normalise the decoded image (BGR, its own size), run, decode the head, confidence filter and
  NMS, boxes back in image coordinates. Timed by the protocol of :mod:`yolobench.timer` (one session);
  ``inference_p50_ms`` (the engine alone, same session, same input) says how much is pre/post-processing.
- ``throughput``: ``streams`` independently loaded sessions, each with its share of the threads
  (``threads // streams``, at least 1), called concurrently from as many Python threads for a fixed
  window; throughput = frames completed / wall time. It is what ``benchmark_app -hint throughput`` and
  ``deepsparse.benchmark -s async`` answer (with their own engine-specific stream machinery; this one
  is the same for every engine, so it compares engines, not stream schedulers). Every engine here
  releases the GIL while it computes.
- ``memory``: peak resident memory (RSS, :func:`peak_rss_mb`) of a fresh process that loads the cell and runs
  it ``MEMORY_RUNS`` times: Python, numpy, the engine's libraries, the model and its working memory,
  what a one-model deployment process holds. A process of its own because the peak of a long
  benchmark process says nothing about one cell. (Engines import their libraries at different points,
  some only when loading, so a "before load" figure would not mean the same on each.)

A fixed batch above 1 is not a scenario here: the exports are batch 1 (the engines compile faster with
the batch fixed), so a batch option needs exports at that batch.

Entries carry ``extra_info.scenario`` and ``extra_info.scenario_cell`` (e.g.
``pruned_quant-deepsparse-640-e2e``), never ``cell``: the matrix's readers skip them, and
:func:`load_scenarios` reads and validates them. Must not: judge (the gate does) or write files.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from yolobench import runfile
from yolobench.errors import UserError

E2E, THROUGHPUT, MEMORY = "e2e", "throughput", "memory"
SCENARIOS = (E2E, THROUGHPUT, MEMORY)
# The post-processing a deployment uses (ultralytics' predictor defaults), not mAP's low threshold.
E2E_CONF = 0.25
E2E_IOU = 0.45
THROUGHPUT_WARMUP_S = 1.0
THROUGHPUT_SECONDS = 5.0  # the timed window: at 640 px a 2-core call is ~20-200 ms, so 25-250 frames
MEMORY_RUNS = 10
MEMORY_TIMEOUT_S = 600.0
MB = 1e6


def parse_scenarios(text: str | Sequence[str] | None) -> list[str]:
    """'e2e,throughput' / 'all' / a list -> scenario names in SCENARIOS order; UserError for an unknown one."""
    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else [x for part in text for x in str(part).split(",")]
    names = {i.strip() for i in items if i.strip()}
    if "all" in names:
        return list(SCENARIOS)
    unknown = sorted(names - set(SCENARIOS))
    if unknown:
        raise UserError(f"unknown scenario {unknown[0]!r}; choose from: {', '.join(SCENARIOS)}, all")
    return [s for s in SCENARIOS if s in names]


def scenario_cell(variant: str, engine: str, imgsz: int, scenario: str, streams: int | None = None) -> str:
    suffix = f"{scenario}{streams}" if scenario == THROUGHPUT and streams else scenario
    return f"{runfile.cell_name(variant, engine, imgsz)}-{suffix}"


# --- end to end ---------------------------------------------------------------------------------------


def end_to_end_call(session, image_bgr, imgsz: int) -> Callable[[], list]:
    """One frame through the whole pipeline: letterbox, run, decode + NMS, boxes in image coordinates."""
    from yolobench.processing import postprocess, preprocess

    def call():
        batch, infos = preprocess([image_bgr], imgsz)
        return postprocess(session.run(batch), infos, conf=E2E_CONF, iou=E2E_IOU)

    return call


# --- throughput ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    streams: int
    threads_per_stream: int
    seconds: float  # wall time from the common start to the last stream's last completed call
    frames: int
    frames_per_stream: tuple[int, ...]
    call_ms: tuple[float, ...] = field(repr=False)  # every call of every stream

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


def threads_per_stream(threads: int, streams: int) -> int:
    return max(1, int(threads) // int(streams))


def run_streams(calls: Sequence[Callable[[], object]], *, seconds: float = THROUGHPUT_SECONDS,
                warmup_s: float = THROUGHPUT_WARMUP_S, threads_per_stream: int = 1,
                clock: Callable[[], float] = time.perf_counter) -> Throughput:
    """Call each of ``calls`` in a loop, all concurrently, until ``seconds`` after a common start.

    Each stream warms up for ``warmup_s`` first (all together, then a barrier), so compilation and
    first-call costs stay out of the window. A stream finishes the call it is in when the window
    closes; the wall time runs to the last such completion, so frames / seconds is not flattered.
    """
    if not calls:
        raise ValueError("no streams")
    barrier = threading.Barrier(len(calls))
    counts = [0] * len(calls)
    durations: list[list[float]] = [[] for _ in calls]
    ends = [0.0] * len(calls)
    errors: list[BaseException] = []
    start_box: list[float] = []

    def worker(k: int) -> None:
        try:
            call = calls[k]
            warm_end = clock() + warmup_s
            call()
            while clock() < warm_end:
                call()
            barrier.wait()
            if k == 0:
                start_box.append(clock())
            barrier.wait()
            deadline = start_box[0] + seconds
            while True:
                t0 = clock()
                if t0 >= deadline:
                    break
                call()
                t1 = clock()
                durations[k].append((t1 - t0) * 1000.0)
                counts[k] += 1
                ends[k] = t1
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(err)
            barrier.abort()

    workers = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(len(calls))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:  # the stream that failed first; the others only saw the barrier break
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
    wall = max(ends) - start_box[0]
    if not wall > 0 or sum(counts) == 0:
        raise RuntimeError("no call completed in the throughput window")
    return Throughput(streams=len(calls), threads_per_stream=threads_per_stream, seconds=wall, frames=sum(counts),
                      frames_per_stream=tuple(counts), call_ms=tuple(d for ds in durations for d in ds))


# --- memory -------------------------------------------------------------------------------------------

_MEMORY_MARK = "YOLOBENCH_MEMORY "


def measure_memory(artifact: Any, engine_name: str, *, threads: int, imgsz: int) -> dict[str, Any]:
    """Peak RSS of a fresh process that loads this cell and runs it ``MEMORY_RUNS`` times, with the
    session's engine_version, form and threads; :class:`EngineUnsupported` where the engine cannot run it."""
    from yolobench import bench, children
    from yolobench.engines import EngineUnsupported

    bench.preflight(artifact, engine_name, threads=threads, imgsz=imgsz)  # a native crash skips, as in the matrix
    code = "import sys; from yolobench.scenarios import _memory_child; sys.exit(_memory_child(sys.argv[1:]))"
    args = [str(artifact.path), artifact.name, artifact.key, engine_name, str(threads), str(imgsz)]
    done = children.run([sys.executable, "-c", code, *args], capture_output=True, timeout=MEMORY_TIMEOUT_S)
    line = next((l for l in (done.stdout or "").splitlines() if l.startswith(_MEMORY_MARK)), None)
    if done.returncode != 0 or line is None:
        tail = ((done.stderr or "").strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"measuring the memory of {artifact.name} on {engine_name} failed: {tail}")
    values = json.loads(line[len(_MEMORY_MARK):])
    if "unsupported" in values:
        raise EngineUnsupported(values["unsupported"])
    return values


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started running its current program.

    Linux: ``VmHWM`` from /proc/self/status, which starts afresh at execve. Not ``ru_maxrss``: Linux
    keeps it across fork and execve, so a child started from a 1.8 GB benchmark process reported
    1.8 GB for every cell (the smoke main job of 2026-12-02, Zen 5). Elsewhere ``ru_maxrss`` is all
    there is (kilobytes on Linux, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak * 1024 / MB


def _memory_child(argv: Sequence[str]) -> int:
    from yolobench import bench
    from yolobench.engines import EngineUnsupported

    path, name, key, engine_name, threads, imgsz = argv
    artifact = bench.artifact_at(path, name, key)
    try:
        session, images, context = bench.open_cell(artifact, engine_name, threads=int(threads), imgsz=int(imgsz),
                                                   isolate=False)
    except EngineUnsupported as err:
        print(_MEMORY_MARK + json.dumps({"unsupported": err.reason}), flush=True)
        return 0
    for _ in range(MEMORY_RUNS):
        session.run(images)
    print(_MEMORY_MARK + json.dumps({"peak_rss_mb": peak_rss_mb(),
                                     "runs": MEMORY_RUNS, "engine_version": context.engine_version,
                                     "form": context.form, "threads": context.threads}), flush=True)
    return 0


# --- run-file entries ---------------------------------------------------------------------------------


def extra_info(scenario: str, *, variant: str, engine: str, imgsz: int, threads: int, engine_version: str | None,
               form: str | None, artifact_key: str | None, values: Mapping[str, Any],
               streams: int | None = None) -> dict[str, Any]:
    from yolobench.timer import machine_info

    info = {
        "scenario": scenario,
        "scenario_cell": scenario_cell(variant, engine, imgsz, scenario, streams),
        "variant": variant, "engine": engine, "imgsz": int(imgsz), "threads": int(threads),
        "engine_version": engine_version, "form": form, "artifact_key": artifact_key,
        "cpu_model": machine_info()["cpu_model"],
    }
    info.update(values)
    return info


def e2e_values(e2e, inference) -> dict[str, Any]:
    """Run-file numbers of an e2e entry from two :class:`~yolobench.timer.Latency` (whole frame, engine alone)."""
    stats = e2e.stats_ms()
    return {"latency_ms": stats, "samples_ms": [round(s, 4) for s in e2e.samples_ms], "fps": e2e.fps,
            "inference_p50_ms": inference.p50_ms,
            "overhead_fraction": max(0.0, 1.0 - inference.p50_ms / stats["p50"]) if stats["p50"] > 0 else None}


def throughput_values(result: Throughput) -> dict[str, Any]:
    """Run-file numbers of a throughput entry (the report sets them against the same run's single-stream FPS)."""
    from yolobench.timer import percentile

    return {"streams": result.streams, "threads_per_stream": result.threads_per_stream,
            "seconds": result.seconds, "frames": result.frames, "frames_per_stream": list(result.frames_per_stream),
            "fps": result.fps, "call_p50_ms": percentile(result.call_ms, 50),
            "call_p99_ms": percentile(result.call_ms, 99)}


@dataclass(frozen=True)
class ScenarioResult:
    name: str  # scenario_cell
    scenario: str
    variant: str
    engine: str
    imgsz: int
    threads: int
    fps: float | None  # e2e and throughput
    p50_ms: float | None  # e2e: the frame; throughput: one call
    p99_ms: float | None
    peak_rss_mb: float | None  # memory
    extra: Mapping[str, Any]


def _number(entry: Mapping, key: str, where: str, nullable: bool = False) -> float | None:
    value = entry.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise UserError(f"{where}: '{key}' must be a finite number >= 0, got {value!r}")
    return float(value)


def _integer(entry: Mapping, key: str, where: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserError(f"{where}: '{key}' must be an integer >= 1, got {value!r}")
    return value


def load_scenarios(path: str | Path) -> dict[str, ScenarioResult]:
    """The scenario entries of a run file (none: an empty dict); UserError names the entry and field."""
    from yolobench.runfile import read_document  # plain or .gz, one-line errors

    data = read_document(path)
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    out: dict[str, ScenarioResult] = {}
    for index, bench in enumerate(benchmarks if isinstance(benchmarks, list) else []):
        entry = (bench.get("extra_info") if isinstance(bench, dict) else None) or {}
        if not isinstance(entry, dict) or "scenario" not in entry:
            continue
        where = f"{path}: benchmarks[{index}] ({bench.get('name')}) extra_info"
        scenario = entry.get("scenario")
        if scenario not in SCENARIOS:
            raise UserError(f"{where}: unknown scenario {scenario!r}")
        name = entry.get("scenario_cell")
        if not isinstance(name, str) or name in out:
            raise UserError(f"{where}: 'scenario_cell' must be a unique name, got {name!r}")
        fps = p50 = p99 = rss = None
        if scenario == E2E:
            fps = _number(entry, "fps", where)
            stats = entry.get("latency_ms") or {}
            p50, p99 = _number(stats, "p50", where), _number(stats, "p99", where)
        elif scenario == THROUGHPUT:
            fps = _number(entry, "fps", where)
            p50, p99 = _number(entry, "call_p50_ms", where), _number(entry, "call_p99_ms", where)
            frames = entry.get("frames")
            seconds = _number(entry, "seconds", where)
            if seconds == 0:
                raise UserError(f"{where}: 'seconds' must be a number > 0, got {entry.get('seconds')!r}")
            if not isinstance(frames, int) or abs(frames / seconds - fps) > 1e-6 * max(1.0, fps):
                raise UserError(f"{where}: fps {fps:g} is not frames / seconds ({frames!r} / {seconds:g})")
        else:
            rss = _number(entry, "peak_rss_mb", where)
        imgsz, threads = _integer(entry, "imgsz", where), _integer(entry, "threads", where)
        out[name] = ScenarioResult(name=name, scenario=scenario, variant=str(entry.get("variant")),
                                   engine=str(entry.get("engine")), imgsz=imgsz,
                                   threads=threads, fps=fps, p50_ms=p50, p99_ms=p99,
                                   peak_rss_mb=rss, extra=dict(entry))
    return out
