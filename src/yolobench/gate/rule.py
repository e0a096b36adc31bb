"""The gate's latency decision rule (pure): is one cell's latency in the current run a regression
against the same cell in a baseline run, beyond the allowed factor and beyond the noise of both runs?

Must not: read files or measure anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from yolobench.timer import Latency, iqr

# Default allowed slowdown before a latency change can count: the same ONNX compiled twice by
# DeepSparse differed by up to ~15% (the same ONNX compiled twice, measured) and a shared 2-core VM drifts by several percent
# between runs; 1.25 stays above both, so a failure is a change in the code, not in the weather.
DEFAULT_LATENCY_FACTOR = 1.25

# The engine check: the median, over an engine's cells, of the per-cell latency ratio. On the 2-core VM
# single cells of unchanged code moved up to 1.69x between runs (a whole run's sessions in one slow
# mode: results/gate/2026-11-28-noise-study-factor-1.25.txt), but never most cells of one engine at
# once; a change in an engine's version, threads or settings moves all of its cells. Needs
# ENGINE_MIN_CELLS comparable cells (a median of two is one of them).
DEFAULT_ENGINE_LATENCY_FACTOR = 1.25
ENGINE_MIN_CELLS = 3


def _sessions(baseline: Latency, current: Latency) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    base, cur = baseline.session_p50s_ms(), current.session_p50s_ms()
    return (base, cur) if len(base) >= 2 and len(cur) >= 2 else None


def run_noise_ms(baseline: Latency, current: Latency) -> float:
    """Run-to-run noise of two runs of one cell, in ms: the larger of two estimates.

    - between sessions: each run times the cell in ``timer.SESSIONS`` independently loaded sessions;
      compile lottery, placement and the machine's phases move a session's median (ONNX Runtime on
      the smoke QDQ graphs settles at ~15 or ~25 ms per session, e.g. [25.7, 24.2, 15.4] in one run).
      Each run's spread (slowest - fastest session median), added: a slowdown must exceed what
      reloading the same model moved the cell within both runs together.
    - within a session: half the interquartile range of each run, added (the only estimate for run
      files without sessions). Alone it missed the between-run variation: two runs of unchanged code
      differed by 1.29x on a cell whose IQRs summed to 0.4 ms.
    """
    within = (iqr(baseline.samples_ms) + iqr(current.samples_ms)) / 2.0
    if _sessions(baseline, current) is None:
        return within
    return max(within, baseline.session_spread_ms + current.session_spread_ms)


@dataclass(frozen=True)
class LatencyComparison:
    baseline_ms: float
    current_ms: float
    factor: float
    noise_ms: float
    basis: str  # what baseline_ms / current_ms are: "p50" or "fastest session p50"

    @property
    def ratio(self) -> float:
        return self.current_ms / self.baseline_ms

    @property
    def delta_ms(self) -> float:
        return self.current_ms - self.baseline_ms

    @property
    def beyond_factor(self) -> bool:
        return self.ratio > self.factor

    @property
    def beyond_noise(self) -> bool:
        return self.delta_ms > self.noise_ms

    @property
    def regressed(self) -> bool:
        return self.beyond_factor and self.beyond_noise


BASIS_SESSIONS = "fastest session p50"
BASIS_P50 = "p50"


def compare_latency(baseline: Latency, current: Latency,
                    factor: float = DEFAULT_LATENCY_FACTOR) -> LatencyComparison:
    """Regressed iff  cur / base > factor  and  cur - base > run_noise_ms(base, cur).

    With sessions recorded, cur and base are each run's *fastest* session median: noise on a shared
    VM (a slow session mode, a neighbour, a bad compile) only ever adds time, while a change in the code
    or the configuration moves every session, the fastest included. Without sessions (old run files)
    they are the pooled medians. The median, not the mean, within a session: a few stalls move the
    mean arbitrarily, while a regression moves the bulk of the iterations.
    """
    sessions = _sessions(baseline, current)
    if sessions is None:
        base_ms, cur_ms, basis = baseline.p50_ms, current.p50_ms, BASIS_P50
    else:
        base_ms, cur_ms, basis = min(sessions[0]), min(sessions[1]), BASIS_SESSIONS
    return LatencyComparison(baseline_ms=base_ms, current_ms=cur_ms, factor=factor,
                             noise_ms=run_noise_ms(baseline, current), basis=basis)

