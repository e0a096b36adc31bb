"""The measurement protocol, in one place: batch-1, single-stream latency after warm-up.

``measure(fn)`` calls ``fn()`` (one batch-1 inference, pre/post-processing excluded unless the caller
includes it) until warm-up is over, then times every call until both a minimum iteration count and a
minimum duration are reached. The result is a :class:`Latency`: the per-iteration samples and the
statistics every report and gate reads (mean, p50, p90, p99, std, FPS = 1000 / mean).

``machine_info()`` names the machine a number was measured on; every result carries it.

Must not: know about engines, models or files (callers pass a closure), sleep, or change thread
settings (threads are fixed by the engine session and recorded by the caller). The clock is injectable
so the protocol itself is unit-tested without real timing.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import re
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

# --- The protocol. Change a number here and every benchmark, asv track and gate follows. ---

# First calls pay one-time costs (lazy kernel selection / JIT in DeepSparse and OpenVINO, allocator
# growth, cold caches and page faults); 10 calls cover them on every engine seen so far.
WARMUP_MIN_ITERS = 10
# Clock frequency and caches settle over time, not over call counts: a 3 ms model would finish 10
# warm-up calls in 30 ms, before boost clocks and the OS scheduler have settled.
WARMUP_MIN_SECONDS = 1.0
# p99 is read from the slowest 1% of samples: with 200 samples it rests on two samples instead of
# the single maximum it would be at 100, so one stall no longer decides it.
MIN_ITERS = 200
# On a shared 2-core VM noise comes in bursts (neighbours, timer ticks, throttling) lasting up to
# seconds; 5 s of timing spans several of them so one burst is a minority of the samples.
# Fast cells (3 ms) get ~1600 samples in that time; slow ones (70 ms) are bounded by MIN_ITERS (~14 s).
MIN_SECONDS = 5.0
# A cell that cannot reach MIN_ITERS in 2 minutes (an engine fallen back to a slow path) is stopped
# and marked ``stopped_early`` rather than stalling CI; its percentiles are then less stable.
MAX_SECONDS = 120.0

# Each cell is timed in SESSIONS independent sessions: loaded (compiled) anew, warmed up anew, each
# timed for its share of MIN_ITERS, MIN_SECONDS and MAX_SECONDS (session_budget), samples pooled. Why:
# what differs between two runs is mostly not in one session's spread. The same ONNX compiled twice by
# DeepSparse ran up to ~15% apart (the same ONNX compiled twice, measured), and two runs of unchanged code on this VM moved single
# cells by 1.25-1.29x (results/gate/2026-11-28-smoke-a-vs-b.txt) while each run's IQR was 0.4-1.6 ms.
# The spread of the sessions' medians shows that variation inside one run; the gate uses it as noise.
# Three: the fewest for which one odd session is visible as the odd one out.
# The benchmark matrix runs session k of every cell before session k+1 of any (benchmarks/conftest.py):
# this VM has slow phases lasting seconds to minutes in which ONNX Runtime's int8 graphs run ~1.65x
# slower (15.5 vs 26 ms, two modes; results/trials/2026-11-28-ort-slow-mode.md). With a cell's
# sessions back to back, one such phase covered all three and the gate saw a 1.75x "regression" of unchanged code
# (results/gate/2026-11-28-main-job-fresh-clone.txt); spread over the whole run, one phase hits one
# session of many cells, and the gate reads each cell's fastest session.
SESSIONS = 3

# Samples are stored in run files rounded to 0.1 microsecond: far below any latency that matters
# here (>= 1 ms), and it keeps a committed run file about 2.5x smaller.
SAMPLE_DECIMALS = 4

MS_PER_S = 1000.0


class MeasurementWarning(UserWarning):
    """A measurement ended before the protocol's minimums were met (``MAX_SECONDS`` reached)."""


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between order statistics.

    Same definition as ``numpy.percentile``'s default (Hyndman & Fan type 7), so numbers agree with
    what a user computes from the stored samples.
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    weight = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * weight


