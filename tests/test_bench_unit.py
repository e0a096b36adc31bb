"""The benchmark plumbing (yolobench.bench, benchmarks/, `yolobench bench`), without timing anything.

Engines, sessions, pytest-benchmark's fixture and the child process are replaced by small fakes, so
these tests check what is recorded and decided, never how fast anything is. The end-to-end run on the
tiny profile is marked slow.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from yolobench import bench, catalogue, engines, paths, runfile, timer
from yolobench.engines import EngineUnsupported
from yolobench.errors import UserError
from yolobench.timer import Latency

REPO = paths.repo_root()
EXACT = 1e-12  # ratios of exactly representable medians: only float rounding may differ
CPU = "Test CPU @ 1 GHz"


# --- fakes ---


class FakeSession:
    def __init__(self, *, form="fp32", fraction=None, model_path=None, threads=2, imgsz=64):
        self.engine_version = "9.9"
        self.form = form
        self.fraction_of_supported_ops = fraction
        self.model_path = model_path
        self.threads = threads
        self.imgsz = (imgsz, imgsz)
        self.calls = 0

    def run(self, images):
        self.calls += 1
        return np.zeros((images.shape[0], 7, 3), dtype=np.float32)

    def describe(self):
        return {"engine": "fake", "form": self.form}


class FakeEngine:
    untimed_quantized = None  # times every cell, as ONNX engines do

    def __init__(self, name, available=(True, ""), session=None, load_error=None):
        self.name = name
        self._available = available
        self.session = session or FakeSession()
        self.load_error = load_error
        self.loads = []

    def available(self):
        return self._available

    def load(self, model, *, batch, threads, imgsz):
        self.loads.append((model, batch, threads, imgsz))
        if self.load_error:
            raise EngineUnsupported(self.load_error)
        return self.session


def fake_artifact(name="pruned_quant", tmp_path=None, **meta):
    base = {"sparsity": {"overall": 0.8}, "metrics": {"map50": 0.4, "map50_95": 0.25}, "profile": "tiny",
            "file_sizes": {"weights.pt": 1234}}
    base.update(meta)
    path = tmp_path if tmp_path is not None else Path("/nonexistent/artifact")
    return SimpleNamespace(name=name, key="c" * 16, path=path, meta=base, imgsz=64)


@pytest.fixture
def fake_engines(monkeypatch):
    """engines.get(name) -> a FakeEngine registered here; no preflight child processes."""
    registry: dict[str, FakeEngine] = {}
    monkeypatch.setattr(bench.engines, "get", lambda name: registry[name])
    monkeypatch.setattr(engines.engine_class("deepsparse"), "can_abort_process", False)
    monkeypatch.setattr(bench, "benchmark_input",
                        lambda artifact, imgsz, batch=1: (np.zeros((batch, 3, imgsz, imgsz), np.float32),
                                                          Path("val_000000.png")))
    return registry


def latency(*samples):
    return Latency.from_samples(samples)


# --- the matrix's names ---


def test_cell_ids_are_variant_engine_size_in_size_then_variant_major_order():
    assert bench.cell_ids(["dense", "pruned_quant"], ["deepsparse", "onnxruntime"], [640, 416]) == [
        "dense-deepsparse-640", "dense-onnxruntime-640", "pruned_quant-deepsparse-640", "pruned_quant-onnxruntime-640",
        "dense-deepsparse-416", "dense-onnxruntime-416", "pruned_quant-deepsparse-416", "pruned_quant-onnxruntime-416"]
    assert runfile.cell_name(*bench.REFERENCE_CELL, 640) == runfile.reference_cell_name(640) == "dense-onnxruntime-640"
    assert runfile.split_cell_name("v5n_hardswish_pq-deepsparse-416") == ("v5n_hardswish_pq", "deepsparse", 416)
    with pytest.raises(UserError, match="not <variant>-<engine>-<imgsz>"):
        runfile.split_cell_name("pruned_quant-deepsparse")


def test_torch_fake_quantized_cells_are_not_timed_and_say_why():
    assert "fake-quantization" in bench.untimed_reason("pruned_quant", "torch")
    assert bench.untimed_reason("dense", "torch") is None  # a float model in PyTorch is what users run
    assert all(bench.untimed_reason("pruned_quant", e) is None for e in ("onnxruntime", "deepsparse", "openvino"))
    assert bench.timed_cell_ids(["dense", "oneshot"], ["torch", "deepsparse"], [160]) == [
        "dense-torch-160", "dense-deepsparse-160", "oneshot-deepsparse-160"]


def test_parse_engines_keeps_the_given_order_and_rejects_unknown_names():
    assert bench.parse_engines(None) == list(engines.engine_names())
    assert bench.parse_engines("deepsparse, onnxruntime,deepsparse") == ["deepsparse", "onnxruntime"]
    assert bench.parse_engines(["torch", "openvino,onnxruntime"]) == ["torch", "openvino", "onnxruntime"]
    with pytest.raises(UserError, match="unknown engine 'tensorrt'"):
        bench.parse_engines("deepsparse,tensorrt")


# --- rounds: the protocol's stopping rule as a round count ---


@pytest.mark.parametrize("call_ms, rounds, stopped_early", [
    (1.0, 5000, False),   # MIN_SECONDS decides: 5 s of 1 ms calls
    (3.0, 1667, False),   # rounded up, never below 5 s
    (25.0, 200, False),   # MIN_ITERS decides: 200 calls are 5 s
    (100.0, 200, False),  # MIN_ITERS decides: 20 s
    (1000.0, 120, True),  # MAX_SECONDS caps the rounds below MIN_ITERS: the protocol's stopped_early
])
def test_protocol_rounds(call_ms, rounds, stopped_early):
    assert (timer.MIN_ITERS, timer.MIN_SECONDS, timer.MAX_SECONDS) == (200, 5.0, 120.0)  # the table's premise
    assert bench.protocol_rounds(call_ms) == bench.RoundsPlan(rounds, stopped_early)


def test_protocol_rounds_rejects_a_clock_that_did_not_advance():
    with pytest.raises(ValueError):
        bench.protocol_rounds(0.0)


class FakeBenchmark:
    """pytest-benchmark's fixture, as far as pedantic_timing uses it: per-round durations in seconds."""

    def __init__(self, durations_s):
        self.durations_s = list(durations_s)
        self.calls = []
        self.stats = None
        self.extra_info = {}
        self.enabled = True

    def pedantic(self, target, args=(), setup=None, rounds=1, warmup_rounds=0, iterations=1):
        self.calls.append({"rounds": rounds, "warmup_rounds": warmup_rounds, "iterations": iterations})
        for _ in range(rounds):
            if setup is not None:
                setup()
            target(*args)
        data = (self.durations_s * rounds)[:rounds]
        self.stats = SimpleNamespace(iterations=iterations, stats=SimpleNamespace(data=data))


