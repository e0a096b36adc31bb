"""The gate: the latency decision rule, the thresholds file, the run file, and `yolobench gate` end to end.

Run files are built here from explicit samples through the same `cell_extra_info` the benchmarks use;
tests/data/gate/ holds a run file written by pytest-benchmark itself and two broken ones.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yolobench import cli, gate
from yolobench.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, UserError
from yolobench.runfile import cell_extra_info, load_run, reference_cell_name, run_document, split_cell_name, write_run
from yolobench.timer import Latency

DATA = Path(__file__).parent / "data" / "gate"
REFERENCE_CELL = reference_cell_name(416)
REPO_THRESHOLDS = Path(__file__).resolve().parents[1] / "results" / "thresholds-smoke.toml"
CPU = "AMD EPYC test"
N = 200  # samples per cell, as the protocol's MIN_ITERS
FACTOR = gate.DEFAULT_LATENCY_FACTOR


def tight(center_ms: float) -> list[float]:
    """A quiet machine: samples within +-0.5% of the center."""
    return [center_ms * (1 + 0.001 * (i % 11 - 5)) for i in range(N)]


def spread(low_ms: float, high_ms: float) -> list[float]:
    """A noisy machine: samples evenly spread over [low, high]."""
    return [low_ms + (high_ms - low_ms) * i / (N - 1) for i in range(N)]


def cell(name: str, samples: list[float], *, speedup: float | None = None, map50: float | None = None,
         cpu: str = CPU, threads: int = 2, imgsz: int | None = None) -> dict:
    variant, engine, sized = split_cell_name(name)
    imgsz = sized if imgsz is None else imgsz
    latency = samples if isinstance(samples, Latency) else Latency.from_samples(samples)
    info = cell_extra_info(
        latency, variant=variant, engine=engine, engine_version="1.0", threads=threads,
        imgsz=imgsz, map50=map50, cpu_model=cpu,
        fraction_of_supported_ops=1.0 if engine == "deepsparse" else None)
    info["speedup_vs_reference"] = speedup
    return info


def write(tmp_path: Path, name: str, *cells: dict) -> Path:
    return write_run(tmp_path / f"{name}.json", run_document(list(cells), commit={"id": name}))


THRESHOLDS_HEADER = '[defaults]\nlatency_factor = 1.25\nsource = "test"\n'


def thresholds(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "thresholds.toml"
    path.write_text(THRESHOLDS_HEADER + text)
    return path


def gate_cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["gate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def row(out: str, cell_name: str, check: str) -> str:
    """The table row of one check of one cell."""
    rows = [line for line in out.splitlines() if line.startswith(cell_name + " ") and check in line]
    assert len(rows) == 1, f"expected one '{check}' row for {cell_name} in:\n{out}"
    return rows[0]


# --- the latency decision rule (pure) ---


def lat(samples: list[float], sessions: list[int] | None = None) -> Latency:
    return Latency.from_samples(samples, session_sizes=sessions or ())


def sessions_at(*centers_ms: float) -> Latency:
    """A quiet machine whose independently loaded sessions settled at different medians."""
    per = N // len(centers_ms)
    samples = [x for c in centers_ms for x in tight(c)[:per]]
    return lat(samples, [per] * len(centers_ms))


def test_compare_latency_known_numbers():
    result = gate.compare_latency(lat([9.0, 10.0, 11.0]), lat([19.0, 20.0, 21.0]), factor=1.25)
    assert (result.baseline_ms, result.current_ms, result.basis) == (10.0, 20.0, gate.BASIS_P50)
    assert result.ratio == 2.0 and result.delta_ms == 10.0
    assert result.noise_ms == 1.0  # (IQR 1 + IQR 1) / 2; no sessions recorded
    assert result.regressed


def test_beyond_factor_but_within_noise_is_not_a_regression():
    result = gate.compare_latency(lat(spread(5.0, 15.0)), lat(spread(6.5, 19.5)), factor=1.25)
    assert result.ratio == pytest.approx(1.3) and result.beyond_factor
    assert result.noise_ms == pytest.approx((5.0 + 6.5) / 2)  # IQR of a uniform spread: half its width
    assert not result.beyond_noise and not result.regressed


def test_beyond_noise_but_within_factor_is_not_a_regression():
    result = gate.compare_latency(lat(tight(10.0)), lat(tight(11.0)), factor=1.25)
    assert result.beyond_noise and not result.beyond_factor and not result.regressed


def test_faster_is_not_a_regression():
    assert not gate.compare_latency(lat(tight(10.0)), lat(tight(5.0))).regressed


def test_a_slow_session_mode_is_not_a_regression():
    """ONNX Runtime's two session modes (measured: ~15 and ~26 ms on the same graph, run to run)."""
    baseline, current = sessions_at(15.45, 15.53, 15.53), sessions_at(26.9, 27.0, 15.89)
    assert current.p50_ms / baseline.p50_ms > 1.25  # the pooled medians alone would have failed it
    result = gate.compare_latency(baseline, current, factor=1.25)
    assert (result.baseline_ms, result.current_ms) == (15.45, 15.89)  # fastest sessions
    assert result.basis == gate.BASIS_SESSIONS and not result.regressed
    flat = gate.compare_latency(lat(list(baseline.samples_ms)), lat(list(current.samples_ms)), factor=1.25)
    assert flat.regressed  # what the rule without sessions said about the same samples


def test_session_spread_is_noise_the_iqr_cannot_see():
    """Quiet sessions (tiny IQR), but the baseline's sessions spread 10 -> 14 ms: 1.3x is within noise."""
    baseline, current = sessions_at(10.0, 14.0, 12.0), sessions_at(13.0, 13.1, 13.2)
    result = gate.compare_latency(baseline, current, factor=1.25)
    assert result.ratio == pytest.approx(1.3) and result.beyond_factor
    assert result.noise_ms == pytest.approx((14.0 - 10.0) + (13.2 - 13.0))  # both runs' session spreads
    assert not result.regressed


def test_slowdown_beyond_every_session_is_a_regression():
    baseline, current = sessions_at(10.0, 10.3, 10.1), sessions_at(14.0, 14.2, 13.9)
    result = gate.compare_latency(baseline, current, factor=1.25)
    assert result.ratio == pytest.approx(1.39)
    assert result.noise_ms == pytest.approx(0.3 + 0.3)
    assert result.regressed  # every session moved: the fastest current is 1.39x the fastest baseline


@given(st.lists(st.floats(min_value=0.1, max_value=1e3, allow_nan=False), min_size=1, max_size=50),
       st.floats(min_value=0.1, max_value=FACTOR))
def test_a_slowdown_within_the_factor_never_fails(samples, scale):
    assert not gate.compare_latency(lat(samples), lat([s * scale for s in samples]), FACTOR).regressed


# --- `yolobench gate` end to end ---