def iqr(samples: Sequence[float]) -> float:
    """Interquartile range (p75 - p25): the spread of the middle half, blind to a few stalls."""
    return percentile(samples, 75.0) - percentile(samples, 25.0)


@dataclass(frozen=True)
class Latency:
    """Per-iteration latency of one cell, in milliseconds. Build it with :meth:`from_samples`."""

    samples_ms: tuple[float, ...]
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    std_ms: float  # sample standard deviation (n - 1); 0.0 for a single sample
    n: int
    fps: float  # 1000 / mean_ms: single-stream throughput, as the blog reports it
    stopped_early: bool = False  # MAX_SECONDS ended the timing before MIN_ITERS / MIN_SECONDS
    # Samples per independent session, in order (samples_ms is their concatenation); () = not recorded.
    session_sizes: tuple[int, ...] = ()

    @classmethod
    def from_samples(cls, samples_ms: Iterable[float], *, stopped_early: bool = False,
                     session_sizes: Sequence[int] = ()) -> "Latency":
        samples = tuple(float(s) for s in samples_ms)
        if not samples:
            raise ValueError("Latency needs at least one sample")
        sizes = tuple(session_sizes)
        if sizes and (any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in sizes)
                      or sum(sizes) != len(samples)):
            raise ValueError(f"session_sizes {list(sizes)} must be positive and add up to the "
                             f"{len(samples)} samples")
        if any(not math.isfinite(s) or s < 0.0 for s in samples):
            raise ValueError("latency samples must be finite and non-negative")
        n = len(samples)
        mean = math.fsum(samples) / n
        if mean <= 0.0:
            raise ValueError("mean latency is zero: the clock did not advance")
        std = math.sqrt(math.fsum((s - mean) ** 2 for s in samples) / (n - 1)) if n > 1 else 0.0
        return cls(
            samples_ms=samples,
            mean_ms=mean,
            p50_ms=percentile(samples, 50.0),
            p90_ms=percentile(samples, 90.0),
            p99_ms=percentile(samples, 99.0),
            std_ms=std,
            n=n,
            fps=MS_PER_S / mean,
            stopped_early=stopped_early,
            session_sizes=sizes,
        )

    @classmethod
    def pooled(cls, sessions: Sequence["Latency"]) -> "Latency":
        """One Latency from independent sessions' samples, keeping which sample came from which."""
        if not sessions:
            raise ValueError("pooled() needs at least one session")
        return cls.from_samples([s for lat in sessions for s in lat.samples_ms],
                                stopped_early=any(lat.stopped_early for lat in sessions),
                                session_sizes=[lat.n for lat in sessions])

    def session_p50s_ms(self) -> tuple[float, ...]:
        """Median of each independent session (empty when sessions were not recorded)."""
        out, start = [], 0
        for size in self.session_sizes:
            out.append(percentile(self.samples_ms[start:start + size], 50.0))
            start += size
        return tuple(out)

    @property
    def session_spread_ms(self) -> float | None:
        """Largest minus smallest session median: what re-loading the same model moved (None: < 2 sessions)."""
        p50s = self.session_p50s_ms()
        return max(p50s) - min(p50s) if len(p50s) >= 2 else None

    @property
    def iqr_ms(self) -> float:
        return iqr(self.samples_ms)

    def stats_ms(self) -> dict[str, float]:
        """The summary statistics, as stored under ``latency_ms`` in a run file."""
        return {"mean": self.mean_ms, "p50": self.p50_ms, "p90": self.p90_ms, "p99": self.p99_ms,
                "std": self.std_ms}

    def to_dict(self) -> dict:
        data = asdict(self)
        data["samples_ms"] = list(self.samples_ms)
        data["session_sizes"] = list(self.session_sizes)
        return data


def warm_up(fn: Callable[[], object], *, min_iters: int = WARMUP_MIN_ITERS,
            min_seconds: float = WARMUP_MIN_SECONDS, clock: Callable[[], float] = time.perf_counter) -> int:
    """Call ``fn()`` until both ``min_iters`` calls and ``min_seconds`` have passed; returns the calls."""
    start = clock()
    done = 0
    while done < min_iters or clock() - start < min_seconds:
        fn()
        done += 1
    return done