def test_pedantic_timing_sizes_one_sessions_rounds_from_calibration_and_reads_pytest_benchmarks_samples(
        monkeypatch):
    calibrations = []

    def fake_measure(fn, **kwargs):
        calibrations.append(kwargs)
        return latency(40.0, 40.0, 70.0)  # 50 ms on average (the rounds total n x mean)

    monkeypatch.setattr(timer, "measure", fake_measure)
    benchmark = FakeBenchmark([0.004, 0.006])
    calls = []

    result = bench.pedantic_timing(benchmark)(lambda: calls.append(1), 2, 3)

    # the protocol's warm-up minimums (the defaults) + CALIBRATION_ITERS timed calls, nothing else
    assert calibrations == [{"min_iters": bench.CALIBRATION_ITERS, "min_seconds": bench.CALIBRATION_SECONDS}]
    # session 2 of 3: its share of MIN_ITERS (200 -> 67, 67, 66), since 5 s / 3 of 50 ms calls is fewer
    assert benchmark.calls == [{"rounds": 67, "warmup_rounds": 0, "iterations": 1}]
    assert len(calls) == 67
    assert result.n == 67 and result.samples_ms[:2] == (4.0, 6.0)  # seconds -> milliseconds
    assert result.p50_ms == pytest.approx(4.0, abs=EXACT) and not result.stopped_early  # 34 of 67 at 4 ms
    assert bench.pedantic_timing(FakeBenchmark([0.001]))(lambda: None, 3, 3).n == 66  # the last share


