"""The measurement protocol: statistics on known samples, and warm-up / minimums with a fake clock."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from yolobench import timer
from yolobench.timer import Latency, MeasurementWarning, measure, parse_cpuinfo, percentile

EXACT = 1e-12  # statistics of exactly representable samples: only float rounding may differ
# Durations that are exact in binary floating point, so fake-clock sums hit bounds exactly.
STEP_S = 0.25


class FakeClock:
    """A clock that moves only when the fake model runs."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeModel:
    """Advances the clock by ``durations(call_index)`` seconds per call and counts calls."""

    def __init__(self, clock: FakeClock, durations=lambda index: STEP_S) -> None:
        self.clock = clock
        self.durations = durations
        self.calls = 0

    def __call__(self) -> None:
        self.clock.now += self.durations(self.calls)
        self.calls += 1


def run(model_durations=lambda index: STEP_S, **protocol):
    clock = FakeClock()
    model = FakeModel(clock, model_durations)
    return measure(model, clock=clock, **protocol), model


# --- statistics ---


def test_percentile_interpolates_linearly_on_known_numbers():
    numbers = list(range(1, 101))  # synthetic values: this checks arithmetic, not speed
    assert [percentile(numbers, q) for q in (50, 90, 99)] == pytest.approx([50.5, 90.1, 99.01], abs=EXACT)


def test_summary_uses_the_shared_percentile_and_ignores_order():
    numbers = [float(x) for x in range(1, 101)]
    summary = Latency.from_samples(numbers)
    reversed_summary = Latency.from_samples(numbers[::-1])
    fields = ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "std_ms", "n")
    assert [getattr(summary, f) for f in fields] == [getattr(reversed_summary, f) for f in fields]
    assert (summary.p50_ms, summary.p90_ms, summary.p99_ms) == tuple(percentile(numbers, q) for q in (50, 90, 99))
    assert (summary.mean_ms, summary.n) == (sum(numbers) / len(numbers), len(numbers))


def test_percentile_endpoints_and_single_sample():
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0
    assert percentile([3.0, 1.0, 2.0], 100) == 3.0
    single = Latency.from_samples([7.0])
    assert (single.p50_ms, single.p99_ms, single.std_ms, single.n) == (7.0, 7.0, 0.0, 1)


def test_iqr_of_known_samples():
    assert timer.iqr([9.0, 10.0, 11.0]) == pytest.approx(1.0, abs=EXACT)  # p75 10.5 - p25 9.5


def test_fps_is_1000_over_mean_and_std_is_sample_std():
    samples = [2.0, 4.0, 6.0, 8.0]
    latency = Latency.from_samples(samples)
    assert latency.mean_ms == pytest.approx(5.0, abs=EXACT)
    assert latency.fps == pytest.approx(1000.0 / 5.0, abs=EXACT)
    assert latency.std_ms == pytest.approx(statistics.stdev(samples), abs=EXACT)


@pytest.mark.parametrize("bad", [[], [1.0, -1.0], [1.0, math.nan], [1.0, math.inf], [0.0, 0.0]])
def test_from_samples_rejects_unusable_samples(bad):
    with pytest.raises(ValueError):
        Latency.from_samples(bad)


@given(st.lists(st.floats(min_value=0.01, max_value=1e4, allow_nan=False), min_size=1, max_size=300))
def test_percentiles_match_numpy_and_are_ordered(samples):
    latency = Latency.from_samples(samples)
    for q, value in ((50, latency.p50_ms), (90, latency.p90_ms), (99, latency.p99_ms)):
        assert value == pytest.approx(float(np.percentile(samples, q)), rel=1e-9, abs=1e-9)
    assert min(samples) <= latency.p50_ms <= latency.p90_ms <= latency.p99_ms <= max(samples)


def test_to_dict_round_trips_through_from_samples():
    latency = Latency.from_samples([1.5, 2.5, 3.0])
    data = latency.to_dict()
    assert data["samples_ms"] == [1.5, 2.5, 3.0]
    assert Latency.from_samples(data["samples_ms"]) == latency
    assert set(latency.stats_ms()) == {"mean", "p50", "p90", "p99", "std"}


# --- the protocol, with a fake clock ---


def test_protocol_constants_meet_the_stated_minimums():
    assert timer.MIN_ITERS >= 100 and timer.MIN_SECONDS >= 3.0
    assert timer.MAX_SECONDS > timer.MIN_SECONDS
    assert timer.WARMUP_MIN_ITERS >= 1 and timer.WARMUP_MIN_SECONDS > 0


def test_min_seconds_decides_when_calls_are_fast():
    latency, model = run(warmup_min_iters=2, warmup_min_seconds=1.0, min_iters=4, min_seconds=5.0)
    assert latency.n == 20  # 5.0 s / 0.25 s
    assert model.calls == 4 + 20  # warm-up: 1.0 s / 0.25 s beats 2 iterations
    assert latency.samples_ms == (250.0,) * 20
    assert not latency.stopped_early


