"""Scenarios beside the latency matrix (yolobench.scenarios): selection, the stream runner, run-file
entries, the gate's floors and ceilings, the report's table. Deterministic: nothing here is judged by speed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from yolobench import gate, report, scenarios
from yolobench.errors import UserError
from yolobench.runfile import cell_extra_info, load_run, run_document, write_run
from yolobench.timer import Latency

REPO = Path(__file__).resolve().parents[1]
ZEN5 = {"cpu": {"vendor_id_raw": "AuthenticAMD", "family": 26, "model": 2, "brand_raw": "AMD EPYC"}}


def test_scenarios_are_chosen_by_name_or_all():
    assert scenarios.parse_scenarios(None) == []
    assert scenarios.parse_scenarios("memory,e2e") == ["e2e", "memory"]
    assert scenarios.parse_scenarios("all") == list(scenarios.SCENARIOS)
    with pytest.raises(UserError, match="unknown scenario 'batch'; choose from: e2e, throughput, memory, all"):
        scenarios.parse_scenarios("e2e,batch")


def test_scenario_cells_are_named_after_the_matrix_cell():
    assert scenarios.scenario_cell("pruned_quant", "deepsparse", 640, "e2e") == "pruned_quant-deepsparse-640-e2e"
    assert scenarios.scenario_cell("dense", "openvino", 416, "throughput", 2) == "dense-openvino-416-throughput2"


def test_streams_run_concurrently_and_every_frame_is_counted():
    calls = []

    def stream(k):
        def call():
            time.sleep(0.01)
            calls.append(k)
        return call

    result = scenarios.run_streams([stream(0), stream(1)], seconds=0.3, warmup_s=0.02)
    assert result.streams == 2 and result.frames == sum(result.frames_per_stream)
    assert all(n > 0 for n in result.frames_per_stream)
    assert result.seconds >= 0.3  # the window runs to the last completed call, never shorter
    assert result.fps == pytest.approx(result.frames / result.seconds)
    assert len(result.call_ms) == result.frames
    # concurrent, not one after the other: two sleeping streams finish about twice the frames of one
    assert result.frames > 1.5 * 0.3 / 0.01 * 0.8


def test_a_failing_stream_fails_the_measurement():
    def broken():
        raise ValueError("engine fell over")

    with pytest.raises(ValueError, match="engine fell over"):
        scenarios.run_streams([lambda: time.sleep(0.001), broken], seconds=0.1, warmup_s=0.01)


def test_threads_are_shared_between_streams():
    assert scenarios.threads_per_stream(2, 2) == 1
    assert scenarios.threads_per_stream(8, 3) == 2
    assert scenarios.threads_per_stream(2, 4) == 1  # never zero


def test_a_childs_peak_memory_is_its_own_not_its_parents():
    """The memory scenario's child is started by a large benchmark process: its peak must not include
    the parent's (ru_maxrss on Linux carries the parent's over fork and exec; VmHWM does not)."""
    import numpy as np

    ballast = np.ones(400 * 1024 * 1024 // 8)  # 400 MB touched in this (the parent) process
    code = "from yolobench.scenarios import peak_rss_mb; print(peak_rss_mb())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    own = float(child.stdout.strip())
    assert 5 < own < 300, own  # a Python with numpy: tens of MB, never the parent's 400+
    assert scenarios.peak_rss_mb() > 400
    del ballast


# --- run files with scenario entries -------------------------------------------------------------


def _matrix_cell(name_parts, fps_ms):
    variant, engine, imgsz = name_parts
    info = cell_extra_info(Latency.from_samples([fps_ms] * 20), variant=variant, engine=engine, engine_version="1",
                           threads=2, imgsz=imgsz, cpu_model="AMD EPYC",
                           fraction_of_supported_ops=1.0 if engine == "deepsparse" else None)
    return info


def _entries():
    e2e = Latency.from_samples([25.0] * 30)
    inference = Latency.from_samples([20.0] * 30)
    tput = scenarios.Throughput(streams=2, threads_per_stream=1, seconds=5.0, frames=400, frames_per_stream=(200, 200),
                                call_ms=tuple([25.0] * 400))
    common = dict(variant="dense", engine="onnxruntime", imgsz=416, threads=2, engine_version="1", form="fp32",
                  artifact_key="k")
    return [
        scenarios.extra_info("e2e", values=scenarios.e2e_values(e2e, inference), **common),
        scenarios.extra_info("throughput", values=scenarios.throughput_values(tput), streams=2, **common),
        scenarios.extra_info("memory", values={"peak_rss_mb": 900.0, "runs": 10}, **common),
    ]


def _run_file(tmp_path, entries=None) -> Path:
    infos = [_matrix_cell(("dense", "onnxruntime", 416), 20.0), *(entries if entries is not None else _entries())]
    return write_run(tmp_path / "run.json", run_document(infos, machine=ZEN5, commit={"id": "abc"}))


def test_scenario_entries_load_beside_the_matrix(tmp_path):
    path = _run_file(tmp_path)
    assert list(load_run(path).cells) == ["dense-onnxruntime-416"]  # the matrix readers skip scenario entries
    found = scenarios.load_scenarios(path)
    assert set(found) == {"dense-onnxruntime-416-e2e", "dense-onnxruntime-416-throughput2",
                          "dense-onnxruntime-416-memory"}
    e2e = found["dense-onnxruntime-416-e2e"]
    assert e2e.fps == pytest.approx(40.0) and e2e.extra["overhead_fraction"] == pytest.approx(0.2)
    assert found["dense-onnxruntime-416-throughput2"].fps == pytest.approx(80.0)
    assert found["dense-onnxruntime-416-memory"].peak_rss_mb == 900.0


def test_a_throughput_entry_whose_fps_is_not_frames_over_seconds_is_refused(tmp_path):
    entries = _entries()
    entries[1]["fps"] = 95.0
    path = _run_file(tmp_path, entries)
    with pytest.raises(UserError, match=r"fps 95 is not frames / seconds \(400 / 5\)"):
        scenarios.load_scenarios(path)


@pytest.mark.parametrize("index, key, value, message", [
    (1, "seconds", 0, r"'seconds' must be a number > 0, got 0"),  # was a ZeroDivisionError
    (0, "imgsz", "large", r"'imgsz' must be an integer >= 1, got 'large'"),  # was int()'s ValueError
    (2, "imgsz", None, r"'imgsz' must be an integer >= 1, got None"),
    (0, "threads", 1.5, r"'threads' must be an integer >= 1, got 1.5"),
])
def test_a_malformed_scenario_entry_is_one_line_naming_the_field(tmp_path, index, key, value, message):
    entries = _entries()
    entries[index][key] = value
    with pytest.raises(UserError, match=message):
        scenarios.load_scenarios(_run_file(tmp_path, entries))


def _thresholds(tmp_path, text: str, machine: str = "AMD family 26 model 2 (Zen 5)") -> gate.Thresholds:
    path = tmp_path / "t.toml"
    path.write_text(f'[defaults]\nlatency_factor = 1.75\nmachine = "{machine}"\nsource = "test"\n' + text)
    return gate.load_thresholds(path)


def _scenario_verdicts(tmp_path, text, machine="AMD family 26 model 2 (Zen 5)"):
    run = load_run(_run_file(tmp_path))
    checks = gate.evaluate(run, None, _thresholds(tmp_path, text, machine))
    return {(c.cell, c.check): c for c in checks if "-416-" in c.cell}


def test_gate_judges_scenario_floors_and_ceilings(tmp_path):
    verdicts = _scenario_verdicts(tmp_path, '''
[scenarios."dense-onnxruntime-416-e2e"]
fps_floor = 50
source = "test"
[scenarios."dense-onnxruntime-416-throughput2"]
fps_floor = 60
source = "test"
[scenarios."dense-onnxruntime-416-memory"]
peak_rss_mb_ceiling = 800
source = "test"
[scenarios."dense-openvino-416-e2e"]
fps_floor = 10
source = "test"
''')
    assert verdicts["dense-onnxruntime-416-e2e", gate.CHECK_FPS].verdict == gate.FAIL  # 40 < 50
    assert verdicts["dense-onnxruntime-416-throughput2", gate.CHECK_FPS].verdict == gate.OK  # 80 >= 60
    assert verdicts["dense-onnxruntime-416-memory", gate.CHECK_RSS].verdict == gate.FAIL  # 900 > 800
    assert verdicts["dense-openvino-416-e2e", gate.CHECK_PRESENT].verdict == gate.FAIL  # not in the run


def test_fps_floors_of_another_generation_are_not_compared_but_memory_is(tmp_path):
    verdicts = _scenario_verdicts(tmp_path, '''
[scenarios."dense-onnxruntime-416-e2e"]
fps_floor = 50
source = "test"
[scenarios."dense-onnxruntime-416-memory"]
peak_rss_mb_ceiling = 1000
source = "test"
''', machine="AMD family 25 model 17 (Zen 4)")
    assert verdicts["dense-onnxruntime-416-e2e", gate.CHECK_FPS].verdict == gate.NOT_COMPARED
    assert verdicts["dense-onnxruntime-416-memory", gate.CHECK_RSS].verdict == gate.OK


def test_suggested_scenario_limits_round_trip_and_pass_their_own_run(tmp_path):
    run = load_run(_run_file(tmp_path))
    text = gate.suggest_thresholds(run)
    assert '[scenarios."dense-onnxruntime-416-e2e"]\nfps_floor = 22.8' in text  # 40 x 0.57
    assert "peak_rss_mb_ceiling = 1125" in text  # 900 x 1.25
    path = tmp_path / "suggested.toml"
    path.write_text(text)
    checks = gate.evaluate(run, None, gate.load_thresholds(path))
    assert not [c for c in checks if c.failed]
    assert {c.check for c in checks} >= {gate.CHECK_FPS, gate.CHECK_RSS}


def test_a_misspelt_scenario_limit_is_refused(tmp_path):
    with pytest.raises(UserError, match="unknown key"):
        _thresholds(tmp_path, '[scenarios."dense-onnxruntime-416-e2e"]\nfps_flor = 5\nsource = "x"\n')


def test_report_shows_the_scenarios_beside_single_stream_fps(tmp_path):
    lines = "\n".join(report.scenario_section(load_run(_run_file(tmp_path)))).splitlines()
    table = [line for line in lines if line.startswith("| dense-onnxruntime-416")]
    assert table, lines
    cells = [c.strip() for c in table[0].strip("|").split("|")]
    # cell, single-stream FPS, e2e FPS, e2e p50, e2e p99, pre/post %, throughput FPS, streams, gain, peak RSS
    assert cells[1] == "50.0" and cells[2] == "40.0" and cells[5] == "20" and cells[6] == "80.0"
    assert cells[7] == "2" and cells[8] == "1.60x" and cells[9] == "900"


def test_a_run_without_scenarios_has_no_section(tmp_path):
    assert report.scenario_section(load_run(_run_file(tmp_path, entries=[]))) == []


# --- selection in pytest ---------------------------------------------------------------------------


def _collect(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", "--collect-only", "-q",
                           "--yb-profile=tiny", "--yb-variants=dense,pruned_quant", "--yb-engines=onnxruntime",
                           *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if "test_scenarios.py::" in line]


def test_scenarios_run_only_when_asked_for():
    assert _collect() == []
    ids = _collect("--yb-scenarios=e2e,memory", "--yb-scenario-variants=pruned_quant")
    assert sorted(i.split("[", 1)[1].rstrip("]") for i in ids) == sorted(
        f"pruned_quant-onnxruntime-{z}-{s}" for z in _tiny_sizes() for s in ("e2e", "memory"))


def _tiny_sizes():
    from yolobench import catalogue

    return catalogue.get_profile("tiny").export_imgsz