def test_a_session_budget_is_its_share_of_the_protocol_and_the_shares_add_up():
    budgets = [timer.session_budget(k, 3) for k in (1, 2, 3)]
    assert [b["min_iters"] for b in budgets] == [67, 67, 66]
    assert sum(b["min_iters"] for b in budgets) == timer.MIN_ITERS
    assert all(b["min_seconds"] * 3 == pytest.approx(timer.MIN_SECONDS, abs=EXACT) for b in budgets)
    assert all(b["max_seconds"] * 3 == pytest.approx(timer.MAX_SECONDS, abs=EXACT) for b in budgets)
    for bad in (0, 4):
        with pytest.raises(ValueError, match=f"session index {bad} is not in 1..3"):
            timer.session_budget(bad, 3)


def test_latency_from_benchmark_needs_one_call_per_round():
    stats = SimpleNamespace(iterations=10, stats=SimpleNamespace(data=[0.001]))
    with pytest.raises(ValueError, match="iterations=1"):
        bench.latency_from_benchmark(stats)
    with pytest.raises(ValueError, match="no rounds"):
        bench.latency_from_benchmark(SimpleNamespace(iterations=1, stats=SimpleNamespace(data=[])))


# --- speedup and what a cell records ---


def context(variant="pruned_quant", engine="deepsparse", fraction=1.0, form="deepsparse"):
    return bench.CellContext(variant=variant, engine=engine, engine_version="1.8.0", form=form, threads=2, imgsz=64,
                             batch=1, fraction_of_supported_ops=fraction, model_size_bytes=4321,
                             input_image="val_000000.png", session={"engine": engine}, load_average=0.5)


def test_speedup_is_the_ratio_of_the_reference_median_to_the_cell_median():
    reference = latency(10.0, 12.0, 100.0)  # p50 12, mean 40.7: a stall must not move the speedup
    cell = latency(3.0, 4.0, 5.0)  # p50 4
    info = bench.cell_extra_info(cell, context(), fake_artifact(), reference)
    assert info["speedup_vs_reference"] == pytest.approx(12.0 / 4.0, abs=EXACT)
    assert info["reference_cell"] == "dense-onnxruntime-64"


def test_the_reference_cell_reports_a_speedup_of_one():
    reference = latency(10.0, 12.0, 100.0)
    info = bench.cell_extra_info(reference, context("dense", "onnxruntime", None, "fp32"),
                                 fake_artifact("dense"), reference)
    assert info["cell"] == "dense-onnxruntime-64" and info["speedup_vs_reference"] == 1.0


def test_cell_extra_info_carries_the_context_of_the_number():
    info = bench.cell_extra_info(latency(3.0, 4.0, 5.0), context(), fake_artifact(), None)
    assert info["speedup_vs_reference"] is None  # no reference: null, never guessed
    assert (info["engine"], info["engine_version"], info["threads"], info["imgsz"], info["batch"]) == (
        "deepsparse", "1.8.0", 2, 64, 1)
    assert (info["sparsity"], info["map50"], info["map50_95"]) == (0.8, 0.4, 0.25)
    assert (info["form"], info["fraction_of_supported_ops"], info["model_size_bytes"]) == ("deepsparse", 1.0, 4321)
    assert info["fps"] == pytest.approx(1000.0 / 4.0, abs=EXACT)
    assert info["protocol"] == timer.protocol() and info["input_image"] == "val_000000.png"
    assert info["profile"] == "tiny" and info["cpu_model"] and info["load_average"] == 0.5


