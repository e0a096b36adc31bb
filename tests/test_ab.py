"""The A/B decision rule on hand-made pairs (no clock)."""

from __future__ import annotations

import math
import random

import pytest

from yolobench import ab


# exact values: scipy.stats.t.ppf. Hill's approximation is within 0.3% from df 4 (MIN_PAIRS - 1) up to the
# 0.99875 quantile (20 cells at alpha 0.05): an interval 0.3% too narrow or wide decides nothing differently.
@pytest.mark.parametrize("p, df, exact", [(0.975, 4, 2.7764), (0.975, 9, 2.2622), (0.975, 29, 2.0452),
                                           (0.99375, 9, 3.1109), (0.99375, 4, 4.3147), (0.99875, 5, 5.6042)])
def test_t_quantiles(p, df, exact):
    assert ab.t_quantile(p, df) == pytest.approx(exact, rel=3e-3)


def noisy(center: float, rng: random.Random, phase: list[float]):
    """A machine with slow phases: each measurement is center x (current phase) x 3% noise."""
    def measure():
        if rng.random() < 0.2:  # the machine changes mode now and then, for both sides alike
            phase[0] = rng.choice([1.0, 1.7])
        return center * phase[0] * math.exp(rng.gauss(0, 0.03))
    return measure


def compare(ratio: float, seed: int, **kw):
    rng, phase = random.Random(seed), [1.0]
    return ab.run_sequential(noisy(10.0, rng, phase), noisy(10.0 * ratio, rng, phase), **kw)


def test_a_ten_percent_slowdown_is_found_despite_slow_phases():
    verdicts = [compare(1.10, seed)[0] for seed in range(40)]
    assert sum(c.verdict == ab.SLOWER for c in verdicts) >= 38
    assert all(len(c.a_ms) <= ab.DEFAULT_MAX_PAIRS for c in verdicts)


def test_identical_sides_rarely_raise_an_alarm():
    verdicts = [compare(1.0, seed)[0] for seed in range(40)]
    assert sum(c.verdict == ab.SLOWER for c in verdicts) <= 2


def test_more_cells_widen_the_interval():
    logs = [0.02, 0.05, 0.01, 0.04, 0.03, 0.06]
    one, five = ab.interval(logs), ab.interval(logs, cells=5)
    assert five.low < one.low < one.ratio < one.high < five.high


def test_decide_waits_while_the_interval_straddles_the_threshold():
    assert ab.decide(ab.Interval(6, 1.10, 1.06, 1.14), 1.05) == ab.SLOWER
    assert ab.decide(ab.Interval(6, 1.00, 0.97, 1.03), 1.05) == ab.NOT_SLOWER
    assert ab.decide(ab.Interval(6, 1.05, 1.02, 1.08), 1.05) is None


def test_at_the_cap_the_verdict_says_it_was_not_clear():
    values = iter([10.0, 10.6, 10.0, 10.2] * 50)  # alternating 6% and 2%: never clear at 1.05 in 6 pairs
    comparison, ci = ab.run_sequential(lambda: next(values), lambda: next(values), max_pairs=6)
    assert not comparison.clear and len(comparison.a_ms) == 6
    assert comparison.verdict == ab.at_the_cap(ci, 1.05)


def test_at_the_cap_slower_needs_the_estimate_past_the_threshold_and_no_change_excluded():
    # the identical copy on ONNX Runtime's two-mode INT8 graph that the point estimate alone called slower
    assert ab.at_the_cap(ab.Interval(40, 1.056, 1.002, 1.112), 1.05) == ab.SLOWER
    assert ab.at_the_cap(ab.Interval(40, 1.056, 0.998, 1.116), 1.05) == ab.NOT_SLOWER
    assert ab.at_the_cap(ab.Interval(40, 1.04, 1.01, 1.07), 1.05) == ab.NOT_SLOWER
    assert ab.at_the_cap(ab.Interval(40, 1.10, 1.03, 1.17), 1.05) == ab.SLOWER


def test_two_independent_speed_modes_per_process_rarely_raise_an_alarm():
    """ONNX Runtime's INT8 processes: each lands in a fast or a 1.38x slower mode on its own (7 of 20 slow,
    results/ab/2026-12-03-zen5-ort-modes.md), so the modes do not cancel within a pair."""
    def measure(rng):
        return lambda: 8.4 * (1.38 if rng.random() < 0.35 else 1.0) * math.exp(rng.gauss(0, 0.02))

    alarms = 0
    for seed in range(40):
        rng = random.Random(seed)
        comparison, _ = ab.run_sequential(measure(rng), measure(rng))
        alarms += comparison.verdict == ab.SLOWER
    assert alarms <= 2