def session_shares(total: int, sessions: int) -> list[int]:
    """``total`` split into ``sessions`` near-equal positive parts, larger first (sum == total)."""
    if sessions < 1 or total < sessions:
        raise ValueError(f"cannot split {total} into {sessions} positive parts")
    base, extra = divmod(total, sessions)
    return [base + (1 if i < extra else 0) for i in range(sessions)]


def session_budget(index: int, sessions: int = SESSIONS, *, min_iters: int = MIN_ITERS,
                   min_seconds: float = MIN_SECONDS, max_seconds: float = MAX_SECONDS) -> dict:
    """Session ``index`` (1-based) of ``sessions``: its share of the protocol's minimums and maximum,
    as keyword arguments of :func:`measure` (the shares of all sessions add up to the protocol's)."""
    if not 1 <= index <= sessions:
        raise ValueError(f"session index {index} is not in 1..{sessions}")
    return {"min_iters": session_shares(min_iters, sessions)[index - 1],
            "min_seconds": min_seconds / sessions, "max_seconds": max_seconds / sessions}


def measure(
    fn: Callable[[], object],
    *,
    warmup_min_iters: int = WARMUP_MIN_ITERS,
    warmup_min_seconds: float = WARMUP_MIN_SECONDS,
    min_iters: int = MIN_ITERS,
    min_seconds: float = MIN_SECONDS,
    max_seconds: float = MAX_SECONDS,
    clock: Callable[[], float] = time.perf_counter,
) -> Latency:
    """Time ``fn()`` by the protocol above; ``clock()`` returns seconds.

    Warm-up runs until both ``warmup_min_iters`` calls and ``warmup_min_seconds`` have passed; its
    calls are not recorded. Timing then runs until both ``min_iters`` samples and ``min_seconds`` of
    timing are reached, or ``max_seconds`` have passed (then the result is ``stopped_early`` and a
    :class:`MeasurementWarning` is issued). Each sample is one call, clock read just before and after.
    """
    if warmup_min_iters < 0 or min_iters < 1:
        raise ValueError("need warmup_min_iters >= 0 and min_iters >= 1")
    if max_seconds <= 0:
        raise ValueError("max_seconds must be positive")

    warm_up(fn, min_iters=warmup_min_iters, min_seconds=warmup_min_seconds, clock=clock)
    gc.collect()  # collect warm-up garbage now rather than inside a timed call
    samples: list[float] = []
    start = clock()
    while True:
        elapsed = clock() - start
        if len(samples) >= min_iters and elapsed >= min_seconds:
            stopped_early = False
            break
        if elapsed >= max_seconds:
            stopped_early = True
            break
        before = clock()
        fn()
        samples.append((clock() - before) * MS_PER_S)

    if stopped_early:
        warnings.warn(
            f"measurement stopped at max_seconds={max_seconds:g} with {len(samples)} samples "
            f"(protocol: >= {min_iters} samples and >= {min_seconds:g} s); percentiles are less stable",
            MeasurementWarning,
            stacklevel=2,
        )
    if not samples:  # max_seconds elapsed before the first timed call (only with a broken clock)
        raise RuntimeError("no samples recorded: max_seconds elapsed before the first call")
    return Latency.from_samples(samples, stopped_early=stopped_early)


def protocol() -> dict[str, float]:
    """The protocol constants, for recording next to results."""
    return {
        "warmup_min_iters": WARMUP_MIN_ITERS,
        "warmup_min_seconds": WARMUP_MIN_SECONDS,
        "min_iters": MIN_ITERS,
        "min_seconds": MIN_SECONDS,
        "max_seconds": MAX_SECONDS,
        "sessions": SESSIONS,
        "batch": 1,
        "streams": 1,
    }


# --- Naming the machine ---