def test_a_run_of_bench_cells_loads_and_passes_the_gate(tmp_path):
    from yolobench import gate

    reference = latency(10.0, 12.0, 11.0)
    cells = [bench.cell_extra_info(reference, context("dense", "onnxruntime", None, "fp32"), fake_artifact("dense"),
                                   reference),
             bench.cell_extra_info(latency(3.0, 4.0, 5.0), context(), fake_artifact(), reference)]
    path = runfile.write_run(tmp_path / "run.json", runfile.run_document(cells))
    run = runfile.load_run(path)
    assert run.cells["pruned_quant-deepsparse-64"].speedup_vs_reference == pytest.approx(11.0 / 4.0, abs=EXACT)
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text('[defaults]\nlatency_factor = 1.25\nsource = "test"\n'
                          '[cells."pruned_quant-deepsparse-64"]\nspeedup_floor = 2.0\nsource = "test"\n')
    checks = gate.evaluate(run, None, gate.load_thresholds(thresholds))
    assert not any(c.failed for c in checks)


# --- one cell: loading, skipping, measuring ---


def test_an_unavailable_engine_raises_engine_unsupported_with_its_reason(fake_engines):
    fake_engines["openvino"] = FakeEngine("openvino", available=(False, "openvino cannot be imported: no wheel"))
    with pytest.raises(EngineUnsupported, match="openvino cannot be imported: no wheel"):
        bench.open_cell(fake_artifact(), "openvino")
    assert fake_engines["openvino"].loads == []  # nothing was loaded


def test_measure_session_loads_with_all_usable_cores_by_default_and_records_the_session(fake_engines, monkeypatch):
    session = FakeSession(form="deepsparse", fraction=0.5, threads=bench.default_threads())
    fake_engines["deepsparse"] = FakeEngine("deepsparse", session=session)
    artifact = fake_artifact()
    seen = []

    def timing(call, index, sessions):
        seen.append((index, sessions))
        call(), call()
        return latency(2.0, 4.0)

    result, ctx = bench.measure_session(artifact, "deepsparse", index=2, sessions=3, timing=timing)
    # one load of its own, with every usable core
    assert fake_engines["deepsparse"].loads == [(artifact, 1, bench.default_threads(), 64)]
    assert seen == [(2, 3)] and session.calls == 2 and result.p50_ms == pytest.approx(3.0, abs=EXACT)
    assert result.session_sizes == (2,)  # one session, saying so
    assert (ctx.cell, ctx.form, ctx.fraction_of_supported_ops, ctx.threads) == (
        "pruned_quant-deepsparse-64", "deepsparse", 0.5, bench.default_threads())
    assert ctx.model_size_bytes == 1234  # no model file: the artifact's weights
    assert ctx.load_average is None or ctx.load_average >= 0.0  # recorded where the OS has one


class FakeReferenceCell:
    def __init__(self, value=None, reason=None):
        self.value, self._reason, self.recorded, self.asked = value, reason, [], []

    def reason(self, imgsz):
        return self._reason

    def pair(self, imgsz):
        return bench.REFERENCE_CELL

    def latency(self, imgsz, index):
        self.asked.append((imgsz, index))
        return self.value

    def record(self, imgsz, index, value):
        self.recorded.append((imgsz, index, value))


def run_cell_test(variant_name, engine_name, benchmark, reference_cell, artifact=None, session_index=1):
    from benchmarks import test_latency as matrix

    built = []

    def variant(name):
        built.append(name)
        return artifact or fake_artifact(name)

    matrix.test_latency(benchmark, variant, variant_name, engine_name, 64, session_index, 2, 3, reference_cell)
    return built