def test_min_iters_decides_when_calls_are_slow():
    latency, model = run(warmup_min_iters=8, warmup_min_seconds=1.0, min_iters=50, min_seconds=1.0)
    assert latency.n == 50
    assert model.calls == 8 + 50  # warm-up: 8 iterations beat 1.0 s
    assert latency.p50_ms == 250.0 and latency.fps == pytest.approx(4.0, abs=EXACT)


def test_warmup_calls_are_not_recorded():
    slow_first = 3
    durations = lambda index: 1.0 if index < slow_first else STEP_S  # noqa: E731
    latency, model = run(durations, warmup_min_iters=slow_first, warmup_min_seconds=0.0,
                         min_iters=10, min_seconds=0.0)
    assert model.calls == slow_first + 10
    assert max(latency.samples_ms) == 250.0


def test_samples_are_per_call_durations():
    durations = lambda index: [0.5, 0.25, 0.125][index % 3]  # noqa: E731
    latency, _ = run(durations, warmup_min_iters=0, warmup_min_seconds=0.0, min_iters=3, min_seconds=0.0)
    assert latency.samples_ms == (500.0, 250.0, 125.0)


def test_max_seconds_stops_early_with_a_warning():
    with pytest.warns(MeasurementWarning, match="max_seconds"):
        latency, _ = run(lambda index: 1.0, warmup_min_iters=0, warmup_min_seconds=0.0,
                         min_iters=100, min_seconds=0.0, max_seconds=10.0)
    assert latency.n == 10
    assert latency.stopped_early


def test_default_protocol_with_fake_clock():
    latency, model = run()  # 0.25 s per call: MIN_ITERS decides over MIN_SECONDS
    assert latency.n == max(timer.MIN_ITERS, math.ceil(timer.MIN_SECONDS / STEP_S))
    warmup_calls = max(timer.WARMUP_MIN_ITERS, math.ceil(timer.WARMUP_MIN_SECONDS / STEP_S))
    assert model.calls == warmup_calls + latency.n


# --- naming the machine ---

X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R45
flags\t\t: fpu avx2 avx512f avx512_vnni sse4_2

processor\t: 1
model name\t: something else
"""

ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd sve

Model\t\t: Raspberry Pi 5
"""


def test_parse_cpuinfo_x86_first_processor():
    assert parse_cpuinfo(X86_CPUINFO) == ("AMD EPYC 9R45", ["avx2", "avx512f", "avx512_vnni"])


def test_parse_cpuinfo_arm_board():
    assert parse_cpuinfo(ARM_CPUINFO) == ("Raspberry Pi 5", ["asimd", "sve"])  # "Model" comes last on ARM


def test_machine_info_names_the_machine():
    info = timer.machine_info()
    assert isinstance(info["cpu_model"], str) and info["cpu_model"]
    assert info["logical_cores"] >= 1
    assert 1 <= info["usable_cores"] <= info["logical_cores"]
    assert info["memory_total_bytes"] is None or info["memory_total_bytes"] > 0


# --- independent sessions ---


def test_session_shares_split_evenly_larger_first():
    assert timer.session_shares(200, 3) == [67, 67, 66]
    assert timer.session_shares(6, 3) == [2, 2, 2]
    with pytest.raises(ValueError):
        timer.session_shares(2, 3)


def test_pooled_keeps_each_sessions_samples_and_medians():
    pooled = Latency.pooled([Latency.from_samples([1.0, 2.0, 3.0]), Latency.from_samples([10.0, 11.0])])
    assert pooled.samples_ms == (1.0, 2.0, 3.0, 10.0, 11.0) and pooled.session_sizes == (3, 2)
    assert pooled.session_p50s_ms() == (2.0, 10.5)
    assert pooled.session_spread_ms == 8.5
    assert Latency.from_samples([1.0, 2.0]).session_spread_ms is None  # sessions not recorded


def test_session_sizes_must_add_up_to_the_samples():
    with pytest.raises(ValueError, match="add up"):
        Latency.from_samples([1.0, 2.0, 3.0], session_sizes=[1, 1])
    with pytest.raises(ValueError):
        Latency.from_samples([1.0, 2.0], session_sizes=[2, 0])


def test_sessions_measured_by_their_budgets_pool_into_one_latency_that_keeps_them_apart():
    clock = FakeClock()
    sessions = []
    for index in (1, 2, 3):  # what the matrix does across its passes: a fresh model per session
        model = FakeModel(clock, lambda i, k=index: STEP_S * k)  # session k runs k x slower
        budget = timer.session_budget(index, 3, min_iters=9, min_seconds=0.0)
        sessions.append(timer.measure(model, **budget, warmup_min_iters=2, warmup_min_seconds=0.0, clock=clock))
        assert model.calls == 5  # 2 warm-up + its 3 of the 9 timed calls
    latency = timer.Latency.pooled(sessions)
    assert latency.session_sizes == (3, 3, 3)
    assert latency.session_p50s_ms() == (250.0, 500.0, 750.0)
    assert latency.to_dict()["session_sizes"] == [3, 3, 3]