# Instruction sets that decide which kernels DeepSparse / OpenVINO / ORT pick (VNNI for INT8).
ISA_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "asimd", "sve")

# /proc/cpuinfo spells the model differently per architecture (x86; ARM boards, after the processor
# blocks; MIPS; POWER, s390).
_CPUINFO_MODEL_KEYS = ("model name", "Model", "cpu model", "Processor", "cpu")


# CPU generations this project has measured on: the brand string does not tell them apart (both say
# "AMD EPYC" in these VMs) and engines rank differently on them, so every number names the generation.
KNOWN_GENERATIONS = {("AuthenticAMD", 25, 17): "Zen 4", ("AuthenticAMD", 26, 2): "Zen 5"}


def default_threads() -> int:
    """The cores this process may use (affinity-aware): the default thread count of every engine and
    of training."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (non-Linux)
        return os.cpu_count() or 1


def cpu_generation(machine: Mapping | None) -> str | None:
    """``"AMD family 26 model 2 (Zen 5)"`` from a run file's machine_info (pytest-benchmark's ``cpu``
    record, or yolobench's own ``machine_info()``, possibly under a key), None where it is not recorded."""
    if not isinstance(machine, Mapping):
        return None
    records = [machine, machine.get("cpu"), *[v for v in machine.values() if isinstance(v, Mapping)]]
    for record in records:
        if not isinstance(record, Mapping):
            continue
        vendor = record.get("cpu_vendor") or record.get("vendor_id_raw")
        # The generation names folders (results/report-<profile>-<generation>, the baseline, the asv
        # machine), and a run file comes from anywhere: of its vendor only letters and digits are kept
        # (every CPU's vendor id is such a word: AuthenticAMD, GenuineIntel, "  Shanghai  ").
        vendor = re.sub(r"[^A-Za-z0-9]", "", vendor) if isinstance(vendor, str) else None
        family = record.get("cpu_family", record.get("family"))
        model = record.get("cpu_model_id", record.get("model"))
        if isinstance(family, int) and isinstance(model, int):
            short = {"AuthenticAMD": "AMD", "GenuineIntel": "Intel"}.get(vendor or "", vendor or "CPU")
            name = KNOWN_GENERATIONS.get((vendor, family, model))
            return f"{short} family {family} model {model}" + (f" ({name})" if name else "")
    return None


def generation_slug(generation: str) -> str:
    """``"AMD family 26 model 2 (Zen 5)"`` -> ``"amd-family26-model2"`` (file names of per-generation baselines)."""
    words = generation.split(" (")[0].lower().split()
    return "-".join([words[0], *(f"{a}{b}" for a, b in zip(words[1::2], words[2::2]))])


def parse_cpuinfo(text: str) -> tuple[str | None, list[str]]:
    """(CPU model, flags of interest) from the text of /proc/cpuinfo; the first value of each key wins."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    model = next((fields[k] for k in _CPUINFO_MODEL_KEYS if fields.get(k)), None)
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return model, [flag for flag in ISA_FLAGS_OF_INTEREST if flag in flags]


def _memory_total_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_identity() -> dict:
    """Vendor, family and model number of the first CPU in /proc/cpuinfo (x86; {} elsewhere)."""
    try:
        fields: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
        return {"cpu_vendor": fields["vendor_id"], "cpu_family": int(fields["cpu family"]),
                "cpu_model_id": int(fields["model"])}
    except (OSError, KeyError, ValueError):
        return {}


def machine_info() -> dict:
    """What names the machine in every result: CPU model, cores, usable cores, memory, ISA flags."""
    try:
        model, isa = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        model, isa = None, []
    try:
        usable = len(os.sched_getaffinity(0))  # what this process may run on (taskset, cgroups)
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    identity = _cpu_identity()
    return {
        "cpu_model": model or platform.processor() or platform.machine() or "unknown",
        **identity,
        "cpu_generation": cpu_generation(identity),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_total_bytes": _memory_total_bytes(),
        "isa": isa,
        "arch": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
    }