def test_the_benchmark_test_skips_an_unavailable_engine_with_its_reason_before_building(fake_engines):
    fake_engines["openvino"] = FakeEngine("openvino", available=(False, "openvino cannot be imported: no wheel"))
    with pytest.raises(pytest.skip.Exception, match="openvino not available: openvino cannot be imported: no wheel"):
        run_cell_test("pruned_quant", "openvino", FakeBenchmark([0.001]), FakeReferenceCell())


def test_the_benchmark_test_skips_a_cell_the_engine_cannot_load(fake_engines):
    fake_engines["deepsparse"] = FakeEngine("deepsparse", load_error="deepsparse crashed loading pruned_quant")
    with pytest.raises(pytest.skip.Exception, match="deepsparse cannot run pruned_quant: deepsparse crashed"):
        run_cell_test("pruned_quant", "deepsparse", FakeBenchmark([0.001]), FakeReferenceCell(latency(8.0)))


def test_the_benchmark_test_fills_extra_info_with_the_speedup_over_the_session_reference(fake_engines, monkeypatch):
    monkeypatch.setattr(timer, "measure", lambda fn, **kwargs: latency(50.0))  # rounds sized by MIN_ITERS
    monkeypatch.setattr(timer, "warm_up", lambda fn, **kwargs: 0)
    fake_engines["deepsparse"] = FakeEngine("deepsparse", session=FakeSession(form="deepsparse", fraction=1.0))
    benchmark = FakeBenchmark([0.002, 0.002, 0.004])  # p50 2 ms
    reference = FakeReferenceCell(latency(8.0, 8.0))
    built = run_cell_test("pruned_quant", "deepsparse", benchmark, reference, session_index=3)
    assert built == ["pruned_quant"] and reference.asked == [(64, 3)]  # the reference's session of the same pass
    info = benchmark.extra_info
    assert info["cell"] == "pruned_quant-deepsparse-64" and (info["session_index"], info["sessions"]) == (3, 3)
    assert info["speedup_vs_reference"] == pytest.approx(8.0 / 2.0, abs=EXACT)
    assert info["reference_p50_ms"] == pytest.approx(8.0, abs=EXACT)
    assert info["samples_ms"] == [2.0, 2.0, 4.0] * 22  # pytest-benchmark's rounds: session 3's 66 of 200
    assert info["session_sizes"] == [66]


def test_the_reference_cell_test_records_its_latency_for_the_session(fake_engines, monkeypatch):
    monkeypatch.setattr(timer, "measure", lambda fn, **kwargs: latency(25.0))
    monkeypatch.setattr(timer, "warm_up", lambda fn, **kwargs: 0)
    fake_engines["onnxruntime"] = FakeEngine("onnxruntime")
    reference = FakeReferenceCell()
    benchmark = FakeBenchmark([0.010])
    run_cell_test("dense", "onnxruntime", benchmark, reference)
    (imgsz, index, recorded), = reference.recorded
    assert (imgsz, index) == (64, 1) and recorded.p50_ms == pytest.approx(10.0, abs=EXACT)
    assert benchmark.extra_info["speedup_vs_reference"] == 1.0


def test_reference_cell_measures_each_session_once_and_reports_why_it_could_not_be():
    measured = []
    reference = bench.ReferenceCell(lambda z, k: measured.append((z, k)) or latency(5.0 + k + z / 100))
    assert reference.latency(160, 1).p50_ms == 7.6 and reference.latency(160, 1).p50_ms == 7.6
    assert reference.latency(160, 2).p50_ms == 8.6
    assert reference.latency(320, 1).p50_ms == 9.2  # each size has its own reference
    assert measured == [(160, 1), (160, 2), (320, 1)]
    assert set(reference.measured_by.values()) == {"the session fixture"}

    own = bench.ReferenceCell(lambda z, k: pytest.fail("measured twice"))
    own.record(160, 1, latency(6.0))
    own.record(160, 1, latency(9.0))  # the first record of a session stands
    assert own.latency(160, 1).p50_ms == 6.0 and own.measured_by == {(160, 1): "its own test"}

    def unsupported(imgsz, index):
        raise EngineUnsupported("onnxruntime cannot be imported: ImportError")

    missing = bench.ReferenceCell(unsupported)
    assert missing.latency(160, 1) is None and missing.latency(160, 2) is None
    assert "dense-onnxruntime-160 cannot run here: onnxruntime cannot be imported" in missing.reason(160)