def test_the_command_exits_1_when_b_is_slower_and_2_on_bad_input(tmp_path, monkeypatch, capsys):
    from _tiny_yolo import tiny_yolo
    from yolobench import cli

    model = tiny_yolo(tmp_path / "tiny").onnx
    slow = {"times": iter(range(10 ** 6))}

    def fake(path, engine, **kw):  # B (openvino-f32) 20% slower, with a little noise: no process, no clock
        noise = 1 + 0.01 * (next(slow["times"]) % 3)
        return 10.0 * noise * (1.2 if engine == "openvino-f32" else 1.0)

    monkeypatch.setattr(ab, "measure_in_child", fake)
    code = cli.main(["ab", "--a", str(model), "--engine", "onnxruntime", "--b-engine", "openvino-f32", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1 and ": slower (threshold 1.05)" in out and "after 5 pairs" in out
    code = cli.main(["ab", "--a", str(model), "--engine", "onnxruntime", "--quiet"])
    assert code == 0 and ": not slower" in capsys.readouterr().out
    code = cli.main(["ab", "--a", str(tmp_path / "missing.onnx"), "--engine", "onnxruntime"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "missing.onnx" in err[0]


def test_a_measurement_that_runs_past_its_limit_is_one_line(tmp_path, monkeypatch, capsys):
    """The child was stopped (children.run); the command says which model and engine, no traceback."""
    import subprocess

    from _tiny_yolo import tiny_yolo
    from yolobench import cli

    def past_the_limit(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs.get("timeout"))

    monkeypatch.setattr(ab.children, "run", past_the_limit)
    with pytest.raises(RuntimeError, match=r"measuring m\.onnx on onnxruntime did not finish within 600 s"):
        ab.measure_in_child("m.onnx", "onnxruntime", threads=1, imgsz=64)
    model = tiny_yolo(tmp_path / "tiny").onnx
    code = cli.main(["ab", "--a", str(model), "--engine", "onnxruntime", "--quiet"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "did not finish within 600 s" in errors[0], err
    assert "Traceback" not in err


# --- catalogue variants: A from another commit or store ----------------------------------------------

def test_variant_needs_a_base_and_rejects_file_options(capsys):
    from yolobench import cli

    code = cli.main(["ab", "--variant", "dense", "--engine", "onnxruntime"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--base-ref" in err[0]
    code = cli.main(["ab", "--variant", "dense", "--engine", "onnxruntime", "--base-ref", "HEAD", "--b-engine", "x"])
    assert code == 2 and "--b-engine" in capsys.readouterr().err


def test_variant_against_a_base_commit_runs_a_with_that_commits_code(tiny_home, monkeypatch, capsys):
    """B: this checkout's tiny dense. A: the same variant built by HEAD's code in a git worktree. Same key
    and engine code: nothing to time. Engine code changed: A's processes run the worktree's code."""
    from yolobench import cli

    measured = []

    def fake(model, engine, *, threads, imgsz, seconds, checkout=None):  # no clock, no process
        measured.append((model, engine, checkout, checkout is not None and checkout.exists()))
        return 10.0 * (1 + 0.002 * (len(measured) % 3))

    monkeypatch.setattr(ab, "measure_in_child", fake)
    command = ["ab", "--variant", "dense", "--engine", "onnxruntime", "--profile", "tiny", "--base-ref", "HEAD",
               "--store", str(tiny_home / "store"), "--quiet"]
    code = cli.main(command)
    out = capsys.readouterr().out
    assert code == 0 and "nothing to compare" in out and not measured

    monkeypatch.setattr(ab, "engine_code_changed", lambda root, commit: True)
    code = cli.main(command)
    out = capsys.readouterr().out
    assert code == 0 and "dense-onnxruntime-" in out and ": not slower" in out
    a_side = [m for m in measured if m[2] is not None]
    b_side = [m for m in measured if m[2] is None]
    assert len(a_side) == len(b_side) >= ab.MIN_PAIRS
    assert all(exists for _, _, _, exists in a_side)  # measured inside the worktree while it existed
    assert {m[0] for m in a_side} == {m[0] for m in b_side}  # one key: the same store entry
    assert not a_side[0][2].exists()  # the worktree is removed afterwards


def test_variant_against_another_store_names_the_missing_entry(tiny_home, tmp_path, capsys):
    from yolobench import cli

    for setting in ("onnxruntime", "onnxruntime-nospin,openvino-f32"):  # settings by name are cells too
        code = cli.main(["ab", "--variant", "dense", "--engine", setting, "--profile", "tiny",
                         "--store", str(tiny_home / "store"), "--base-store", str(tmp_path / "other")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and "has no dense" in err[-1] and "yolobench build --variants dense" in err[-1]
    code = cli.main(["ab", "--variant", "dense", "--engine", "onnxruntime-fast", "--profile", "tiny",
                     "--base-store", str(tmp_path / "other")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no setting 'fast'" in err[0] and "onnxruntime-nospin" in err[0]