@pytest.fixture
def base(tmp_path):
    return write(tmp_path, "baseline",
                 cell(REFERENCE_CELL, tight(10.0), speedup=1.0, map50=0.40),
                 cell("pruned_quant-deepsparse-416", tight(4.0), speedup=2.5, map50=0.38))


def test_latency_regression_fails_naming_the_cell(tmp_path, base, capsys):
    current = write(tmp_path, "current",
                    cell(REFERENCE_CELL, tight(10.0), speedup=1.25, map50=0.40),
                    cell("pruned_quant-deepsparse-416", tight(8.0), speedup=1.25, map50=0.38))
    code, out, _ = gate_cli(capsys, "--current", current, "--baseline", base, "--thresholds", thresholds(tmp_path))
    assert code == EXIT_FAILED
    assert "FAIL" in row(out, "pruned_quant-deepsparse-416", "latency p50")
    assert "FAIL" not in row(out, REFERENCE_CELL, "latency p50")
    assert "FAILED" in out.splitlines()[-1] and "pruned_quant-deepsparse-416" in out.splitlines()[-1]


def test_improvement_passes(tmp_path, base, capsys):
    current = write(tmp_path, "current",
                    cell(REFERENCE_CELL, tight(10.0), speedup=1.0, map50=0.40),
                    cell("pruned_quant-deepsparse-416", tight(2.0), speedup=5.0, map50=0.38))
    code, out, _ = gate_cli(capsys, "--current", current, "--baseline", base, "--thresholds", thresholds(tmp_path))
    assert code == EXIT_OK
    assert " ok " in row(out, "pruned_quant-deepsparse-416", "latency p50")
    assert "gate: passed" in out


def test_noisy_slowdown_within_noise_passes(tmp_path, capsys):
    baseline = write(tmp_path, "baseline", cell("pruned-deepsparse-416", spread(5.0, 15.0)))
    current = write(tmp_path, "current", cell("pruned-deepsparse-416", spread(6.5, 19.5)))  # 1.3x mean and p50
    code, out, _ = gate_cli(capsys, "--current", current, "--baseline", baseline,
                            "--thresholds", thresholds(tmp_path))
    assert code == EXIT_OK
    line = row(out, "pruned-deepsparse-416", "latency p50")
    assert "within noise" in line and "1.30" in line


def test_missing_cell_fails_naming_it(tmp_path, base, capsys):
    current = write(tmp_path, "current", cell(REFERENCE_CELL, tight(10.0), speedup=1.0, map50=0.40))
    code, out, _ = gate_cli(capsys, "--current", current, "--baseline", base, "--thresholds", thresholds(tmp_path))
    assert code == EXIT_FAILED
    line = row(out, "pruned_quant-deepsparse-416", "present")
    assert "missing" in line and "FAIL" in line
    assert "pruned_quant-deepsparse-416 (present)" in out.splitlines()[-1]


def test_only_current_judges_a_slice_and_names_what_it_left_out(tmp_path, base, capsys):
    """`pytest -k ...` runs part of the matrix: --only-current judges those cells, names the rest."""
    current = write(tmp_path, "current", cell(REFERENCE_CELL, tight(10.0), speedup=1.0, map50=0.40))
    limits = thresholds(tmp_path, '[cells."pruned-openvino-416"]\nspeedup_floor = 1.1\nsource = "test"\n')
    code, out, _ = gate_cli(capsys, "--current", current, "--baseline", base, "--thresholds", limits,
                            "--only-current")
    assert code == EXIT_OK, out
    assert "present" not in out
    left = next(line for line in out.splitlines() if line.startswith("--only-current:"))
    assert "pruned_quant-deepsparse-416" in left and "pruned-openvino-416" in left
    # the cells it did run are still judged: a slower reference cell fails
    slow = write(tmp_path, "slow", cell(REFERENCE_CELL, tight(20.0), speedup=1.0, map50=0.40))
    code, out, _ = gate_cli(capsys, "--current", slow, "--baseline", base, "--thresholds", limits, "--only-current")
    assert code == EXIT_FAILED and "FAIL" in row(out, REFERENCE_CELL, "latency p50")


def test_without_only_current_a_slice_fails_and_the_note_names_the_option(tmp_path, base, capsys):
    current = write(tmp_path, "current", cell(REFERENCE_CELL, tight(10.0), speedup=1.0, map50=0.40))
    code, out, _ = gate_cli(capsys, "--current", current, "--baseline", base, "--thresholds", thresholds(tmp_path))
    assert code == EXIT_FAILED and "--only-current" in row(out, "pruned_quant-deepsparse-416", "present")


def test_cell_with_floors_missing_without_baseline_fails(tmp_path, capsys):
    current = write(tmp_path, "current", cell(REFERENCE_CELL, tight(10.0), speedup=1.0))
    limits = thresholds(tmp_path, '[cells."pruned-openvino-416"]\nspeedup_floor = 1.1\nsource = "test"\n')
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", limits)
    assert code == EXIT_FAILED
    assert "has floors in thresholds" in row(out, "pruned-openvino-416", "present")


def test_map50_below_floor_fails_naming_the_cell(tmp_path, capsys):
    current = write(tmp_path, "current",
                    cell(REFERENCE_CELL, tight(10.0), speedup=1.0, map50=0.40),
                    cell("oneshot-openvino-416", tight(6.0), speedup=1.6, map50=0.21))
    limits = thresholds(tmp_path, '[cells."oneshot-openvino-416"]\nmap50_floor = 0.35\nsource = "test"\n')
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", limits)
    assert code == EXIT_FAILED
    line = row(out, "oneshot-openvino-416", "map50")
    assert "FAIL" in line and "0.210" in line and ">= 0.350" in line
    assert "oneshot-openvino-416 (map50)" in out.splitlines()[-1]
    assert "no floor" in row(out, REFERENCE_CELL, "map50")


def test_speedup_below_floor_fails_naming_the_cell(tmp_path, capsys):
    current = write(tmp_path, "current",
                    cell(REFERENCE_CELL, tight(10.0), speedup=1.0),
                    cell("pruned_quant-deepsparse-416", tight(7.0), speedup=1.43))
    limits = thresholds(tmp_path, '[cells."pruned_quant-deepsparse-416"]\nspeedup_floor = 2.0\nsource = "test"\n')
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", limits)
    assert code == EXIT_FAILED
    line = row(out, "pruned_quant-deepsparse-416", "speedup")
    assert "FAIL" in line and "1.43" in line and ">= 2.00" in line and "0.71" in line  # ratio 1.43 / 2.0
    assert "pruned_quant-deepsparse-416 (speedup)" in out.splitlines()[-1]


def test_speedup_not_recorded_fails_when_a_floor_exists(tmp_path, capsys):
    current = write(tmp_path, "current", cell("pruned_quant-deepsparse-416", tight(4.0), speedup=None))
    limits = thresholds(tmp_path, '[cells."pruned_quant-deepsparse-416"]\nspeedup_floor = 2.0\nsource = "test"\n')
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", limits)
    assert code == EXIT_FAILED
    assert "reference cell" in row(out, "pruned_quant-deepsparse-416", "speedup")