# --- the child-process preflight ---


def completed(returncode, stdout="", stderr=""):
    return subprocess.CompletedProcess(args=[], returncode=returncode, stdout=stdout, stderr=stderr)


@pytest.fixture
def child(monkeypatch):
    """children.run replaced: returns what the test sets, records the command lines."""
    state = SimpleNamespace(result=completed(0), commands=[])

    def run(command, **kwargs):
        state.commands.append(command)
        return state.result

    monkeypatch.setattr(bench.children, "run", run)
    monkeypatch.setattr(bench, "_preflight_passed", set())
    return state


def test_preflight_turns_a_native_crash_into_a_skip_reason(child, tmp_path):
    child.result = completed(1, stderr="DeepSparse, Copyright\nAssertion at src/lib/engine/fold_elementwise.cpp:47\n"
                                       " 0# wand::detail::assert_fail\n")
    with pytest.raises(EngineUnsupported, match=r"deepsparse crashed loading pruned_quant \(exit status 1 in a child "
                                                r"process\): Assertion at src/lib/engine/fold_elementwise.cpp:47"):
        bench.preflight(fake_artifact(tmp_path=tmp_path), "deepsparse", threads=2, imgsz=64)


def test_preflight_passes_on_reasons_and_leaves_python_errors_to_the_caller(child, tmp_path):
    artifact = fake_artifact(tmp_path=tmp_path)
    child.result = completed(3, stdout="DeepSparse, Copyright 2021-present\n"
                                       "yolobench-unsupported: deepsparse cannot compile model-64.onnx: bad node\n",
                             stderr="a warning\n")
    with pytest.raises(EngineUnsupported, match="^deepsparse cannot compile model-64.onnx: bad node$"):
        bench.preflight(artifact, "deepsparse", threads=2, imgsz=64)
    child.result = completed(4, stderr="Traceback ...\nValueError: a bug\n")
    bench.preflight(artifact, "deepsparse", threads=2, imgsz=64)  # the in-process load raises it with its traceback


def test_preflight_runs_once_per_cell_and_only_for_crash_prone_engines(child, tmp_path):
    artifact = fake_artifact(tmp_path=tmp_path)
    for _ in range(2):
        bench.preflight(artifact, "deepsparse", threads=2, imgsz=64)
    bench.preflight(artifact, "onnxruntime", threads=2, imgsz=64)
    assert len(child.commands) == 1 and child.commands[0][0] == sys.executable
    assert child.commands[0][-4:] == ["deepsparse", "2", "64", "1"]


# --- the fixed input ---


def test_the_benchmark_input_is_the_first_validation_image_letterboxed(tmp_path):
    from yolobench.data import synthesize

    synthesize(tmp_path / "ds", seed=3, train=2, val=3, imgsz=64)
    artifact = fake_artifact(dataset={"data_yaml": str(tmp_path / "ds" / "data.yaml")})
    first, path = bench.benchmark_input(artifact, 64)
    again, _ = bench.benchmark_input(artifact, 64)
    val_images = sorted(p.name for p in (tmp_path / "ds").rglob("*.png") if "val" in p.parts)
    assert path.name == val_images[0]
    assert first.shape == (1, 3, 64, 64) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0
    assert np.array_equal(first, again)


