"""Paired, interleaved A/B timing: is B slower than A, beyond a threshold, on this machine now?

Comparing a run with a file from another day cannot see a 10% change on a shared 2-core VM (cells of
unchanged code moved up to 1.69x between runs). The method that can: measure A and B in the same job,
alternating, each measurement in a fresh process (load, warm up, time a fixed share, reduce to one
median), and test the **paired** log-ratios ``ln(B/A)``, adding pairs until the answer is clear. Slow
phases of the machine then hit both sides of a pair alike and cancel in the ratio.

Decision rule, after each pair once ``MIN_PAIRS`` are in: a two-sided t interval of the mean log-ratio
at level ``1 - alpha / cells`` (Bonferroni: several cells at once keep the family's false-alarm rate):

- its lower end above ``ln(threshold)``: **slower** (B is slower than A by more than the threshold);
- its upper end below ``ln(threshold)``: **not slower**;
- else another pair, up to ``max_pairs``; then B is called slower only if the point estimate passes the
  threshold *and* the interval excludes 1 (no change), and the verdict says it was not clear. The point
  estimate alone decided before; on ONNX Runtime's INT8 graph, whose processes land in two speed modes
  independently of each other, an identical copy ended at the cap at 1.056 [1.002, 1.112] and was
  called slower (results/ab/2026-12-03-zen5-power-s6.jsonl): at the cap the estimate's noise is as
  large as the threshold, and a verdict that flips on it is a false alarm half the time.

Pair order alternates ABBA so that a drift within a pair does not favour one side.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from statistics import mean, median, stdev

from yolobench import children

MIN_PAIRS = 5  # below this, the spread of the log-ratios is not known well enough to stop
DEFAULT_THRESHOLD = 1.05  # "slower" means more than 5% slower
DEFAULT_ALPHA = 0.05
DEFAULT_MAX_PAIRS = 40
DEFAULT_SECONDS = 1.0  # timed share of one measurement (after warm-up), per process
WARMUP_SECONDS = 0.5

SLOWER, NOT_SLOWER = "slower", "not slower"


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom: Hill's (1970) expansion around the
    normal quantile, within 0.3% of exact from df 4 to the 0.99875 quantile (tests/test_ab.py)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    z = _normal_quantile(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


@dataclass(frozen=True)
class Interval:
    pairs: int
    ratio: float  # exp(mean log-ratio): B's time over A's
    low: float
    high: float


def interval(log_ratios: list[float], *, alpha: float = DEFAULT_ALPHA, cells: int = 1) -> Interval:
    """The ratio B/A with its (1 - alpha/cells) interval from paired log-ratios."""
    n = len(log_ratios)
    if n < 2:
        raise ValueError("an interval needs at least two pairs")
    m, s = mean(log_ratios), stdev(log_ratios)
    half = t_quantile(1 - alpha / cells / 2, n - 1) * s / math.sqrt(n)
    return Interval(pairs=n, ratio=math.exp(m), low=math.exp(m - half), high=math.exp(m + half))


def decide(ci: Interval, threshold: float) -> str | None:
    """SLOWER / NOT_SLOWER once the interval is clear of the threshold, else None (another pair)."""
    if ci.low > threshold:
        return SLOWER
    if ci.high < threshold:
        return NOT_SLOWER
    return None


def at_the_cap(ci: Interval, threshold: float) -> str:
    """The verdict when the pairs ran out before the interval cleared the threshold."""
    return SLOWER if ci.ratio > threshold and ci.low > 1.0 else NOT_SLOWER


@dataclass
class Comparison:
    label: str
    a_ms: list[float] = field(default_factory=list)
    b_ms: list[float] = field(default_factory=list)
    verdict: str | None = None
    clear: bool = False
    seconds: float = 0.0

    @property
    def log_ratios(self) -> list[float]:
        return [math.log(b / a) for a, b in zip(self.a_ms, self.b_ms)]


def run_sequential(measure_a, measure_b, *, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
                   cells: int = 1, max_pairs: int = DEFAULT_MAX_PAIRS, label: str = "B vs A",
                   say=lambda line: None) -> tuple[Comparison, Interval]:
    """Pairs ABBA-alternated until :func:`decide` is clear or ``max_pairs``; ``measure_*()`` -> ms."""
    if threshold <= 1.0 or max_pairs < MIN_PAIRS:
        raise ValueError(f"threshold must be > 1 and max_pairs >= {MIN_PAIRS}")
    comparison = Comparison(label)
    started = time.monotonic()
    ci = None
    for i in range(max_pairs):
        if i % 2 == 0:
            a = measure_a()
            b = measure_b()
        else:
            b = measure_b()
            a = measure_a()
        comparison.a_ms.append(a)
        comparison.b_ms.append(b)
        if len(comparison.a_ms) < 2:
            continue
        ci = interval(comparison.log_ratios, alpha=alpha, cells=cells)
        say(f"{label}: pair {ci.pairs}: A {a:.2f} ms, B {b:.2f} ms; B/A {ci.ratio:.3f} "
            f"[{ci.low:.3f}, {ci.high:.3f}]")
        if ci.pairs >= MIN_PAIRS:
            verdict = decide(ci, threshold)
            if verdict is not None:
                comparison.verdict, comparison.clear = verdict, True
                break
    if comparison.verdict is None:  # at the cap: not clear (see the module's decision rule)
        comparison.verdict = at_the_cap(ci, threshold)
    comparison.seconds = time.monotonic() - started
    return comparison, ci


# --- one measurement: a fresh process loads, warms up, times a fixed share, prints its median --------

_MARK = "YOLOBENCH_AB_MEDIAN_MS "
MEASURE_TIMEOUT_S = 600  # one measurement is seconds of timing; a child past this has hung


def measure_in_child(model: str, engine: str, *, threads: int | None, imgsz: int | None,
                     seconds: float = DEFAULT_SECONDS, checkout: Path | None = None) -> float:
    """Median ms of one fresh process. ``model``: an ONNX file, or an artifact store entry (a folder with
    meta.json: the engine picks its own form of it, as the benchmarks do). ``checkout``: run that
    checkout's code (another commit's engine settings) instead of this one's."""
    from yolobench import paths

    code = "import sys; from yolobench.ab import _child; sys.exit(_child(sys.argv[1:]))"
    args = [model, engine, str(threads or 0), str(imgsz or 0), str(seconds)]
    env = paths.environment_running(checkout) if checkout is not None else None
    where = f" with the code of {checkout}" if checkout is not None else ""
    try:
        done = children.run([sys.executable, "-c", code, *args], capture_output=True, timeout=MEASURE_TIMEOUT_S,
                            env=env, cwd=checkout)
    except subprocess.TimeoutExpired:  # children.run stopped it and its children
        raise RuntimeError(f"measuring {model} on {engine}{where} did not finish within {MEASURE_TIMEOUT_S} s; "
                           "the process was stopped") from None
    line = next((l for l in done.stdout.splitlines() if l.startswith(_MARK)), None)
    if done.returncode != 0 or line is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"measuring {model} on {engine}{where} failed: {tail}")
    return float(line[len(_MARK):])


