"""A run file holds one benchmark per session of a cell; `load_run` joins them (yolobench.runfile).

The matrix times session k of every cell before session k+1 of any, so a cell's sessions reach the run
file as separate pytest-benchmark entries. Joined, a cell keeps its samples in session order, its
statistics are recomputed from them, and its speedup is the ratio of fastest-session medians.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from yolobench.errors import UserError
from yolobench.runfile import cell_extra_info, load_run, reference_cell_name, run_document, split_cell_name, write_run

REFERENCE_CELL = reference_cell_name(160)
from yolobench.timer import Latency

DATA = Path(__file__).parent / "data" / "gate"
CPU = "AMD EPYC test"
EXACT = 1e-9


def flat(center_ms: float, n: int = 30) -> Latency:
    return Latency.from_samples([center_ms] * n, session_sizes=[n])


def session(name: str, index: int, latency: Latency, reference: Latency | None, *, sessions: int = 3,
            threads: int = 2) -> dict:
    variant, engine, imgsz = split_cell_name(name)
    return cell_extra_info(latency, variant=variant, engine=engine, engine_version="1.0", threads=threads, imgsz=imgsz,
                           reference_latency=reference, cpu_model=CPU, session_index=index, sessions=sessions,
                           fraction_of_supported_ops=1.0 if engine == "deepsparse" else None)


def write(tmp_path: Path, *entries: dict) -> Path:
    return write_run(tmp_path / "run.json", run_document(list(entries)))


def a_pass(index: int, reference_ms: float, cell_ms: float) -> list[dict]:
    reference = flat(reference_ms)
    return [session(REFERENCE_CELL, index, reference, reference),
            session("pruned_quant-deepsparse-160", index, flat(cell_ms), reference)]


def test_sessions_are_joined_in_order_with_statistics_from_their_samples(tmp_path):
    # written pass by pass, as the matrix runs; session 1 of both cells in a slow phase of the machine
    entries = a_pass(1, 26.0, 8.0) + a_pass(2, 15.0, 5.0) + a_pass(3, 16.0, 6.0)
    run = load_run(write(tmp_path, *entries))
    assert set(run.cells) == {REFERENCE_CELL, "pruned_quant-deepsparse-160"}
    cell = run.cells["pruned_quant-deepsparse-160"]
    assert cell.latency.session_sizes == (30, 30, 30)
    assert cell.latency.session_p50s_ms() == (8.0, 5.0, 6.0)
    assert cell.latency.samples_ms == (8.0,) * 30 + (5.0,) * 30 + (6.0,) * 30
    assert cell.latency.p50_ms == 6.0 and cell.extra["latency_ms"]["p50"] == 6.0
    assert cell.extra["fps"] == pytest.approx(1000.0 / (19.0 / 3), abs=EXACT)
    # fastest session of the reference (15) over the cell's fastest (5); the slow pass moves neither
    assert cell.speedup_vs_reference == pytest.approx(3.0, abs=EXACT)
    assert run.cells[REFERENCE_CELL].speedup_vs_reference == 1.0
    assert cell.benchmark.count("test_latency[pruned_quant-deepsparse-160-s") == 3
    assert cell.extra["session_indices"] == [1, 2, 3] and "session_index" not in cell.extra


def test_a_cell_without_a_reference_has_no_speedup(tmp_path):
    entries = [session("pruned_quant-deepsparse-160", k, flat(5.0), None) for k in (1, 2, 3)]
    assert load_run(write(tmp_path, *entries)).cells["pruned_quant-deepsparse-160"].speedup_vs_reference is None


def test_a_cell_with_sessions_missing_loads_with_those_it_has(tmp_path):
    entries = a_pass(1, 15.0, 5.0) + a_pass(2, 15.0, 7.0)  # an interrupted run: pass 3 never ran
    cell = load_run(write(tmp_path, *entries)).cells["pruned_quant-deepsparse-160"]
    assert cell.latency.session_p50s_ms() == (5.0, 7.0) and cell.extra["session_indices"] == [1, 2]
    assert cell.incomplete and cell.sessions_expected == 3 and cell.sessions_missing == (3,)


PQ = "pruned_quant-deepsparse-160"


def one_of_three(tmp_path: Path, name: str, pq_ms: float) -> Path:
    """The reference's 3 sessions, but only session 1 of pruned_quant's (2 and 3 failed, or were cut off)."""
    reference = [flat(15.0), flat(15.2), flat(15.1)]
    entries = [session(REFERENCE_CELL, k, reference[k - 1], reference[k - 1]) for k in (1, 2, 3)]
    entries.append(session(PQ, 1, flat(pq_ms), reference[0]))
    return write_run(tmp_path / f"{name}.json", run_document(entries, commit={"id": name}))


def whole(tmp_path: Path, name: str, pq_ms: float) -> Path:
    return write_run(tmp_path / f"{name}.json", run_document(a_pass(1, 15.0, pq_ms) + a_pass(2, 15.2, pq_ms)
                                                             + a_pass(3, 15.1, pq_ms), commit={"id": name}))


def test_a_cell_with_1_of_3_sessions_is_marked_incomplete_and_the_gate_does_not_grade_it_as_whole(tmp_path):
    from yolobench import gate

    run = load_run(one_of_three(tmp_path, "current", 5.0))
    pq, reference = run.cells[PQ], run.cells[REFERENCE_CELL]
    assert pq.incomplete and pq.sessions_expected == 3 and pq.sessions_missing == (2, 3)
    assert not reference.incomplete and reference.sessions_missing == ()
    baseline = load_run(whole(tmp_path, "baseline", 5.0))
    assert not any(c.incomplete for c in baseline.cells.values())
    limits = gate.Thresholds(path=tmp_path / "t.toml", latency_factor=1.25, source="test", cells={})
    checks = {(c.cell, c.check): c for c in gate.evaluate(run, baseline, limits)}
    latency = checks[PQ, gate.CHECK_LATENCY]
    assert latency.verdict == gate.NOT_COMPARED and latency.ratio is None
    assert "incomplete: 1 of 3 sessions (2, 3 missing)" in latency.note
    present = checks[PQ, gate.CHECK_PRESENT]
    assert present.failed and present.measured == "1 of 3 sessions"
    assert checks[REFERENCE_CELL, gate.CHECK_LATENCY].verdict == gate.OK  # the whole cell beside it is judged
    # a slice of the matrix (--only-current) names it but does not fail it; its latency is still not graded
    sliced = {(c.cell, c.check): c for c in gate.evaluate(run, baseline, limits, only_current=True)}
    assert (PQ, gate.CHECK_PRESENT) not in sliced and sliced[PQ, gate.CHECK_LATENCY].verdict == gate.NOT_COMPARED
    # an incomplete cell in the baseline is no whole cell to compare with either
    checks = {(c.cell, c.check): c for c in gate.evaluate(baseline, run, limits)}
    assert checks[PQ, gate.CHECK_LATENCY].verdict == gate.NOT_COMPARED
    assert "the baseline's cell is incomplete: 1 of 3 sessions" in checks[PQ, gate.CHECK_LATENCY].note


def test_a_session_twice_is_rejected_naming_the_cell_and_session(tmp_path):
    entries = a_pass(1, 15.0, 5.0) + a_pass(1, 15.0, 5.0)
    with pytest.raises(UserError, match=r"session 1 of cell 'dense-onnxruntime-160' appears twice"):
        load_run(write(tmp_path, *entries))


def test_sessions_that_measured_different_things_are_rejected(tmp_path):
    entries = [session("pruned_quant-deepsparse-160", 1, flat(5.0), None, threads=2),
               session("pruned_quant-deepsparse-160", 2, flat(5.0), None, threads=1)]
    with pytest.raises(UserError, match=r"'threads' is 1 in this session but 2 in .*must measure the same thing"):
        load_run(write(tmp_path, *entries))


def test_a_whole_cell_entry_beside_session_entries_is_rejected(tmp_path):
    whole = cell_extra_info(flat(5.0), variant="pruned_quant", engine="deepsparse", engine_version="1.0", threads=2,
                            imgsz=160, cpu_model=CPU, fraction_of_supported_ops=1.0)
    for entries in ([whole, session("pruned_quant-deepsparse-160", 1, flat(5.0), None)],
                    [session("pruned_quant-deepsparse-160", 1, flat(5.0), None), whole]):
        with pytest.raises(UserError, match="pruned_quant-deepsparse-160"):
            load_run(write(tmp_path, *entries))


def test_a_session_index_outside_its_count_is_rejected(tmp_path):
    info = session("pruned_quant-deepsparse-160", 1, flat(5.0), None)
    info["session_index"] = 4
    with pytest.raises(UserError, match="session_index 4 is above sessions 3"):
        load_run(write(tmp_path, info))


def test_cell_extra_info_refuses_a_session_index_outside_its_count():
    with pytest.raises(ValueError, match="session_index 0 is not in 1..3"):
        session("pruned_quant-deepsparse-160", 0, flat(5.0), None)


def test_a_run_file_written_by_pytest_benchmark_with_sessions_loads():
    # benchmarks/ on the smoke store, 2 cells x 3 sessions, entries kept as pytest-benchmark wrote them
    run = load_run(DATA / "pytest_benchmark_sessions.json")
    assert set(run.cells) == {REFERENCE_CELL, "pruned_quant-deepsparse-160"}
    for cell in run.cells.values():
        assert len(cell.latency.session_sizes) == 3 and cell.extra["session_indices"] == [1, 2, 3]
        assert cell.latency.n == sum(cell.latency.session_sizes) >= 200  # the protocol's MIN_ITERS, in shares
    reference, pq = run.cells[REFERENCE_CELL], run.cells["pruned_quant-deepsparse-160"]
    assert reference.speedup_vs_reference == 1.0
    assert pq.speedup_vs_reference == pytest.approx(
        min(reference.latency.session_p50s_ms()) / min(pq.latency.session_p50s_ms()), rel=1e-4)