def test_a_cell_is_timed_on_the_validation_image_rendered_at_its_size(tmp_path):
    from yolobench.data import synthesize

    synthesize(tmp_path / "train", seed=3, train=2, val=3, imgsz=64)
    synthesize(tmp_path / "at96", seed=3, train=1, val=3, imgsz=96)
    artifact = fake_artifact(dataset={"data_yaml": str(tmp_path / "train" / "data.yaml"),
                                      "eval_data_yaml": {"96": str(tmp_path / "at96" / "data.yaml")}})
    _, path = bench.benchmark_input(artifact, 96)
    assert tmp_path / "at96" in path.parents
    _, path = bench.benchmark_input(artifact, 64)  # no set at this size: the training data's validation split
    assert tmp_path / "train" in path.parents


def test_the_benchmark_input_falls_back_to_a_shipped_photo_without_a_dataset():
    images, path = bench.benchmark_input(fake_artifact(dataset={"data_yaml": "/gone/data.yaml"}), 64, batch=2)
    assert path.name == "bus.jpg" and images.shape == (2, 3, 64, 64)


# --- pytest side: collection, ids, order, deselection ---


def collect(*args):
    # --option=value: before conftests load, pytest would take a separate value for a path to collect
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "--profile=tiny", *args]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    return done.returncode, [line for line in done.stdout.splitlines() if "::" in line], done.stdout + done.stderr


def test_collected_ids_are_variant_engine_size_with_the_reference_first_then_engine_by_engine():
    code, ids, out = collect("benchmarks", "--variants=pruned_quant,dense", "--engines=deepsparse,onnxruntime")
    assert code == 0, out
    one_pass = ["dense-onnxruntime-64", "dense-deepsparse-64", "pruned_quant-deepsparse-64",
                "pruned_quant-onnxruntime-64"]
    # pass by pass: session k of every cell before session k+1 of any
    assert [i.split("[")[1].rstrip("]") for i in ids] == [f"{cell}-s{k}" for k in (1, 2, 3) for cell in one_pass]
    code, ids, out = collect("benchmarks", "--variants=dense", "--engines=onnxruntime", "--sessions=2")
    assert code == 0 and [i.split("[")[1].rstrip("]") for i in ids] == ["dense-onnxruntime-64-s1", "dense-onnxruntime-64-s2"]
    code, ids, out = collect("benchmarks", "--variants=dense", "--engines=onnxruntime", "--benchmark-disable")
    # checking that a cell runs needs one load: sessions 2 and 3 deselected, and the scenarios (not asked for)
    assert code == 0 and len(ids) == 1 and "3 deselected" in out, out
    code, _, out = collect("benchmarks", "--sessions=0")
    assert code == 4 and "--sessions must be at least 1" in out, out


def test_a_plain_pytest_run_deselects_the_benchmark_cells():
    code, ids, out = collect("-o", "testpaths=benchmarks", "--variants=dense", "--engines=onnxruntime")
    assert code == 5 and ids == [] and "4 deselected" in out, out  # 3 sessions of the cell and the scenario test
    code, ids, out = collect("-o", "testpaths=benchmarks", "--benchmark-only", "--variants=dense",
                             "--engines=onnxruntime")
    assert code == 0 and len(ids) == 3, out


def test_an_unknown_engine_is_a_usage_error():
    code, _, out = collect("benchmarks", "--engines=tensorrt")
    assert code == 4 and "unknown engine 'tensorrt'" in out, out


# --- `yolobench bench` ---