def _child(argv: list[str]) -> int:
    import json

    import numpy as np

    from yolobench import engines
    from yolobench.store import META_NAME

    model, engine, threads, imgsz, seconds = argv
    if (Path(model) / META_NAME).is_file():  # a store entry: the engine picks its form, as in a benchmark
        from yolobench.bench import artifact_at

        meta = json.loads((Path(model) / META_NAME).read_text())
        model = artifact_at(model, meta["variant"], meta["key"])
    session = engines.get_setting(engine).load(model, threads=int(threads) or None, imgsz=int(imgsz) or None)
    images = np.random.default_rng(0).random(session.input_shape, dtype=np.float32)
    end = time.perf_counter() + WARMUP_SECONDS
    while time.perf_counter() < end:
        session.run(images)
    samples = []
    end = time.perf_counter() + float(seconds)
    while time.perf_counter() < end or len(samples) < 5:
        start = time.perf_counter()
        session.run(images)
        samples.append((time.perf_counter() - start) * 1000.0)
    print(f"{_MARK}{median(samples):.6f}", flush=True)
    return 0


# --- A from another commit: its recipes, builder and engine settings ---------------------------------

# What decides a cell's speed besides its artifact: the engine settings and the pinned engine versions.
# When none of these differ at the base commit and the artifact key is the same, A and B are one cell.
ENGINE_PATHS = ("src/yolobench/engines", "pyproject.toml")


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def resolve_ref(root: Path, ref: str) -> str:
    """The commit ``ref`` names in the checkout at ``root``, or UserError saying what to do."""
    from yolobench.errors import UserError

    done = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if done.returncode != 0:
        raise UserError(f"--base-ref {ref}: not a commit of {root} (git fetch it first, e.g. `git fetch origin main`)")
    return done.stdout.strip()


def engine_code_changed(root: Path, commit: str) -> bool:
    """Do the engine settings or pinned versions differ between ``commit`` and the working tree?"""
    return _git(root, "diff", "--quiet", commit, "--", *ENGINE_PATHS).returncode != 0


@contextmanager
def worktree_at(root: Path, commit: str) -> Iterator[Path]:
    """A detached git worktree of ``commit``, removed afterwards (also on interrupt)."""
    from yolobench.errors import UserError

    folder = Path(tempfile.mkdtemp(prefix="yolobench-ab-"))
    tree = folder / "base"
    done = _git(root, "worktree", "add", "--detach", "--quiet", str(tree), commit)
    if done.returncode != 0:
        raise UserError(f"git worktree add {commit[:12]} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    try:
        yield tree
    finally:
        _git(root, "worktree", "remove", "--force", str(tree))
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def build_with(checkout: Path, variant: str, profile: str, data: str | None, store: Path) -> str:
    """Build ``variant`` with ``checkout``'s code (its recipes and builder) into ``store``; its key.

    Its progress lines go to stderr as they come; a store shares every artifact whose key is unchanged.
    """
    from yolobench import paths
    from yolobench.errors import UserError

    import json

    command = [sys.executable, "-m", "yolobench", "build", "--variants", variant, "--profile", profile,
               "--store", str(store), "--json", *(["--data", str(data)] if data else [])]
    done = children.run(command, cwd=checkout, env=paths.environment_running(checkout), stdout=subprocess.PIPE,
                        text=True)
    text = done.stdout.decode() if isinstance(done.stdout, bytes) else (done.stdout or "")
    try:
        rows = json.loads(text[text.rfind("[\n"):])  # the table is the last thing printed
        return next(row["key"] for row in rows if row["variant"] == variant)
    except (ValueError, StopIteration, KeyError, TypeError):
        raise UserError(f"building {variant} with the code of {checkout} failed (exit {done.returncode}); "
                        "its messages are above") from None