def test_cells_without_floors_are_reported_not_invented(tmp_path, capsys):
    current = write(tmp_path, "current", cell("pruned-deepsparse-416", tight(5.0), speedup=2.0, map50=0.3))
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", thresholds(tmp_path))
    assert code == EXIT_OK
    assert "no floor" in row(out, "pruned-deepsparse-416", "speedup")
    assert "no floor" in row(out, "pruned-deepsparse-416", "map50")
    assert "no baseline" in row(out, "pruned-deepsparse-416", "latency p50")


def test_latency_on_another_cpu_is_not_compared(tmp_path, capsys):
    baseline = write(tmp_path, "baseline", cell("pruned-deepsparse-416", tight(5.0), cpu="Intel i9-11900"))
    current = write(tmp_path, "current", cell("pruned-deepsparse-416", tight(15.0)))
    code, out, _ = gate_cli(capsys, "--current", current, "--baseline", baseline,
                            "--thresholds", thresholds(tmp_path))
    assert code == EXIT_OK
    assert "different CPU" in row(out, "pruned-deepsparse-416", "latency p50")


def test_latency_of_another_model_under_the_same_name_is_not_compared(tmp_path, capsys):
    """A changed artifact key (another recipe, the user's checkpoint) starts a new series: a 3x slower
    model is not a regression of the old one, and the row says why it was not judged."""
    old, new = cell("pruned_quant-deepsparse-416", tight(5.0)), cell("pruned_quant-deepsparse-416", tight(15.0))
    old["artifact_key"], new["artifact_key"] = "5796e345aaaaaaaa", "f4a480bbbbbbbbbb"
    code, out, _ = gate_cli(capsys, "--current", write(tmp_path, "current", new),
                            "--baseline", write(tmp_path, "baseline", old), "--thresholds", thresholds(tmp_path))
    assert code == EXIT_OK
    assert "another model (artifact 5796e345aaaaaaaa vs f4a480bbbbbbbbbb)" in row(out, "pruned_quant-deepsparse-416",
                                                                                  "latency p50")
    new["artifact_key"] = old["artifact_key"]  # the same model 3x slower: judged, and a regression
    code, out, _ = gate_cli(capsys, "--current", write(tmp_path, "current", new),
                            "--baseline", write(tmp_path, "baseline", old), "--thresholds", thresholds(tmp_path))
    assert code == EXIT_FAILED and "FAIL" in row(out, "pruned_quant-deepsparse-416", "latency p50")


def test_the_repositorys_floors_do_not_judge_a_users_model_but_the_users_own_do(tmp_path, capsys):
    name = "dense-onnxruntime-160"  # a cell the repository's smoke thresholds give floors to
    mine = cell(name, tight(10.0), speedup=1.0, map50=0.10)
    mine["weights"] = {"sha256": "ab" * 32, "family": "yolov8n", "path": "/data/best.pt"}
    current = write(tmp_path, "current", mine)
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", REPO_THRESHOLDS, "--only-current")
    assert code == EXIT_OK, out
    assert "your model" in row(out, name, "map50")
    own = thresholds(tmp_path, f'[cells."{name}"]\nmap50_floor = 0.30\nsource = "mine"\n')
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", own, "--only-current")
    assert code == EXIT_FAILED and "FAIL" in row(out, name, "map50")


def test_a_ladder_from_the_users_checkpoint_does_not_miss_the_rungs_it_skips_by_design(tmp_path, capsys):
    """`--weights` builds dense and what derives from it; the baseline's v5n_hardswish and transfer cells
    are not missing from such a run, its own rungs are."""
    baseline = write(tmp_path, "baseline", *(cell(n, tight(5.0)) for n in (
        "dense-onnxruntime-160", "pruned_quant-deepsparse-160", "v5n_hardswish_pq-deepsparse-160",
        "transfer-deepsparse-160")))
    mine = cell("dense-onnxruntime-160", tight(9.0))
    mine["weights"] = {"sha256": "ab" * 32, "family": "yolov8n", "path": "/data/best.pt"}
    code, out, _ = gate_cli(capsys, "--current", write(tmp_path, "current", mine), "--baseline", baseline,
                            "--thresholds", thresholds(tmp_path))
    assert code == EXIT_FAILED
    assert "missing" in row(out, "pruned_quant-deepsparse-160", "present")
    assert "v5n_hardswish_pq-deepsparse-160" not in out and "transfer-deepsparse-160" not in out


def test_per_cell_latency_factor_overrides_the_default(tmp_path, capsys):
    baseline = write(tmp_path, "baseline", cell("pruned-openvino-416", tight(10.0)))
    current = write(tmp_path, "current", cell("pruned-openvino-416", tight(14.0)))
    limits = thresholds(tmp_path, '[cells."pruned-openvino-416"]\nlatency_factor = 1.5\nsource = "test"\n')
    code, out, _ = gate_cli(capsys, "--current", current, "--baseline", baseline, "--thresholds", limits)
    assert code == EXIT_OK
    assert "(1.5x" in row(out, "pruned-openvino-416", "latency p50")


# --- unreadable input: exit 2, one line, no traceback ---


