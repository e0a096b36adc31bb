"""``yolobench report``: the tables carry the run file's numbers (one table per image size), the charts open
at their size, a cell not timed by design says so, the gzip size is that of the file the engine loaded,
the blog's speedups stand beside the run's, the detections are drawn from built artifacts (and skipped with
a note when a variant is not built).

Run files are made here from explicit samples through ``runfile.cell_extra_info`` (as the benchmarks
write them), plus the example written by pytest-benchmark itself in tests/data/gate/.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import cv2
import pytest

from yolobench import annotate, bench, blog, builder, catalogue, report
from yolobench.cli import main
from yolobench.errors import EXIT_BAD_INPUT
from yolobench.runfile import cell_extra_info, cell_name, load_run, run_document, write_run
from yolobench.store import Store, content_key, onnx_filename
from yolobench.timer import Latency

EXAMPLE_RUN = Path(__file__).parent / "data" / "gate" / "pytest_benchmark_run.json"
CPU = "AMD EPYC test"
N = 50  # samples per cell
# Display rounding is the only change a number may undergo: half a unit of its last shown digit.
FPS_SHOWN_TO = 0.05
MS_SHOWN_TO = 0.005
# title strip, then per validation image: its caption strip, the panels (labels, then each engine), their captions
DETECTION_SHEET_HEIGHT = 44 + report.VALIDATION_SAMPLES * (40 + report.DETECTION_PANEL_HEIGHT + 34)

# (variant, engine): (p50 ms, map50, sparsity, size bytes); latencies chosen so that each rule below has
# one answer.
CELLS = {
    ("dense", "torch"): (40.0, 0.560, 0.0, 28_000_000),
    ("dense", "onnxruntime"): (20.0, 0.562, 0.0, 28_000_000),
    ("pruned", "onnxruntime"): (19.0, 0.552, 0.8, 28_000_000),  # exactly 1.0 point below dense-onnxruntime
    ("pruned_quant", "onnxruntime"): (8.0, 0.5515, 0.8, 7_000_000),  # 1.05 points below: not eligible
    ("pruned_quant", "deepsparse"): (5.0, 0.540, 0.8, 7_000_000),  # no dense-deepsparse: vs the reference
    ("oneshot", "openvino"): (9.0, None, 0.0, 7_000_000),  # no mAP recorded
}
FASTEST_WITHIN_ONE_POINT = ("pruned", "onnxruntime")
# Quantized variants of CELLS on PyTorch: the matrix does not time them (bench.untimed_reason).
UNTIMED = [("oneshot", "torch"), ("pruned_quant", "torch")]


def samples(p50_ms: float) -> list[float]:
    return [p50_ms * (1 + 0.002 * (i % 5 - 2)) for i in range(N)]


def deployed_form(variant: str, engine: str) -> str:
    """The form a deployment of the variant loads on the engine (what the benchmarks record)."""
    if engine == "torch":
        return "torch"
    if catalogue.get_variant(variant).quantized:
        return "deepsparse" if engine == "deepsparse" else "qdq"
    return "fp32"


def make_run(tmp_path: Path, cells: dict = CELLS, name: str = "run", imgsz: int | tuple = 416,
             slower: dict | None = None, extra: dict | None = None, **document) -> Path:
    """A run file of ``cells`` at each size of ``imgsz``; ``slower[size]`` multiplies the latencies (and
    subtracts as much from the mAPs) at that size; ``extra[(variant, engine)]`` goes into that cell's
    extra_info (e.g. an artifact_key)."""
    infos = []
    for size in (imgsz,) if isinstance(imgsz, int) else imgsz:
        factor = (slower or {}).get(size, 1.0)
        ref = cells.get(("dense", "onnxruntime"))
        reference = Latency.from_samples(samples(ref[0] * factor)) if ref else None
        for (variant, engine), (p50, map50, sparsity, size_bytes) in cells.items():
            map50 = None if map50 is None else round(map50 - (factor - 1) / 100, 4)
            info = cell_extra_info(
                Latency.from_samples(samples(p50 * factor)), variant=variant, engine=engine,
                engine_version=f"{engine}-1.0", threads=2, imgsz=size, reference_latency=reference, sparsity=sparsity,
                map50=map50, map50_95=None if map50 is None else round(map50 * 0.6, 4), model_size_bytes=size_bytes,
                form=deployed_form(variant, engine), cpu_model=CPU,
                fraction_of_supported_ops=1.0 if engine == "deepsparse" else None)
            info.update((extra or {}).get((variant, engine), {}))
            infos.append(info)
    doc = run_document(infos, machine={"yolobench": {"cpu_model": CPU, "logical_cores": 2, "usable_cores": 2,
                                                     "system": "Linux", "arch": "x86_64", "python": "3.11.7"}},
                       commit={"id": "abc1234", "branch": "main", "dirty": False})
    doc["datetime"] = "2026-11-27T23:05:32+00:00"
    doc.update(document)
    return write_run(tmp_path / f"{name}.json", doc)


def tables(markdown: str) -> dict:
    """The report's tables as {section: {first column: {column: text}}}; a size table's section is its
    size (int), the blog's is "blog"."""
    found: dict = {}
    section = None
    header = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            match = re.fullmatch(r"## (\d+) px", line)
            section = int(match[1]) if match else "blog" if line == "## The blog side by side" else line[3:]
            header = None
        elif line.startswith("| "):
            values = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if header is None:
                header = values
                found[section] = {}
            else:
                found[section][values[0]] = dict(zip(header, values))
        elif not line.startswith("|"):
            header = None
    return found