def test_yolobench_bench_runs_pytest_benchmarks_and_passes_its_exit_status_through(monkeypatch, tmp_path):
    from yolobench import cli
    from yolobench.commands import bench as command

    calls = []
    monkeypatch.setattr(command.children, "run", lambda cmd, cwd: calls.append((cmd, cwd)) or completed(3))
    out = tmp_path / "run.json"
    code = cli.main(["bench", "--profile", "tiny", "--variants", "dense", "--engines", "deepsparse,onnxruntime",
                     "--threads", "2", "--out", str(out), "-k", "dense", "--", "-x"])
    assert code == 3
    (cmd, cwd), = calls
    assert cwd == REPO and cmd[:5] == [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only"]
    # pytest-benchmark writes into a private folder; the run file is written from it when pytest ends
    written = Path(next(a for a in cmd if a.startswith("--benchmark-json=")).split("=", 1)[1])
    assert written.parent.name.startswith("yolobench-bench-") and not written.parent.exists() and not out.exists()
    assert "--yb-engines=deepsparse,onnxruntime" in cmd
    assert "--yb-threads=2" in cmd and cmd[-3:] == ["-k", "dense", "-x"]


def test_yolobench_bench_out_a_folder_writes_a_named_run_file_into_it(monkeypatch, tmp_path, capsys):
    """pytest-benchmark cannot write its JSON over a folder: the whole run was measured, then lost, and the
    command still printed "run file: <folder>". The run file goes into the folder under the default name."""
    from yolobench import cli
    from yolobench.commands import bench as command

    def fake_pytest(cmd, cwd):  # writes --benchmark-json as pytest-benchmark does (fails on a folder)
        target = Path(next(a for a in cmd if a.startswith("--benchmark-json=")).split("=", 1)[1])
        try:
            target.write_text("{}")
        except IsADirectoryError:
            return completed(1)
        return completed(0)

    monkeypatch.setattr(command.children, "run", fake_pytest)
    folder = tmp_path / "runs"
    folder.mkdir()
    capsys.readouterr()
    assert cli.main(["bench", "--profile", "tiny", "--variants", "dense", "--engines", "onnxruntime",
                     "--out", str(folder)]) == 0
    err = capsys.readouterr().err
    written, = folder.iterdir()
    assert written.is_file() and re.fullmatch(r"\d{8}T\d{6}Z-tiny\.json\.gz", written.name)
    assert f"--out {folder} is a folder: the run file is {written}" in err.splitlines()
    assert f"run file: {written}  (check it: yolobench gate --current {written})" in err.splitlines()


def test_yolobench_bench_rejects_unknown_names_before_running(monkeypatch, capsys):
    from yolobench import cli
    from yolobench.commands import bench as command

    monkeypatch.setattr(command.children, "run", lambda *a, **k: pytest.fail("pytest must not start"))
    assert cli.main(["bench", "--engines", "tensorrt"]) == 2
    assert "unknown engine 'tensorrt'" in capsys.readouterr().err


# --- end to end on the tiny profile ---


@pytest.mark.slow
def test_a_tiny_benchmark_run_writes_a_run_file_the_gate_accepts(tiny_home, tmp_path):
    out = tmp_path / "run.json"
    command = [sys.executable, "-m", "yolobench", "bench", "--profile", "tiny", "--variants", "dense",
               "--engines", "onnxruntime", "--out", str(out)]  # one cell: its 3 sessions in a row
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = runfile.load_run(out)
    cell = run.cells["dense-onnxruntime-64"]
    assert cell.speedup_vs_reference == 1.0 and cell.threads == bench.default_threads() and cell.imgsz == 64
    assert cell.latency.n >= timer.MIN_ITERS
    document = json.loads(out.read_text())
    stats_samples = [s * 1000.0 for entry in document["benchmarks"] for s in entry["stats"]["data"]]
    assert stats_samples == pytest.approx(list(cell.latency.samples_ms), abs=10 ** -timer.SAMPLE_DECIMALS)
    assert cell.latency.session_sizes and len(cell.latency.session_sizes) == timer.SESSIONS
    # The committed thresholds hold the smoke profile's mAP floors for every cell; this tiny one-cell run
    # is checked against the rule alone (its format is what is tested here).
    rules = tmp_path / "thresholds.toml"
    rules.write_text('[defaults]\nlatency_factor = 1.75\nsource = "test: format only"\n')
    gate = subprocess.run([sys.executable, "-m", "yolobench", "gate", "--current", str(out),
                           "--thresholds", str(rules)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert gate.returncode == 0, gate.stdout + gate.stderr
