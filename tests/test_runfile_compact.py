"""The compact run file the repository keeps (``RUN.json.gz``): pytest-benchmark's per-round ``stats.data``
dropped, gzipped, and every number yolobench reads unchanged (yolobench.runfile)."""

from __future__ import annotations

import gzip
import json

import pytest

from yolobench import runfile
from yolobench.errors import UserError
from yolobench.runfile import cell_extra_info, load_run, reference_cell_name, run_document, write_run
from yolobench.timer import Latency


def document() -> dict:
    samples = [4.0 + 0.01 * i for i in range(40)]
    latency = Latency.from_samples(samples, session_sizes=[40])
    info = cell_extra_info(latency, variant="dense", engine="onnxruntime", engine_version="1.0", threads=2,
                           imgsz=160, reference_latency=latency, cpu_model="AMD EPYC test")
    doc = run_document([info])
    # what pytest-benchmark adds: the same rounds again, in seconds, at full precision
    doc["benchmarks"][0]["stats"] = {"median": 0.0042, "rounds": 40, "data": [s / 1000.0 for s in samples]}
    return doc


def test_a_gz_run_file_is_compact_and_reads_as_the_plain_one(tmp_path):
    doc = document()
    plain = write_run(tmp_path / "run.json", doc)
    packed = write_run(tmp_path / "run.json.gz", doc)
    stored = json.loads(gzip.decompress(packed.read_bytes()))
    assert "data" not in stored["benchmarks"][0]["stats"] and stored["benchmarks"][0]["stats"]["rounds"] == 40
    assert "data" in doc["benchmarks"][0]["stats"]  # the caller's document is not changed
    a, b = load_run(plain), load_run(packed)
    name = reference_cell_name(160)
    assert a.cells[name].latency == b.cells[name].latency and dict(a.cells[name].extra) == dict(b.cells[name].extra)
    assert packed.stat().st_size < plain.stat().st_size


def test_the_same_document_gives_the_same_bytes(tmp_path):
    # no time stamp or file name in the gzip header: a re-written run does not show as a change in git
    assert write_run(tmp_path / "a.json.gz", document()).read_bytes() == \
        write_run(tmp_path / "b.json.gz", document()).read_bytes()


def test_a_damaged_gz_run_file_is_one_line(tmp_path):
    packed = write_run(tmp_path / "run.json.gz", document())
    packed.write_bytes(packed.read_bytes()[:40])
    with pytest.raises(UserError, match="cannot read run file"):
        load_run(packed)
    (tmp_path / "plain.json.gz").write_text("{}")  # not gzip at all
    with pytest.raises(UserError, match="cannot read run file"):
        load_run(tmp_path / "plain.json.gz")


def test_run_file_names():
    assert runfile.is_run_file("a/run.json") and runfile.is_run_file("run.json.gz")
    assert not runfile.is_run_file("run.md") and not runfile.is_run_file("run.gz")


def test_bench_out_gz_writes_the_compact_file_and_no_partial_one(tmp_path, monkeypatch):
    from yolobench import cli
    from yolobench.commands import bench as bench_command

    def pytest_writes(command, **kwargs):  # stands for pytest-benchmark writing --benchmark-json
        written = next(a.split("=", 1)[1] for a in command if a.startswith("--benchmark-json="))
        assert not written.endswith(".gz")
        write_run(written, document())
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(bench_command.children, "run", pytest_writes)
    out = tmp_path / "runs" / "latest.json.gz"
    args = cli.build_parser().parse_args(["bench", "--variants", "dense", "--engines", "onnxruntime", "--out", str(out)])
    assert args._run(args) == 0
    assert [p.name for p in out.parent.iterdir()] == ["latest.json.gz"]
    stored = json.loads(gzip.decompress(out.read_bytes()))
    assert "data" not in stored["benchmarks"][0]["stats"]
    assert load_run(out).cells[reference_cell_name(160)].latency.p50_ms == pytest.approx(4.195)