def table(markdown: str, imgsz: int = 416) -> dict[str, dict[str, str]]:
    """The table of one size as {cell: {column: text}}."""
    return tables(markdown)[imgsz]


def name(pair: tuple[str, str], imgsz: int = 416) -> str:
    return cell_name(*pair, imgsz)


def fastest_p50(cell) -> float:
    """A cell's fastest session median as stored (its p50 where no sessions were recorded)."""
    return min(cell.extra["session_p50_ms"] or [cell.extra["latency_ms"]["p50"]])


def run_report(capfd, *args) -> tuple[int, str, str]:
    code = main(["report", *map(str, args)])
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture
def no_models(monkeypatch):
    """Any attempt to find, build or load a model fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("--no-detections must not look for, build or load a model")

    monkeypatch.setattr(builder, "build", refuse)
    monkeypatch.setattr(builder, "variant_key", refuse)
    monkeypatch.setattr(annotate, "load_built", refuse)
    monkeypatch.setattr(annotate.Detector, "load", classmethod(refuse))


@pytest.fixture
def empty_store(tmp_path) -> Path:
    return tmp_path / "empty-store"


def test_table_numbers_are_the_run_files(tmp_path, capfd, no_models, empty_store):
    run_path = make_run(tmp_path)
    out = tmp_path / "report"
    code, stdout, stderr = run_report(capfd, "--run", run_path, "--out", out, "--no-detections",
                                      "--store", empty_store)
    assert code == 0, stderr
    markdown = (out / "report.md").read_text()
    rows = table(markdown)
    run = load_run(run_path)
    assert set(rows) == set(run.cells) | {name(p) for p in UNTIMED}
    torch_p50 = run.cells["dense-torch-416"].extra["latency_ms"]["p50"]
    for cell_id, cell in run.cells.items():
        row, extra = rows[cell_id], cell.extra
        assert abs(float(row["FPS"]) - extra["fps"]) <= FPS_SHOWN_TO
        assert abs(float(row["p50 ms"]) - extra["latency_ms"]["p50"]) <= MS_SHOWN_TO
        assert abs(float(row["p90 ms"]) - extra["latency_ms"]["p90"]) <= MS_SHOWN_TO
        assert row["FPS"] == report.fmt_fps(extra["fps"])
        assert row["speedup vs dense-onnxruntime-416"] == report.fmt_ratio(extra["speedup_vs_reference"])
        # fastest session median over fastest session median, from the stored session medians
        torch_fastest = min(run.cells["dense-torch-416"].extra["session_p50_ms"] or [torch_p50])
        fastest = min(extra["session_p50_ms"] or [extra["latency_ms"]["p50"]])
        assert row["speedup vs dense-torch-416"] == report.fmt_ratio(torch_fastest / fastest)
        assert row["mAP@0.5"] == report.fmt_map(extra["map50"])
        assert row["mAP@0.5:0.95"] == report.fmt_map(extra["map50_95"])
        assert row["sparsity"] == report.fmt_sparsity(extra["sparsity"])
        assert row["size MB"] == report.fmt_size(extra["model_size_bytes"])
        assert row["gzip MB"] == report.MISSING + report.NO_COMPRESSED_MARK  # no artifact_key recorded
        assert "loaded" not in row["notes"]  # every cell loaded what a deployment loads
    assert rows["dense-torch-416"]["file"] == "weights.pt"
    assert rows["pruned_quant-deepsparse-416"]["file"] == "model-416.deepsparse.onnx"
    assert rows["pruned_quant-onnxruntime-416"]["file"] == "model-416.qdq.onnx"
    assert rows["pruned-onnxruntime-416"]["file"] == "model-416.onnx"
    # The mAP change is taken against dense on the same engine, else against the reference cell (and says so).
    assert rows["pruned-onnxruntime-416"]["ΔmAP@0.5 vs dense (points)"] == "-1.00"
    assert rows["pruned_quant-deepsparse-416"]["ΔmAP@0.5 vs dense (points)"] == "-2.20"
    assert "vs dense-onnxruntime-416" in rows["pruned_quant-deepsparse-416"]["notes"]
    assert rows["oneshot-openvino-416"]["mAP@0.5"] == "n/a"
    assert rows["dense-torch-416"]["speedup vs dense-torch-416"] == "1.00x"

    fastest = run.cells[name(FASTEST_WITHIN_ONE_POINT)]
    assert (f"fastest configuration within 1 point of dense mAP at 416 px: {name(FASTEST_WITHIN_ONE_POINT)} at "
            f"{report.fmt_fps(fastest.extra['fps'])} FPS") in markdown
    assert f"Machine: {CPU}, 2 cores, threads 2" in markdown
    assert "Commit: abc1234, branch main" in markdown
    assert "Date: 2026-11-27T23:05:32+00:00" in markdown
    assert "onnxruntime onnxruntime-1.0" in markdown  # library versions, from the cells
    assert str(run_path) in markdown or report.display_path(run_path) in markdown
    assert "Not drawn (--no-detections)" in markdown
    assert not (out / "detections").exists()
    assert f"{name(FASTEST_WITHIN_ONE_POINT)} at" in stdout


def test_a_cell_not_timed_by_design_says_why(tmp_path, capfd, no_models, empty_store):
    reason = bench.untimed_reason("pruned_quant", "torch")
    assert reason  # PyTorch's fake-quantized INT8 is not timed
    out = tmp_path / "report"
    assert run_report(capfd, "--run", make_run(tmp_path), "--out", out, "--no-detections",
                      "--store", empty_store)[0] == 0
    markdown = (out / "report.md").read_text()
    rows = table(markdown)
    for pair in UNTIMED:
        row = rows[name(pair)]
        assert row["FPS"] == report.UNTIMED_TEXT + report.UNTIMED_MARK
        assert {row[c] for c in ("p50 ms", "p90 ms", "mAP@0.5", "size MB")} == {report.MISSING}
    assert rows[name(("dense", "torch"))]["FPS"] != report.UNTIMED_TEXT + report.UNTIMED_MARK
    # The reason is written under the table, naming the cells.
    footnote = next(line for line in markdown.splitlines() if line.lstrip("- ").startswith(report.UNTIMED_MARK))
    assert reason in footnote and all(name(p) in footnote for p in UNTIMED)
    # A run without PyTorch cells has nothing to say about them.
    no_torch = {k: v for k, v in CELLS.items() if k[1] != "torch"}
    assert report.untimed_cells(load_run(make_run(tmp_path, no_torch, "no-torch"))) == []


def test_charts_open_at_their_size(tmp_path, capfd, no_models, empty_store):
    out = tmp_path / "report"
    assert run_report(capfd, "--run", make_run(tmp_path), "--out", out, "--no-detections",
                      "--store", empty_store)[0] == 0
    # A run of one size writes the charts under the names it always had.
    assert sorted(p.name for p in out.glob("*.png")) == ["fps.png", "latency.png", "tradeoff.png"]
    for chart, figsize in (("fps.png", report.FPS_FIGSIZE), ("tradeoff.png", report.TRADEOFF_FIGSIZE)):
        image = cv2.imread(str(out / chart))
        assert image is not None, chart
        width, height = (round(side * report.CHART_DPI) for side in figsize)
        assert image.shape == (height, width, 3), chart
        assert image.std() > 0  # not blank


def test_two_sizes_make_two_tables_and_two_sets_of_charts(tmp_path, capfd, no_models, empty_store):
    run_path = make_run(tmp_path, imgsz=(416, 640), slower={640: 2.5})
    out = tmp_path / "report"
    code, stdout, _ = run_report(capfd, "--run", run_path, "--out", out, "--no-detections", "--store", empty_store)
    assert code == 0
    markdown = (out / "report.md").read_text()
    found = tables(markdown)
    assert [k for k in found if isinstance(k, int)] == [640, 416]  # largest first
    assert markdown.index("## 640 px") < markdown.index("## 416 px")
    run = load_run(run_path)
    for imgsz in (640, 416):
        rows = found[imgsz]
        assert set(rows) == {n for n, c in run.cells.items() if c.imgsz == imgsz} | {name(p, imgsz) for p in UNTIMED}
        torch = run.cells[f"dense-torch-{imgsz}"]
        for cell_id in (n for n, c in run.cells.items() if c.imgsz == imgsz):
            cell = run.cells[cell_id]
            # Each size against its own baselines, with its own mAP.
            assert rows[cell_id][f"speedup vs dense-torch-{imgsz}"] == report.fmt_ratio(
                fastest_p50(torch) / fastest_p50(cell))
            assert rows[cell_id][f"speedup vs dense-onnxruntime-{imgsz}"] == report.fmt_ratio(cell.speedup_vs_reference)
            assert rows[cell_id]["mAP@0.5"] == report.fmt_map(cell.map50)
        best = f"at {imgsz} px: {name(FASTEST_WITHIN_ONE_POINT, imgsz)}"
        assert f"fastest configuration within 1 point of dense mAP {best}" in markdown
        assert best in stdout
    assert found[640]["pruned-onnxruntime-640"]["FPS"] != found[416]["pruned-onnxruntime-416"]["FPS"]
    charts = ["fps-416.png", "fps-640.png", "latency-416.png", "latency-640.png", "tradeoff-416.png",
              "tradeoff-640.png"]
    assert sorted(p.name for p in out.glob("*.png")) == charts
    for chart in charts:
        assert f"]({chart})" in markdown
        assert cv2.imread(str(out / chart)).std() > 0


def make_artifact(store_root: Path, variant: str, files: dict[str, bytes]) -> str:
    """A finished artifact entry in a test store, holding ``files`` (no model: the report only reads files)."""
    def write(work, out):
        for file, data in files.items():
            (out / file).write_bytes(data)
        return {"variant": variant, "export_imgsz": [416]}

    return Store(store_root).build(variant, content_key({"test artifact": variant}), write).key


def test_gzip_size_is_that_of_the_file_the_engine_loaded(tmp_path, capfd, no_models):
    store_root = tmp_path / "store"
    # Zeros compress (what sparse weights do); the text makes gzip's level matter.
    sparse = bytes(400_000) + b"".join(b"weight %d " % (i * i % 997) for i in range(20_000))
    dense = os.urandom(100_000)
    key = make_artifact(store_root, "pruned", {"weights.pt": sparse, onnx_filename("fp32", 416): dense})
    elsewhere = f"/another/machine/store/pruned-{key}/{onnx_filename('fp32', 416)}"
    cells = {("dense", "onnxruntime"): (20.0, 0.56, 0.0, 1),  # no artifact_key: not looked up
             ("dense", "torch"): (40.0, 0.56, 0.0, 1),
             ("pruned", "torch"): (30.0, 0.55, 0.8, len(sparse)),
             ("pruned", "onnxruntime"): (10.0, 0.55, 0.8, len(dense)),
             ("pruned", "openvino"): (9.0, 0.55, 0.8, len(dense) + 1),  # not the size of the store's file
             ("transfer", "onnxruntime"): (8.0, 0.5, 0.8, 5)}  # an artifact the store does not have
    extra = {("pruned", "torch"): {"artifact_key": key},
             ("pruned", "onnxruntime"): {"artifact_key": key, "session": [{"model_path": elsewhere}]},
             ("pruned", "openvino"): {"artifact_key": key},
             ("transfer", "onnxruntime"): {"artifact_key": "0000000000000000"}}
    before = sorted(str(p.relative_to(store_root)) for p in store_root.rglob("*"))
    out = tmp_path / "report"
    run_path = make_run(tmp_path, cells, extra=extra)
    code, _, stderr = run_report(capfd, "--run", run_path, "--out", out, "--no-detections", "--store", store_root)
    assert code == 0, stderr
    exact = report.deployed_files(load_run(run_path), Store(store_root))
    assert exact["pruned-torch-416"].compressed_bytes == len(gzip.compress(sparse, 9, mtime=0))
    assert exact["pruned-onnxruntime-416"].compressed_bytes == len(gzip.compress(dense, 9, mtime=0))
    markdown = (out / "report.md").read_text()
    rows = table(markdown)
    assert rows["pruned-torch-416"]["gzip MB"] == report.fmt_size(len(gzip.compress(sparse, 9, mtime=0)))
    assert rows["pruned-onnxruntime-416"]["gzip MB"] == report.fmt_size(len(gzip.compress(dense, 9, mtime=0)))
    assert rows["pruned-onnxruntime-416"]["file"] == onnx_filename("fp32", 416)  # the session's file, found here
    assert float(rows["pruned-torch-416"]["gzip MB"]) < float(rows["pruned-torch-416"]["size MB"]) / 10
    no_gzip = report.MISSING + report.NO_COMPRESSED_MARK
    for cell in ("dense-onnxruntime-416", "pruned-openvino-416", "transfer-onnxruntime-416"):
        assert rows[cell]["gzip MB"] == no_gzip, cell
    footnotes = [line for line in markdown.splitlines() if report.NO_COMPRESSED_MARK + " gzip size" in line]
    assert any("dense-onnxruntime-416" in n and "no `artifact_key`" in n for n in footnotes)
    assert any("pruned-openvino-416" in n and "not the file measured" in n for n in footnotes)
    assert any("transfer-onnxruntime-416" in n and "does not have artifact transfer-0000000000000000" in n
               for n in footnotes)
    assert sorted(str(p.relative_to(store_root)) for p in store_root.rglob("*")) == before  # read, nothing written


def test_gzip_size_does_not_depend_on_how_the_file_is_read(tmp_path):
    data = bytes(300_000) + os.urandom(50_000) + b"".join(b"w%d " % (i * i % 997) for i in range(30_000))
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    expected = len(gzip.compress(data, compresslevel=9, mtime=0))
    assert report.gzip_size(path) == report.gzip_size(path, chunk=4096) == expected


def test_a_cell_that_loaded_another_file_than_a_deployment_says_so(tmp_path):
    path = make_run(tmp_path, {("dense", "onnxruntime"): (20.0, 0.5, 0.0, 1),
                               ("pruned_quant", "onnxruntime"): (10.0, 0.5, 0.8, 1)},
                    extra={("pruned_quant", "onnxruntime"): {"form": "fp32"}})
    notes = {r.name: r.notes for r in report.build_rows(load_run(path))}
    assert "loaded model-416.onnx, a deployment loads model-416.qdq.onnx" in notes["pruned_quant-onnxruntime-416"]
    assert not any("loaded" in n for n in notes["dense-onnxruntime-416"])


BLOG_CELLS = {("dense", "torch"): (40.0, 0.56, 0.0, 1), ("dense", "onnxruntime"): (20.0, 0.56, 0.0, 1),
              ("dense", "deepsparse"): (25.0, 0.56, 0.0, 1),
              ("pruned", "onnxruntime"): (20.0, 0.55, 0.8, 1), ("pruned", "deepsparse"): (10.0, 0.55, 0.8, 1),
              ("pruned", "openvino"): (8.0, 0.55, 0.8, 1)}


def test_blog_side_by_side_takes_the_fastest_engine_at_416(tmp_path, capfd, no_models, empty_store):
    run_path = make_run(tmp_path, BLOG_CELLS, imgsz=(640, 416), slower={640: 0.5})
    out = tmp_path / "report"
    assert run_report(capfd, "--run", run_path, "--out", out, "--no-detections", "--store", empty_store)[0] == 0
    markdown = (out / "report.md").read_text()
    rows = tables(markdown)["blog"]
    run = load_run(run_path)

    def speedup(cell: str) -> str:  # over dense on PyTorch at 416, never at 640 (faster there)
        torch = run.cells["dense-torch-416"]
        return report.fmt_ratio(fastest_p50(torch) / fastest_p50(run.cells[cell]))

    header = "this run: fastest engine's speedup vs dense-torch-416"
    pruned = rows["pruned"]
    assert pruned["blog speedup vs PyTorch"] == "1.62x" and pruned["blog FPS"] == "35.5"
    assert pruned["this run: fastest engine"] == "openvino"  # faster than the blog's DeepSparse here
    assert pruned[header] == speedup("pruned-openvino-416") == "5.00x"
    assert pruned["this run: DeepSparse speedup vs dense-torch-416"] == speedup("pruned-deepsparse-416")
    assert rows["DeepSparse dense"]["this run: fastest engine"] == "onnxruntime"
    assert rows["DeepSparse dense"]["blog speedup vs PyTorch"] == "1.35x"
    assert rows["PyTorch"][header] == "1.00x"
    assert rows["pruned+quantized"]["this run: fastest engine"] == "not in this run at 416 px"
    assert rows["YOLOv5n pruned+quantized Hardswish"]["blog speedup vs PyTorch"] == "4.26x"


def test_blog_side_by_side_needs_416_cells(tmp_path, capfd, no_models, empty_store):
    out = tmp_path / "report"
    assert run_report(capfd, "--run", make_run(tmp_path, BLOG_CELLS, imgsz=160), "--out", out, "--no-detections",
                      "--store", empty_store)[0] == 0
    markdown = (out / "report.md").read_text()
    assert "This run has no 416 px cells (it timed 160 px): the comparison needs them" in markdown
    rows = tables(markdown)["blog"]
    assert rows["pruned"]["this run: fastest engine"] == report.MISSING
    assert rows["pruned"]["blog speedup vs PyTorch"] == "1.62x"


def test_blog_numbers_are_the_blogs():
    assert {r.variant for r in blog.RUNGS} <= set(catalogue.VARIANT_NAMES)
    assert blog.IMGSZ == 416 and blog.TORCH_FPS == 21.9
    shown = {r.variant: report.fmt_ratio(r.speedup_vs_torch) for r in blog.RUNGS}
    assert shown == {"dense": "1.35x", "oneshot": "1.46x", "pruned": "1.62x", "pruned_quant": "2.65x",
                     "transfer": "2.36x", "v5n_hardswish_pq": "4.26x"}


def test_example_run_file_without_a_torch_baseline(tmp_path, capfd, no_models, empty_store):
    out = tmp_path / "report"
    code, _, stderr = run_report(capfd, "--run", EXAMPLE_RUN, "--out", out, "--no-detections", "--store", empty_store)
    assert code == 0, stderr
    markdown = (out / "report.md").read_text()
    rows = table(markdown)
    assert set(rows) == {"dense-onnxruntime-416", "pruned_quant-deepsparse-416"}  # old names, sized on loading
    assert rows["pruned_quant-deepsparse-416"]["speedup vs dense-torch-416"] == "n/a"
    assert rows["pruned_quant-deepsparse-416"]["FPS"] == "243.9"
    assert rows["pruned_quant-deepsparse-416"]["speedup vs dense-onnxruntime-416"] == "2.49x"
    # pytest-benchmark's own machine_info, with the CPU's family and model
    assert "Machine: AMD EPYC, AMD family 25 model 17 (Zen 4), 2 cores, threads 2" in markdown
    assert ("fastest configuration within 1 point of dense mAP at 416 px: dense-onnxruntime-416 at 98.0 FPS"
            in markdown)
    assert "This run has no dense-torch-416 cell" in markdown


def test_fastest_within_one_point_counts_a_drop_of_exactly_one_point(tmp_path):
    rows = report.build_rows(load_run(make_run(tmp_path)))
    assert report.fastest_within_dense(rows).name == name(FASTEST_WITHIN_ONE_POINT)
    assert report.fastest_within_dense(rows, points=1.1).name == "pruned_quant-onnxruntime-416"
    no_dense = {k: v for k, v in CELLS.items() if k[0] != "dense"}
    no_dense[("dense", "onnxruntime")] = (20.0, None, 0.0, 1)  # the reference, without an mAP
    assert report.fastest_within_dense(report.build_rows(load_run(make_run(tmp_path, no_dense, "nodense")))) is None


def test_default_run_is_the_newest(tmp_path, monkeypatch, capfd, no_models, empty_store):
    runs = tmp_path / "runs"
    runs.mkdir()
    old = make_run(runs, {("dense", "onnxruntime"): (20.0, 0.5, 0.0, 1)}, "b-old")
    new = make_run(runs, {("dense", "onnxruntime"): (10.0, 0.5, 0.0, 1)}, "a-new")
    os.utime(old, (1_000_000, 1_000_000))
    monkeypatch.setattr(report.writer, "default_runs_dir", lambda: runs)
    assert report.newest_run() == new
    out = tmp_path / "report"
    assert run_report(capfd, "--out", out, "--no-detections", "--store", empty_store)[0] == 0
    assert table((out / "report.md").read_text())["dense-onnxruntime-416"]["FPS"] == report.fmt_fps(
        load_run(new).cells["dense-onnxruntime-416"].extra["fps"])


@pytest.mark.parametrize("case", ["missing run", "no runs", "not a run", "unknown profile", "unknown engine"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capfd, case):
    empty = tmp_path / "no-runs"
    empty.mkdir()
    monkeypatch.setattr(report.writer, "default_runs_dir", lambda: empty)
    (tmp_path / "list.json").write_text("[1, 2]")
    good = make_run(tmp_path)
    args = {
        "missing run": ["--run", tmp_path / "nope.json"],
        "no runs": [],
        "not a run": ["--run", tmp_path / "list.json"],
        "unknown profile": ["--run", good, "--profile", "huge"],
        "unknown engine": ["--run", good, "--engine", "tensorrt"],
    }[case]
    out = tmp_path / "report"
    code, _, stderr = run_report(capfd, *args, "--out", out)
    assert code == EXIT_BAD_INPUT
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("yolobench report: error:"), stderr
    assert not out.exists()  # checked before anything is written


def test_profile_comes_from_the_run(tmp_path):
    assert report.infer_profile(load_run(make_run(tmp_path, imgsz=64, name="a"))) == "tiny"
    assert report.infer_profile(load_run(make_run(tmp_path, imgsz=160, name="b"))) == "smoke"
    assert report.infer_profile(load_run(make_run(tmp_path, imgsz=(640, 416), name="c"))) == "full"
    assert report.infer_profile(load_run(EXAMPLE_RUN)) == "full"  # 416 px: only `full` exports it


@pytest.fixture(scope="module")
def dense_tiny(tiny_home):
    from yolobench.store import Store

    return builder.build("dense", "tiny", store=Store(tiny_home / "store"))


@pytest.mark.slow
def test_detections_of_built_variants_and_a_note_for_the_others(tmp_path, dense_tiny, capfd):
    cells = {("dense", "onnxruntime"): (20.0, 0.5, 0.0, 1), ("pruned", "onnxruntime"): (10.0, 0.5, 0.8, 1)}
    run_path = make_run(tmp_path, cells, imgsz=64, extra={("dense", "onnxruntime"): {"artifact_key": dense_tiny.key},
                                                           ("pruned", "onnxruntime"): {"artifact_key": "f" * 16}})
    out = tmp_path / "report"
    code, stdout, stderr = run_report(capfd, "--run", run_path, "--out", out, "--store", dense_tiny.path.parent)
    assert code == 0, stderr
    sheet = cv2.imread(str(out / "detections" / "dense.png"))
    assert sheet is not None and sheet.shape[0] == DETECTION_SHEET_HEIGHT
    markdown = (out / "report.md").read_text()
    assert "![dense detections](detections/dense.png)" in markdown
    assert re.search(r"### pruned\n\nskipped: artifact f{16}, which this run measured, is not in ", markdown)
    assert not (out / "detections" / "pruned.png").exists()
    assert "the artifacts this run measured are not in the store: pruned" in stdout


class FakeArtifact:
    key = "0123456789abcdef"
    export_sizes = [64]
    path = Path("/nonexistent/fake-artifact")  # no files: the table shows no size

    def eval_data_yaml(self, imgsz):
        from yolobench.data import builtin_dataset

        return str(builtin_dataset("target", **dict(catalogue.get_profile("tiny").dataset)))


class FakeDetector:
    """One fixed box per image, in the middle: what the sheet must show, without any model."""

    variant, engine, form, imgsz, conf = "dense", "onnxruntime", "fp32", 64, 0.25
    names = {0: "circle"}

    def detect(self, image):
        from yolobench.processing import Detections

        h, w = image.shape[:2]
        return Detections([[w * 0.25, h * 0.25, w * 0.75, h * 0.75]], [0.9], [0]), 1.0


def test_detection_sheets_for_built_variants_notes_for_the_rest(tmp_path, tiny_home, monkeypatch, capfd):
    """The plumbing, with a fake model: built -> a sheet with the boxes drawn; not built -> a note."""
    from yolobench import draw

    monkeypatch.setattr(annotate, "load_built", lambda *a, **k: pytest.fail("the report recomputed a key"))
    monkeypatch.setattr(Store, "get", lambda self, variant, key, **kw: FakeArtifact() if key == FakeArtifact.key else None)
    monkeypatch.setattr(annotate.Detector, "load", classmethod(lambda cls, *a, **k: FakeDetector()))
    cells = {("dense", "onnxruntime"): (20.0, 0.5, 0.0, 1), ("pruned", "onnxruntime"): (10.0, 0.5, 0.8, 1)}
    out = tmp_path / "report"
    run_path = make_run(tmp_path, cells, imgsz=64, extra={("dense", "onnxruntime"): {"artifact_key": FakeArtifact.key}})
    code, stdout, stderr = run_report(capfd, "--run", run_path, "--out", out)
    assert code == 0, stderr
    sheet = cv2.imread(str(out / "detections" / "dense.png"))
    assert sheet.shape[0] == DETECTION_SHEET_HEIGHT
    box_colour = (sheet == draw.class_color(0)).all(axis=2)
    assert box_colour.sum() > 2 * report.DETECTION_PANEL_HEIGHT  # one box outline per engine panel, at least
    panel_width = sheet.shape[1] // 2  # labels and one engine per row: the engine's half holds its boxes
    assert box_colour[:, panel_width:].sum() > 2 * report.DETECTION_PANEL_HEIGHT // 2
    markdown = (out / "report.md").read_text()
    assert "detections per image: onnxruntime 1, 1." in markdown
    assert "bus.jpg" not in markdown  # street photos only for a model with their classes ("circle" is not)
    assert "### pruned\n\nskipped: the run does not record which artifact it measured" in markdown
    assert not (out / "detections" / "pruned.png").exists()


def test_the_report_imports_nothing_from_the_build_side():
    """It reads run files and the store by the keys the runs name: no recipe, key or dataset resolution."""
    import ast

    modules = sorted(Path(report.__file__).parent.glob("*.py"))  # every module of the package
    assert len(modules) > 1
    imported = set()
    for node in (n for path in modules for n in ast.walk(ast.parse(path.read_text()))):
        if isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{a.name}" for a in node.names} | {node.module or ""}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    build_side = {"yolobench.builder", "yolobench.training", "yolobench.modelio", "sparseml", "ultralytics"}
    assert not {name for name in imported for side in build_side if name == side or name.startswith(side + ".")}


def test_the_diff_against_a_baseline_carries_the_gates_verdicts(tmp_path, capfd, no_models, empty_store):
    """A failed gate reads at a glance: the slowed cell's row says FAIL, with the gate's own ratio."""
    base = make_run(tmp_path, name="base")
    slow = dict(CELLS)
    p50, *rest = slow[("pruned", "onnxruntime")]
    slow[("pruned", "onnxruntime")] = (p50 * 3, *rest)
    current = make_run(tmp_path, cells=slow, name="current")
    thresholds = tmp_path / "t.toml"
    thresholds.write_text('[defaults]\nlatency_factor = 1.25\nsource = "test"\n')
    out = tmp_path / "report"
    code, _, _ = run_report(capfd, "--run", current, "--out", out, "--no-detections", "--store", empty_store,
                            "--baseline", base, "--thresholds", thresholds)
    assert code == 0
    rows = tables((out / "report.md").read_text())
    diff = next(v for k, v in rows.items() if isinstance(k, str) and "baseline" in k.lower())
    slowed = diff["pruned-onnxruntime-416"]
    assert slowed["verdict"] == "**FAIL**" and slowed["ratio"] == "3.00x"
    assert diff["dense-onnxruntime-416"]["verdict"] == "ok"
    assert "**gate FAILS** on pruned-onnxruntime-416" in (out / "report.md").read_text()


# --- the machine's limit and the per-layer profiles: read from committed measurements ----------------

ZEN5_MACHINE = {"yolobench": {"cpu_model": CPU, "cpu_vendor": "AuthenticAMD", "cpu_family": 26, "cpu_model_id": 2,
                              "logical_cores": 2, "usable_cores": 2, "system": "Linux", "arch": "x86_64",
                              "python": "3.11.7"}}


def write_peak(path: Path, generation: str) -> Path:
    import json

    path.write_text(json.dumps({"cpu_generation": generation, "threads": 2, "copy_bytes_per_s": 3e10,
                                "fp32_macs_per_s": {"openvino": 1e11, "onnxruntime": 8e10},
                                "bf16_macs_per_s": {"openvino": 2e11}, "int8_macs_per_s": {"openvino": 4e11}}))
    return path


def test_the_machines_limit_and_the_profiles_are_read_not_measured(tmp_path, capfd, no_models, monkeypatch):
    from yolobench import peak as peak_module

    def refuse(*args, **kwargs):
        raise AssertionError("the report must not measure the peak")

    monkeypatch.setattr(peak_module, "measure", refuse)
    rows = [peak_module.RooflineRow("dense-openvino-416", "fp32", 7e9, 50.0, "float"),
            peak_module.RooflineRow("pruned_quant-deepsparse-416", "deepsparse", 7e9, 150.0, "int8")]
    monkeypatch.setattr(peak_module, "roofline_rows", lambda run, store: (rows, ["oneshot-torch-416: why not"]))
    run = make_run(tmp_path, machine=ZEN5_MACHINE)
    peak = write_peak(tmp_path / "peak.json", load_run(run).cpu_generation)
    profile = tmp_path / "profile.md"
    profile.write_text("Per-layer profile, AMD EPYC\n\n| block | ms |\n|---|---:|\n| model.2 | 1.25 |\n")
    out_dir = tmp_path / "report"
    code, _, _ = run_report(capfd, "--run", run, "--out", out_dir, "--no-detections", "--store", tmp_path / "s",
                            "--peak", peak, "--profiles", profile)
    markdown = (out_dir / "report.md").read_text()
    assert code == 0 and "## The machine's limit" in markdown
    assert "| dense-openvino-416 | fp32 | 7.00 | 50.0 | 350.0 | 175% of float |" in markdown  # 350 / max(100, 200)
    assert "| pruned_quant-deepsparse-416 | deepsparse | 7.00 | 150.0 | 1050.0 | 262% of INT8 |" in markdown
    assert "- not shown: oneshot-torch-416: why not" in markdown and (out_dir / "roofline.png").stat().st_size > 0
    assert "## Where the time goes: per-layer profiles" in markdown and "| model.2 | 1.25 |" in markdown


def test_a_peak_of_another_generation_or_none_says_what_to_run(tmp_path, capfd, no_models, monkeypatch):
    # none committed
    monkeypatch.setattr(report.measurements, "measurements_dir", lambda kind: tmp_path / "results" / kind)
    run = make_run(tmp_path, machine=ZEN5_MACHINE)
    other = write_peak(tmp_path / "zen4.json", "AMD family 25 model 17 (Zen 4)")
    code, _, _ = run_report(capfd, "--run", run, "--out", tmp_path / "a", "--no-detections", "--store", tmp_path / "s",
                            "--peak", other, "--profiles", "auto")
    markdown = (tmp_path / "a" / "report.md").read_text()
    assert code == 0 and "not comparable" in markdown and "yolobench peak --run" in markdown
    assert "yolobench profile --profile" in markdown  # no profiles committed for this run's profile and generation
    code, _, _ = run_report(capfd, "--run", run, "--out", tmp_path / "b", "--no-detections", "--store", tmp_path / "s",
                            "--peak", tmp_path / "missing.json")
    assert code == 0 and "Not measured on this CPU generation" in (tmp_path / "b" / "report.md").read_text()


def test_a_cell_with_sessions_missing_says_so_on_its_row(tmp_path, capfd, no_models, empty_store):
    # the reference timed in its 3 sessions; pruned_quant only in session 1 of 3 (2 and 3 failed or were cut off)
    reference = Latency.from_samples(samples(20.0), session_sizes=[N])
    entries = [cell_extra_info(reference, variant="dense", engine="onnxruntime", engine_version="1.0", threads=2,
                               imgsz=416, reference_latency=reference, cpu_model=CPU, form="fp32",
                               session_index=k, sessions=3) for k in (1, 2, 3)]
    entries.append(cell_extra_info(Latency.from_samples(samples(8.0), session_sizes=[N]), variant="pruned_quant",
                                   engine="onnxruntime", engine_version="1.0", threads=2, imgsz=416,
                                   reference_latency=reference, cpu_model=CPU, form="qdq", session_index=1,
                                   sessions=3))
    run_path = write_run(tmp_path / "run.json", run_document(entries))
    out = tmp_path / "report"
    code, _, stderr = run_report(capfd, "--run", run_path, "--out", out, "--no-detections", "--store", empty_store)
    assert code == 0, stderr
    rows = table((out / "report.md").read_text())
    assert "incomplete: 1 of 3 sessions (2, 3 missing)" in rows["pruned_quant-onnxruntime-416"]["notes"]
    assert "incomplete" not in rows["dense-onnxruntime-416"]["notes"]


# --- a run file's strings are text in report.md, never markup ---

HOSTILE = ["<img src=x onerror=alert(1)>", "[x](http://evil)\n# heading"]


def hostile_run(tmp_path: Path, text: str) -> Path:
    """A run file whose every free-text string is ``text``: the commit's branch, id and time, the date, the
    machine's system, Python and library versions, the CPU (vendor too) and each cell's engine version."""
    cells = {("dense", "torch"): CELLS[("dense", "torch")], ("dense", "onnxruntime"): CELLS[("dense", "onnxruntime")]}
    extra = {pair: {"cpu_model": text, "engine_version": text,
                    "weights": {"sha256": "0" * 64, "family": text, "path": f"/x/{text}.pt"}} for pair in cells}
    machine = {"yolobench": {"cpu_model": text, "cpu_vendor": text, "cpu_family": 1, "cpu_model_id": 2,
                             "logical_cores": 2, "usable_cores": 2, "system": text, "python": text,
                             "versions": {text: text}}}
    return make_run(tmp_path, cells, name="hostile", extra=extra, machine_info=machine, datetime=text,
                    commit_info={"id": text, "branch": text, "time": text, "dirty": False})


@pytest.mark.parametrize("text", HOSTILE, ids=["html", "link-and-heading"])
def test_run_file_strings_are_escaped_in_the_report(tmp_path, capfd, no_models, empty_store, text):
    run_path = hostile_run(tmp_path, text)
    out = tmp_path / "report"
    code, _, stderr = run_report(capfd, "--run", run_path, "--out", out, "--no-detections", "--store", empty_store,
                                 "--baseline", run_path, "--peak", tmp_path / "no-peak.json")
    assert code == 0, stderr
    markdown = (out / "report.md").read_text()
    # HTML needs a raw "<", a link or an image a raw "](", a heading a line that starts with "#"; inside a code
    # span (`...`) nothing is markup
    prose = re.sub(r"`[^`\n]*`", "", markdown)
    assert "<img" not in prose and "](http://evil)" not in prose.replace("\\](http://evil)", "")
    assert prose.count("&lt;img src=x onerror=alert(1)&gt;") > 5 or prose.count("\\[x\\](http://evil)") > 5
    assert [line for line in markdown.splitlines() if line.startswith("#") and "heading" in line] == []
    commit = next(line for line in markdown.splitlines() if line.startswith("- Commit: "))
    if text.startswith("<"):
        assert commit == ("- Commit: &lt;img src=x onerror=alert(1)&gt;, branch &lt;img src=x onerror=alert(1)&gt;, "
                          "committed &lt;img src=x onerror=alert(1)&gt;")
    else:
        assert commit == r"- Commit: \[x\](http://evil) # heading, branch \[x\](http://evil) # heading, committed \[x\](http://evil) # heading"
    # the checkpoint's file name stays in its code span (where nothing is markup), on its line
    name = Path(f"/x/{text}.pt").name.replace("\n", " ")
    assert f"- Your model: `{name}` (" in markdown


def test_md_text_keeps_ordinary_names_and_turns_markup_into_text():
    for plain in ("pruned_quant-deepsparse-640", "v5n_hardswish_pq", "openvino_nncf 2026.4.1 + nncf 3.4.0", "main",
                  "AMD family 26 model 2 (Zen 5)", "2026-12-03T06:36:25.414774+00:00", "Linux 6.18.44-fc-v1098",
                  "trust-2", "model-640.qdq.onnx", "95% of ops native"):
        assert report.md_text(plain) == plain
    assert report.md_text("a\r\nb\tc\u2028d") == "a b c d"  # one line
    assert report.md_text("<b> & <i>") == "&lt;b&gt; &amp; &lt;i&gt;"
    assert report.md_text(r"![a](b) *c* _d_ `e` ~f~ \g") == r"!\[a\](b) \*c\* \_d\_ \`e\` \~f\~ \\g"
    assert report.md_text("# h") == r"\# h" and report.md_text("x #1") == "x #1"
    assert report.md_text("a`b\nc", code=True) == "ab c"  # inside a code span: nothing else is markup