def bad_input(tmp_path: Path) -> dict[str, tuple[list, str]]:
    good = write(tmp_path, "good", cell(REFERENCE_CELL, tight(10.0), speedup=1.0))
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[defaults\nlatency_factor = 1.25\n")
    unsourced = thresholds(tmp_path, '[cells."pruned-openvino-416"]\nspeedup_floor = 1.1\n')
    misspelt = tmp_path / "misspelt.toml"
    misspelt.write_text(THRESHOLDS_HEADER + '[cells."pruned-openvino-416"]\nspeedup_flor = 1.1\nsource = "x"\n')
    return {
        "missing run": (["--current", tmp_path / "nope.json"], "nope.json"),
        "truncated JSON": (["--current", DATA / "truncated.json"], "not valid JSON"),
        "missing key": (["--current", DATA / "missing_p90.json"], "p90"),
        "missing baseline": (["--current", good, "--baseline", tmp_path / "gone.json"], "gone.json"),
        "bad TOML": (["--current", good, "--thresholds", bad_toml], "not valid TOML"),
        "missing thresholds": (["--current", good, "--thresholds", tmp_path / "none.toml"], "none.toml"),
        "number without source": (["--current", good, "--thresholds", unsourced], "source"),
        "misspelt key": (["--current", good, "--thresholds", misspelt], "speedup_flor"),
    }


@pytest.mark.parametrize("case", ["missing run", "truncated JSON", "missing key", "missing baseline", "bad TOML",
                                  "missing thresholds", "number without source", "misspelt key"])
def test_unreadable_input_exits_2_with_one_line(tmp_path, capsys, case):
    args, named = bad_input(tmp_path)[case]
    code, out, err = gate_cli(capsys, *args)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("yolobench gate: error: ") and named in err


# --- the run file ---


def test_pytest_benchmark_output_loads():
    run = load_run(DATA / "pytest_benchmark_run.json")
    assert set(run.cells) == {REFERENCE_CELL, "pruned_quant-deepsparse-416"}
    pq = run.cells["pruned_quant-deepsparse-416"]
    assert (pq.variant, pq.engine, pq.threads, pq.imgsz, pq.batch) == ("pruned_quant", "deepsparse", 2, 416, 1)
    assert pq.fraction_of_supported_ops == 1.0 and pq.map50 == 0.398
    assert pq.latency.n == 20 and pq.speedup_vs_reference == pytest.approx(10.2 / 4.1)
    assert pq.benchmark.endswith("test_latency[pruned_quant-deepsparse]")


def test_cell_extra_info_round_trips_through_a_run_file(tmp_path):
    latency = Latency.from_samples([3.123456789, 3.2, 2.9, 3.05])
    info = cell_extra_info(latency, variant="pruned", engine="openvino", engine_version="2026.4.1", threads=2,
                           imgsz=416, reference_latency=Latency.from_samples([6.1, 6.2]), map50=0.3,
                           cpu_model=CPU)
    assert info["cell"] == "pruned-openvino-416" and info["reference_cell"] == REFERENCE_CELL
    assert "fraction_of_supported_ops" not in info  # only engines with a fallback record it
    loaded = load_run(write(tmp_path, "run", info)).cells["pruned-openvino-416"]
    assert loaded.latency.p50_ms == pytest.approx(latency.p50_ms, abs=1e-4)  # samples stored to 0.1 us
    assert loaded.speedup_vs_reference == pytest.approx(6.15 / latency.p50_ms)
    assert loaded.cpu_model == CPU and loaded.map50 == 0.3


def test_deepsparse_cell_must_record_fraction_of_supported_ops():
    with pytest.raises(ValueError, match="fraction_of_supported_ops"):
        cell_extra_info(Latency.from_samples([1.0]), variant="dense", engine="deepsparse", engine_version="1.8.0",
                        threads=2, imgsz=416, cpu_model=CPU)


def test_benchmarks_without_a_cell_are_ignored(tmp_path):
    doc = run_document([cell(REFERENCE_CELL, tight(10.0))])
    doc["benchmarks"].append({"name": "test_letterbox", "extra_info": {}, "stats": {}})
    assert set(load_run(write_run(tmp_path / "run.json", doc)).cells) == {REFERENCE_CELL}


def broken(tmp_path: Path, edit) -> Path:
    info = cell(REFERENCE_CELL, tight(10.0), speedup=1.0)
    edit(info)
    return write(tmp_path, "broken", info)


@pytest.mark.parametrize("edit, message", [
    (lambda i: i["latency_ms"].update(p50=1.0), "does not match its samples_ms"),
    (lambda i: i.update(fps=1.0), "fps"),
    (lambda i: i.update(samples_ms=[]), "samples_ms"),
    (lambda i: i.update(threads="2"), "threads"),
    (lambda i: i.update(map50=1.5), "map50"),
    (lambda i: i.pop("engine_version"), "engine_version"),
])
def test_invalid_cells_name_the_file_cell_and_field(tmp_path, edit, message):
    path = broken(tmp_path, edit)
    with pytest.raises(UserError, match=message) as err:
        load_run(path)
    assert str(path) in str(err.value) and REFERENCE_CELL in str(err.value)


def test_duplicate_cells_are_rejected(tmp_path):
    doc = run_document([cell(REFERENCE_CELL, tight(10.0)), cell(REFERENCE_CELL, tight(11.0))])
    with pytest.raises(UserError, match="appears twice"):
        load_run(write_run(tmp_path / "run.json", doc))


def test_a_run_without_cells_is_rejected(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(UserError, match="no benchmark cells"):
        load_run(path)


# --- thresholds ---


PAIR = "pruned_quant-deepsparse-640 vs dense-openvino_nncf-640"


def _pair_limits(tmp_path, floor: float, machine: str | None = None) -> Path:
    header = f'machine = "{machine}"\n' if machine else ""
    return thresholds(tmp_path, f'{header}[pairs."{PAIR}"]\nspeedup_floor = {floor}\nsource = "test"\n')


def _pair_run(tmp_path, faster_ms: float, slower_ms: float, cpu: str = CPU) -> Path:
    return write(tmp_path, "current", cell("pruned_quant-deepsparse-640", tight(faster_ms), cpu=cpu),
                 cell("dense-openvino_nncf-640", tight(slower_ms), cpu=cpu))


def test_a_pair_floor_passes_and_fails_on_the_ratio_inside_the_run(tmp_path, capsys):
    code, out, _ = gate_cli(capsys, "--current", _pair_run(tmp_path, 18.0, 21.6), "--thresholds", _pair_limits(tmp_path, 1.1))
    assert code == EXIT_OK
    assert "1.20" in row(out, PAIR, "speedup over") and "ok" in row(out, PAIR, "speedup over")
    code, out, _ = gate_cli(capsys, "--current", _pair_run(tmp_path, 20.0, 21.6), "--thresholds", _pair_limits(tmp_path, 1.1))
    assert code == EXIT_FAILED
    line = row(out, PAIR, "speedup over")
    assert "FAIL" in line and "1.08" in line and ">= 1.10" in line


def test_a_pair_with_a_cell_missing_fails_unless_only_the_current_cells_are_judged(tmp_path, capsys):
    current = write(tmp_path, "current", cell("pruned_quant-deepsparse-640", tight(18.0)))
    limits = _pair_limits(tmp_path, 1.1)
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", limits)
    assert code == EXIT_FAILED and "dense-openvino_nncf-640 not in this run" in row(out, PAIR, "speedup over")
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", limits, "--only-current")
    assert code == EXIT_OK and PAIR not in out


def _pair_run_on_zen4(tmp_path, faster_ms: float, slower_ms: float) -> Path:
    return write_on(tmp_path, "zen4", ZEN4, cell("pruned_quant-deepsparse-640", tight(faster_ms)),
                    cell("dense-openvino_nncf-640", tight(slower_ms)))


def _suggested(tmp_path, out: str):
    suggested = tmp_path / "suggested.toml"
    suggested.write_text(out)
    return gate.load_thresholds(suggested)


def test_a_pair_floor_from_another_cpu_generation_is_not_compared(tmp_path, capsys):
    limits = _pair_limits(tmp_path, 1.5, machine="AMD family 26 model 2 (Zen 5)")
    code, out, _ = gate_cli(capsys, "--current", _pair_run_on_zen4(tmp_path, 20.0, 21.6), "--thresholds", limits)
    assert code == EXIT_OK
    line = row(out, PAIR, "speedup over")
    assert "not compared" in line and "Zen 5" in line and "1.08" in line


@pytest.mark.parametrize("name, message", [
    ("pruned_quant-deepsparse-640", "a pair is named"),
    ("pruned_quant-deepsparse vs dense-openvino_nncf-640", "is not a cell name"),
])
def test_a_badly_named_pair_is_rejected_naming_it(tmp_path, name, message):
    path = thresholds(tmp_path, f'[pairs."{name}"]\nspeedup_floor = 1.1\nsource = "test"\n')
    with pytest.raises(UserError, match=message):
        gate.load_thresholds(path)


def test_suggest_carries_the_pairs_over(tmp_path, capsys):
    limits = _pair_limits(tmp_path, 1.1)
    code, out, _ = gate_cli(capsys, "--suggest", _pair_run(tmp_path, 18.0, 21.6), "--thresholds", limits)
    assert code == EXIT_OK
    assert _suggested(tmp_path, out).pairs[PAIR].speedup_floor == 1.1


def test_suggest_leaves_out_the_pairs_of_another_cpu_generation(tmp_path, capsys):
    """A Zen 5 file's pair floors are Zen 5's speedups: a Zen 4 run's suggestion must not inherit them."""
    limits = _pair_limits(tmp_path, 1.1, machine="AMD family 26 model 2 (Zen 5)")
    code, out, _ = gate_cli(capsys, "--suggest", _pair_run_on_zen4(tmp_path, 18.0, 21.6), "--thresholds", limits)
    assert code == EXIT_OK
    assert _suggested(tmp_path, out).pairs == {}
    assert "measured on AMD family 26 model 2 (Zen 5), not on AMD family 25 model 17 (Zen 4): not carried" in out


def test_a_pair_needs_a_floor(tmp_path):
    with pytest.raises(UserError, match="needs speedup_floor"):
        gate.load_thresholds(thresholds(tmp_path, f'[pairs."{PAIR}"]\nsource = "test"\n'))


def test_committed_thresholds_file_is_valid():
    import re

    limits = gate.load_thresholds(REPO_THRESHOLDS)
    assert limits.latency_factor >= 1.0 and limits.engine_latency_factor >= 1.0
    cited = re.findall(r"results/[\w./-]+", limits.source)
    assert cited and all((REPO_THRESHOLDS.parents[1] / path.rstrip(".,)")).exists() for path in cited), cited
    for name, cell_limits in limits.cells.items():
        assert cell_limits.source.strip(), name


def test_suggest_writes_floors_from_a_run(tmp_path, capsys):
    run = write(tmp_path, "committed",
                cell(REFERENCE_CELL, tight(10.0), speedup=1.0, map50=0.40),
                cell("pruned_quant-deepsparse-416", tight(4.0), speedup=2.5, map50=0.38),
                cell("oneshot-openvino-416", tight(6.0), speedup=1.6))
    code, out, _ = gate_cli(capsys, "--suggest", run, "--thresholds", thresholds(tmp_path))
    assert code == EXIT_OK
    suggested = tomllib.loads(out)
    pq = suggested["cells"]["pruned_quant-deepsparse-416"]
    assert pq["speedup_floor"] == 1.42  # 2.5 x 0.57, rounded down
    assert pq["map50_floor"] == 0.342  # 0.38 x 0.9
    assert "committed.json" in pq["source"]
    oneshot = suggested["cells"]["oneshot-openvino-416"]
    assert oneshot["speedup_floor"] == 0.91 and "map50_floor" not in oneshot  # 1.6 x 0.57, rounded down
    assert "speedup_floor" not in suggested["cells"][REFERENCE_CELL]  # 1.0 by definition
    (tmp_path / "suggested.toml").write_text(out)
    assert gate.load_thresholds(tmp_path / "suggested.toml").cells["pruned_quant-deepsparse-416"].speedup_floor == 1.42


def test_suggest_keeps_the_factors_of_the_thresholds_it_replaces(tmp_path, capsys):
    run = write(tmp_path, "committed", cell("pruned-openvino-416", tight(4.0), speedup=2.0))
    rules = tmp_path / "thresholds.toml"
    rules.write_text('[defaults]\nlatency_factor = 1.75\nengine_latency_factor = 1.3\nsource = "a study"\n')
    code, out, _ = gate_cli(capsys, "--suggest", run, "--thresholds", rules)
    defaults = tomllib.loads(out)["defaults"]
    assert code == EXIT_OK and (defaults["latency_factor"], defaults["engine_latency_factor"]) == (1.75, 1.3)
    assert defaults["source"] == "a study"


def test_suggest_survives_an_emptied_thresholds_file(tmp_path, capsys):
    run = write(tmp_path, "committed", cell("pruned-openvino-416", tight(4.0), speedup=2.0))
    emptied = tmp_path / "thresholds.toml"
    emptied.write_text("")  # what `--suggest RUN > thresholds.toml` does before we read it
    code, out, err = gate_cli(capsys, "--suggest", run, "--thresholds", emptied)
    assert code == EXIT_OK and "built-in" in err
    assert tomllib.loads(out)["defaults"]["latency_factor"] == gate.DEFAULT_LATENCY_FACTOR


# --- the false-alarm study ---


def test_study_gates_every_pair_and_counts_false_alarms(tmp_path, capsys):
    quiet = [write(tmp_path, f"run{i}", cell(REFERENCE_CELL, sessions_samples(10.0, 10.1, 10.2)),
                   cell("pruned_quant-deepsparse-416", sessions_samples(4.0, 4.1, 4.05))) for i in range(3)]
    outlier = write(tmp_path, "run3", cell(REFERENCE_CELL, sessions_samples(10.0, 10.1, 10.2)),
                    cell("pruned_quant-deepsparse-416", sessions_samples(6.0, 6.1, 6.2)))
    code, out, _ = gate_cli(capsys, "--study", *quiet, outlier, "--thresholds", thresholds(tmp_path))
    assert code == EXIT_FAILED
    lines = out.splitlines()
    assert "run0.json -> run1.json (consecutive): pass" in out
    assert [line for line in lines if line.startswith("run2.json -> run3.json")][0].startswith(
        "run2.json -> run3.json (consecutive): FALSE ALARM: pruned_quant-deepsparse-416 latency p50 1.5")
    assert ("consecutive pairs: 1 of 3 pairs raised a false alarm (33%); 1 of 6 cell latency comparisons failed; "
            "0 other checks failed") in out
    assert ("all pairs: 3 of 6 pairs raised a false alarm (50%); 3 of 12 cell latency comparisons failed; "
            "0 other checks failed") in out
    # how close each pair came: run0 -> run1 is quiet (fastest sessions equal), run2 -> run3 is the 1.5x cell
    assert "run0.json -> run1.json (consecutive): pass: - [worst cell 1.00x (" in out
    assert "margins over all pairs: [worst cell 1.50x (pruned_quant-deepsparse-416)" in out


def test_study_needs_two_runs(tmp_path, base, capsys):
    code, _, err = gate_cli(capsys, "--study", base, "--thresholds", thresholds(tmp_path))
    assert code == EXIT_BAD_INPUT and "at least two run files" in err


def sessions_samples(*centers_ms: float) -> Latency:
    return sessions_at(*centers_ms)


def test_fewer_threads_on_the_same_cpu_is_compared_and_named(tmp_path, capsys):
    """DeepSparse limited to 1 core where the baseline had 2: a regression, not an incomparable run."""
    baseline = write(tmp_path, "baseline", cell("pruned_quant-deepsparse-416", sessions_at(4.0, 4.1, 4.05), threads=2))
    current = write(tmp_path, "current", cell("pruned_quant-deepsparse-416", sessions_at(7.0, 7.2, 7.1), threads=1))
    code, out, _ = gate_cli(capsys, "--current", current, "--baseline", baseline,
                            "--thresholds", thresholds(tmp_path))
    assert code == EXIT_FAILED
    assert "FAIL" in row(out, "pruned_quant-deepsparse-416", "latency p50")
    assert "threads 2 -> 1" in row(out, "pruned_quant-deepsparse-416", "latency p50")


# --- the engine check ---

ENGINE_THRESHOLDS = '[defaults]\nlatency_factor = 1.75\nengine_latency_factor = 1.25\nsource = "test"\n'
DS_CELLS = ("dense-deepsparse-416", "pruned-deepsparse-416", "pruned_quant-deepsparse-416", "oneshot-deepsparse-416")


def test_every_cell_of_an_engine_slower_fails_the_engine_check(tmp_path, capsys):
    """DeepSparse limited to 1 core: each cell 1.4x (under the per-cell 1.75), all of them together."""
    path = tmp_path / "t.toml"
    path.write_text(ENGINE_THRESHOLDS)
    base = write(tmp_path, "base", *[cell(n, sessions_at(4.0, 4.1, 4.05)) for n in DS_CELLS])
    cur = write(tmp_path, "cur", *[cell(n, sessions_at(5.6, 5.7, 5.65), threads=1) for n in DS_CELLS])
    code, out, _ = gate_cli(capsys, "--current", cur, "--baseline", base, "--thresholds", path)
    assert code == EXIT_FAILED
    assert "FAIL" in row(out, "deepsparse (all cells)", "engine latency")
    assert "FAIL" not in row(out, "pruned-deepsparse-416", "latency p50")  # 1.4x alone is within the cell factor


def test_one_noisy_cell_does_not_fail_the_engine_check(tmp_path, capsys):
    path = tmp_path / "t.toml"
    path.write_text(ENGINE_THRESHOLDS)
    base = write(tmp_path, "base", *[cell(n, sessions_at(4.0, 4.1, 4.05)) for n in DS_CELLS])
    cur = write(tmp_path, "cur", *[cell(n, sessions_at(6.4, 6.5, 6.45) if n == "pruned-deepsparse-416"
                                        else sessions_at(4.0, 4.1, 4.05)) for n in DS_CELLS])
    code, out, _ = gate_cli(capsys, "--current", cur, "--baseline", base, "--thresholds", path)
    assert code == EXIT_OK
    assert "ok" in row(out, "deepsparse (all cells)", "engine latency")


# --- CPU generations: one brand string, two generations ---

ZEN4 = {"cpu": {"brand_raw": "AMD EPYC", "vendor_id_raw": "AuthenticAMD", "family": 25, "model": 17}}
ZEN5 = {"yolobench": {"cpu_model": "AMD EPYC", "cpu_vendor": "AuthenticAMD", "cpu_family": 26, "cpu_model_id": 2}}


def write_on(tmp_path: Path, name: str, machine: dict, *cells: dict) -> Path:
    return write_run(tmp_path / f"{name}.json", run_document(list(cells), machine=machine, commit={"id": name}))


def test_latency_is_not_compared_across_cpu_generations_that_share_a_brand(tmp_path, capsys):
    base = write_on(tmp_path, "zen4", ZEN4, cell(REFERENCE_CELL, tight(10.0), speedup=1.0))
    current = write_on(tmp_path, "zen5", ZEN5, cell(REFERENCE_CELL, tight(30.0), speedup=1.0))
    code, out, _ = gate_cli(capsys, "--current", current, "--baseline", base, "--thresholds", thresholds(tmp_path))
    line = row(out, REFERENCE_CELL, "latency p50")
    assert code == EXIT_OK and "FAIL" not in line
    assert "different CPU generation (AMD family 25 model 17 (Zen 4) vs AMD family 26 model 2 (Zen 5))" in line
    assert "[AMD family 26 model 2 (Zen 5)]" in out  # the run's description names the generation
    same = write_on(tmp_path, "zen5-slow", ZEN5, cell(REFERENCE_CELL, tight(30.0), speedup=1.0))
    fast = write_on(tmp_path, "zen5-fast", ZEN5, cell(REFERENCE_CELL, tight(10.0), speedup=1.0))
    code, out, _ = gate_cli(capsys, "--current", same, "--baseline", fast, "--thresholds", thresholds(tmp_path))
    assert code == EXIT_FAILED and "FAIL" in row(out, REFERENCE_CELL, "latency p50")


def test_auto_baseline_is_the_committed_one_for_the_runs_profile_and_generation(tmp_path, capsys, monkeypatch):
    from yolobench import paths

    monkeypatch.setattr(paths, "repo_root", lambda: tmp_path)
    info = cell(REFERENCE_CELL, tight(30.0), speedup=1.0)
    info["profile"] = "full"
    current = write_on(tmp_path, "current", ZEN5, info)
    code, out, err = gate_cli(capsys, "--current", current, "--baseline", "auto", "--thresholds", thresholds(tmp_path))
    assert code == EXIT_OK and "no full baseline for AMD family 26 model 2 (Zen 5)" in err
    assert "full-amd-family26-model2.json.gz" in err and "baseline:" not in out
    (tmp_path / "results" / "baselines").mkdir(parents=True)
    fast = dict(info, **cell(REFERENCE_CELL, tight(10.0), speedup=1.0), profile="full")
    # the repository keeps baselines compact and gzipped (.json.gz); a plain .json there is read too
    plain = write_on(tmp_path / "results" / "baselines", "full-amd-family26-model2", ZEN5, fast)
    code, out, err = gate_cli(capsys, "--current", current, "--baseline", "auto", "--thresholds", thresholds(tmp_path))
    assert code == EXIT_FAILED and f"{plain} " in out
    assert "FAIL" in row(out, REFERENCE_CELL, "latency p50")
    gzipped = write_run(plain.with_name(plain.name + ".gz"), json.loads(plain.read_text()))
    plain.unlink()
    code, out, err = gate_cli(capsys, "--current", current, "--baseline", "auto", "--thresholds", thresholds(tmp_path))
    assert code == EXIT_FAILED and f"{gzipped} " in out
    assert "FAIL" in row(out, REFERENCE_CELL, "latency p50")


# --- speedup floors belong to the CPU generation they were measured on ---

ZEN4_FLOORS = THRESHOLDS_HEADER.replace("[defaults]\n", '[defaults]\nmachine = "AMD family 25 model 17 (Zen 4)"\n', 1)
PRUNED = "pruned-deepsparse-416"


def floors_on_zen4(tmp_path: Path) -> Path:
    path = tmp_path / "thresholds-smoke.toml"
    path.write_text(ZEN4_FLOORS + f'\n[cells."{PRUNED}"]\nspeedup_floor = 0.46\nmap50_floor = 0.6\nsource = "test"\n')
    return path


def test_speedup_floors_of_another_generation_are_not_compared_but_map_floors_are(tmp_path, capsys):
    path = floors_on_zen4(tmp_path)
    assert gate.load_thresholds(path).machine == "AMD family 25 model 17 (Zen 4)"
    slow_sparse = cell(PRUNED, tight(17.0), speedup=0.31, map50=0.7)
    on_zen5 = write_on(tmp_path, "zen5", ZEN5, cell(REFERENCE_CELL, tight(5.0), speedup=1.0), slow_sparse)
    code, out, _ = gate_cli(capsys, "--current", on_zen5, "--thresholds", path)
    assert code == EXIT_OK, out
    assert "not compared" in row(out, PRUNED, "speedup") and "Zen 4" in row(out, PRUNED, "speedup")
    assert out.startswith("NOTE: this run is on AMD family 26 model 2 (Zen 5)")
    assert f"yolobench gate --suggest {on_zen5} > {tmp_path / 'thresholds-smoke-amd-family26-model2.toml'}" in out
    # the same numbers on the generation the floors came from fail, and so does a low mAP anywhere
    on_zen4 = write_on(tmp_path, "zen4", ZEN4, cell(REFERENCE_CELL, tight(5.0), speedup=1.0), slow_sparse)
    code, out, _ = gate_cli(capsys, "--current", on_zen4, "--thresholds", path)
    assert code == EXIT_FAILED and "FAIL" in row(out, PRUNED, "speedup") and "NOTE" not in out
    low_map = write_on(tmp_path, "zen5-lowmap", ZEN5, cell(REFERENCE_CELL, tight(5.0), speedup=1.0),
                       cell(PRUNED, tight(17.0), speedup=0.31, map50=0.5))
    code, out, _ = gate_cli(capsys, "--current", low_map, "--thresholds", path)
    assert code == EXIT_FAILED and "FAIL" in row(out, PRUNED, "map50")


def test_a_cell_with_only_another_generations_speedup_floor_is_not_expected(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(ZEN4_FLOORS + f'\n[cells."{PRUNED}"]\nspeedup_floor = 0.46\nsource = "test"\n')
    on_zen5 = load_run(write_on(tmp_path, "zen5", ZEN5, cell(REFERENCE_CELL, tight(5.0), speedup=1.0)))
    on_zen4 = load_run(write_on(tmp_path, "zen4", ZEN4, cell(REFERENCE_CELL, tight(5.0), speedup=1.0)))
    assert not any(c.failed for c in gate.evaluate(on_zen5, None, gate.load_thresholds(path)))
    assert [c.cell for c in gate.evaluate(on_zen4, None, gate.load_thresholds(path)) if c.failed] == [PRUNED]


def test_a_generations_own_thresholds_file_is_preferred_and_suggest_records_the_machine(tmp_path, monkeypatch,
                                                                                       capsys):
    from yolobench import paths
    from yolobench.commands import gate as gate_command

    monkeypatch.setattr(paths, "repo_root", lambda: tmp_path)
    (tmp_path / "results").mkdir()
    floors_on_zen4(tmp_path / "results")
    zen5 = "AMD family 26 model 2 (Zen 5)"
    assert gate_command.default_thresholds("smoke", zen5).name == "thresholds-smoke.toml"
    on_zen5 = write_on(tmp_path, "zen5", ZEN5, cell(REFERENCE_CELL, tight(5.0), speedup=1.0),
                       cell(PRUNED, tight(17.0), speedup=0.31, map50=0.7))
    code, out, _ = gate_cli(capsys, "--suggest", on_zen5)
    assert code == EXIT_OK and f'machine = "{zen5}"' in out
    own = tmp_path / "results" / "thresholds-smoke-amd-family26-model2.toml"
    own.write_text(out)
    assert gate_command.default_thresholds("smoke", zen5) == own
    assert gate.load_thresholds(own).machine == zen5
    code, out, _ = gate_cli(capsys, "--current", on_zen5)
    assert code == EXIT_OK and "NOTE" not in out and "ok" in row(out, PRUNED, "speedup")


def test_machine_in_thresholds_must_be_a_generation_name(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(THRESHOLDS_HEADER.replace("[defaults]\n", "[defaults]\nmachine = 25\n", 1))
    with pytest.raises(UserError, match=r"machine must name a CPU generation"):
        gate.load_thresholds(path)


def test_json_and_quiet_output_for_scripts(tmp_path, capsys):
    import json as jsonlib

    current = write(tmp_path, "current", cell(REFERENCE_CELL, tight(10.0), speedup=1.0, map50=0.3))
    path = thresholds(tmp_path, f'\n[cells."{REFERENCE_CELL}"]\nmap50_floor = 0.5\nsource = "test"\n')
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", path, "--json")
    doc = jsonlib.loads(out)
    assert code == EXIT_FAILED and doc["passed"] is False and doc["summary"].startswith("gate: FAILED")
    failed = [c for c in doc["checks"] if c["verdict"] == "FAIL"]
    assert [(c["cell"], c["check"]) for c in failed] == [(REFERENCE_CELL, "map50")]
    code, out, _ = gate_cli(capsys, "--current", current, "--thresholds", path, "--quiet")
    assert code == EXIT_FAILED and out.strip().splitlines()[-1].startswith("gate: FAILED")
    assert "latency p50" not in out  # only failing checks


# --- --strict: a run the gate cannot judge fails instead of passing with a note ---

ZEN5_NAME = "AMD family 26 model 2 (Zen 5)"


def strict_repo(tmp_path: Path, monkeypatch) -> Path:
    """A checkout whose results/ holds only the Zen 4 floors (thresholds-smoke.toml) and no baseline."""
    from yolobench import paths

    monkeypatch.setattr(paths, "repo_root", lambda: tmp_path)
    (tmp_path / "results").mkdir()
    return floors_on_zen4(tmp_path / "results")


def zen5_run(tmp_path: Path, name: str, reference_ms: float, pruned_ms: float, **extra) -> Path:
    cells = [cell(REFERENCE_CELL, tight(reference_ms), speedup=1.0),
             cell(PRUNED, tight(pruned_ms), speedup=reference_ms / pruned_ms, map50=0.7)]
    for info in cells:
        info.update(profile="smoke", **extra)
    return write_on(tmp_path, name, ZEN5, *cells)


def test_strict_fails_a_run_on_a_generation_without_floors_or_baseline(tmp_path, capsys, monkeypatch):
    strict_repo(tmp_path, monkeypatch)
    slow = zen5_run(tmp_path, "ten-times-slower", 50.0, 170.0)  # every cell 10x slower than anything seen
    code, out, err = gate_cli(capsys, "--current", slow, "--baseline", "auto")
    assert code == EXIT_OK and out.startswith("NOTE") and "latency is not compared" in err  # as before: a note
    code, out, err = gate_cli(capsys, "--current", slow, "--baseline", "auto", "--strict")
    assert code == EXIT_FAILED
    strict = [line for line in out.splitlines() if line.startswith("gate --strict: FAILED")]
    assert len(strict) == 1, out
    assert not any(l.startswith("gate: passed") for l in out.splitlines()), out  # no "passed" before the FAIL
    assert "gate: FAILED under --strict (the reasons follow); the checks themselves: passed:" in out
    line = strict[0]
    assert f"{ZEN5_NAME} has no speedup floors" in line and "no baseline" in line
    own = tmp_path / "results" / "thresholds-smoke-amd-family26-model2.toml"
    baseline = tmp_path / "results" / "baselines" / "smoke-amd-family26-model2.json.gz"
    assert f"yolobench gate --suggest {slow} > {own}" in line and f"gzip -9 -c {slow} > {baseline}" in line
    code, out, _ = gate_cli(capsys, "--current", slow, "--baseline", "auto", "--strict", "--json")
    doc = json.loads(out)
    assert code == EXIT_FAILED and doc["passed"] is False and doc["strict"] == [line]


def test_strict_names_what_is_missing_and_passes_when_nothing_is(tmp_path, capsys, monkeypatch):
    strict_repo(tmp_path, monkeypatch)
    run = zen5_run(tmp_path, "run", 5.0, 17.0)
    code, out, _ = gate_cli(capsys, "--suggest", run)
    (tmp_path / "results" / "thresholds-smoke-amd-family26-model2.toml").write_text(out)
    code, out, _ = gate_cli(capsys, "--current", run, "--baseline", "auto", "--strict")
    assert code == EXIT_FAILED and "has no speedup floors" not in out
    assert out.splitlines()[-1].startswith("gate --strict: FAILED: no baseline") and "gzip -9 -c" in out
    (tmp_path / "results" / "baselines").mkdir()
    write_run(tmp_path / "results" / "baselines" / "smoke-amd-family26-model2.json.gz", json.loads(run.read_text()))
    code, out, _ = gate_cli(capsys, "--current", run, "--baseline", "auto", "--strict")
    assert code == EXIT_OK and "--strict" not in out, out
    # a baseline of another generation is no baseline for this one
    zen4 = write_on(tmp_path, "zen4", ZEN4, cell(REFERENCE_CELL, tight(5.0), speedup=1.0))
    code, out, _ = gate_cli(capsys, "--current", run, "--baseline", zen4, "--strict")
    assert code == EXIT_FAILED and "baseline" in out.splitlines()[-1] and "Zen 4" in out.splitlines()[-1]


# --- a loaded machine: the 1-minute load average each cell recorded ---


def test_a_run_on_a_loaded_machine_is_flagged_and_fails_under_strict(tmp_path, capsys, monkeypatch):
    strict_repo(tmp_path, monkeypatch)
    cores = {"cpu": dict(ZEN5["yolobench"], count=2)}  # pytest-benchmark's record: 2 logical cores
    idle = [cell(REFERENCE_CELL, tight(5.0), speedup=1.0), cell(PRUNED, tight(17.0), speedup=5 / 17, map50=0.7)]
    for info, load in zip(idle, (1.2, 2.5)):  # the benchmark itself keeps both cores busy: up to 2 + 0.5
        info.update(profile="smoke", load_average=load)
    quiet = write_on(tmp_path, "quiet", cores, *idle)
    loaded_cells = [dict(info) for info in idle]
    loaded_cells[1]["load_average"] = 3.4  # another process ran beside this cell
    loaded = write_on(tmp_path, "loaded", cores, *loaded_cells)
    code, out, _ = gate_cli(capsys, "--suggest", quiet)
    (tmp_path / "results" / "thresholds-smoke-amd-family26-model2.toml").write_text(out)
    (tmp_path / "results" / "baselines").mkdir()
    write_run(tmp_path / "results" / "baselines" / "smoke-amd-family26-model2.json.gz", json.loads(quiet.read_text()))

    code, out, _ = gate_cli(capsys, "--current", quiet, "--baseline", "auto", "--strict")
    assert code == EXIT_OK and "WARNING" not in out and "--strict" not in out
    code, out, _ = gate_cli(capsys, "--current", loaded, "--baseline", "auto")
    warning = [line for line in out.splitlines() if line.startswith("WARNING: the machine was loaded")]
    assert code == EXIT_OK and len(warning) == 1, out
    assert f"{PRUNED} (3.4)" in warning[0] and "2 cores" in warning[0]
    code, out, _ = gate_cli(capsys, "--current", loaded, "--baseline", "auto", "--quiet")
    assert code == EXIT_OK and any(line.startswith("WARNING: the machine was loaded") for line in out.splitlines())
    code, out, _ = gate_cli(capsys, "--current", loaded, "--baseline", "auto", "--strict")
    assert code == EXIT_FAILED
    assert out.splitlines()[-1].startswith("gate --strict: FAILED: the machine was loaded") and PRUNED in out.splitlines()[-1]


def test_the_load_rule_reads_every_session_and_the_machines_cores(tmp_path):
    sessions = []
    for index, load in enumerate((1.9, 2.6, 2.0), start=1):
        info = cell_extra_info(Latency.from_samples(tight(5.0), session_sizes=[N]), variant="dense",
                               engine="onnxruntime", engine_version="1.0", threads=2, imgsz=416, cpu_model=CPU,
                               reference_latency=Latency.from_samples(tight(5.0), session_sizes=[N]),
                               session_index=index, sessions=3)
        info["load_average"] = load
        sessions.append(info)
    two_cores = load_run(write_on(tmp_path, "two", {"cpu": {"count": 2}}, *sessions))
    assert gate.machine_cores(two_cores) == 2
    assert gate.loaded_cells(two_cores) == {REFERENCE_CELL: 2.6}  # session 2 of 3, above 2 + 0.5
    four_cores = load_run(write_on(tmp_path, "four", {"yolobench": {"logical_cores": 4}}, *sessions))
    assert gate.machine_cores(four_cores) == 4 and gate.loaded_cells(four_cores) == {}
    # no record of the cores: the threads the cells ran with (the default is every usable core)
    unrecorded = load_run(write_on(tmp_path, "none", {}, *sessions))
    assert gate.machine_cores(unrecorded) == 2 and gate.loaded_cells(unrecorded) == {REFERENCE_CELL: 2.6}
    # run files from before the load was recorded, or a load of null: nothing to say
    for info in sessions:
        info["load_average"] = None
    assert gate.loaded_cells(load_run(write_on(tmp_path, "old", {"cpu": {"count": 2}}, *sessions))) == {}
