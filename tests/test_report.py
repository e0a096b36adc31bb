"""``yolobench report``: the table carries the run file's numbers, the charts open at their size, the
detections are drawn from built artifacts (and skipped with a note when a variant is not built).

Run files are made here from explicit samples through ``runfile.cell_extra_info`` (as the benchmarks
write them), plus the example written by pytest-benchmark itself in tests/data/gate/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import pytest

from yolobench import annotate, builder, report
from yolobench.cli import main
from yolobench.errors import EXIT_BAD_INPUT
from yolobench.runfile import cell_extra_info, load_run, run_document, write_run
from yolobench.timer import Latency

EXAMPLE_RUN = Path(__file__).parent / "data" / "gate" / "pytest_benchmark_run.json"
CPU = "AMD EPYC test"
N = 50  # samples per cell
# Display rounding is the only change a number may undergo: half a unit of its last shown digit.
FPS_SHOWN_TO = 0.05
MS_SHOWN_TO = 0.005
DETECTION_SHEET_HEIGHT = 40 + report.DETECTION_PANEL_HEIGHT + 34  # title strip + panels + caption strip

# cell: (p50 ms, map50, sparsity, size bytes); latencies chosen so that each rule below has one answer.
CELLS = {
    "dense-torch": (40.0, 0.560, 0.0, 28_000_000),
    "dense-onnxruntime": (20.0, 0.562, 0.0, 28_000_000),
    "pruned-onnxruntime": (19.0, 0.552, 0.8, 28_000_000),  # exactly 1.0 point below dense-onnxruntime
    "pruned_quant-onnxruntime": (8.0, 0.5515, 0.8, 7_000_000),  # 1.05 points below: not eligible
    "pruned_quant-deepsparse": (5.0, 0.540, 0.8, 7_000_000),  # no dense-deepsparse: compared to the reference
    "oneshot-openvino": (9.0, None, 0.0, 7_000_000),  # no mAP recorded
}
FASTEST_WITHIN_ONE_POINT = "pruned-onnxruntime"


def samples(p50_ms: float) -> list[float]:
    return [p50_ms * (1 + 0.002 * (i % 5 - 2)) for i in range(N)]


def make_run(tmp_path: Path, cells: dict = CELLS, name: str = "run", imgsz: int = 416, **document) -> Path:
    reference = Latency.from_samples(samples(cells["dense-onnxruntime"][0])) if "dense-onnxruntime" in cells else None
    infos = []
    for cell, (p50, map50, sparsity, size) in cells.items():
        variant, engine = cell.rsplit("-", 1)
        infos.append(cell_extra_info(
            Latency.from_samples(samples(p50)), variant=variant, engine=engine, engine_version=f"{engine}-1.0",
            threads=2, imgsz=imgsz, reference_latency=reference, sparsity=sparsity, map50=map50,
            map50_95=None if map50 is None else map50 * 0.6, model_size_bytes=size, form="fp32", cpu_model=CPU,
            fraction_of_supported_ops=1.0 if engine == "deepsparse" else None))
    doc = run_document(infos, machine={"yolobench": {"cpu_model": CPU, "logical_cores": 2, "usable_cores": 2,
                                                     "system": "Linux", "arch": "x86_64", "python": "3.11.7"}},
                       commit={"id": "abc1234", "branch": "main", "dirty": False})
    doc["datetime"] = "2026-11-27T23:05:32+00:00"
    doc.update(document)
    return write_run(tmp_path / f"{name}.json", doc)


def table(markdown: str) -> dict[str, dict[str, str]]:
    """The report's table as {cell: {column: text}}."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    rows = {}
    for line in lines[1:]:
        values = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows[values[0]] = dict(zip(header, values))
    return rows


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


def test_table_numbers_are_the_run_files(tmp_path, capfd, no_models):
    run_path = make_run(tmp_path)
    out = tmp_path / "report"
    code, stdout, stderr = run_report(capfd, "--run", run_path, "--out", out, "--no-detections")
    assert code == 0, stderr
    markdown = (out / "report.md").read_text()
    rows = table(markdown)
    run = load_run(run_path)
    assert set(rows) == set(run.cells)
    torch_p50 = run.cells["dense-torch"].extra["latency_ms"]["p50"]
    for name, cell in run.cells.items():
        row, extra = rows[name], cell.extra
        assert abs(float(row["FPS"]) - extra["fps"]) <= FPS_SHOWN_TO
        assert abs(float(row["p50 ms"]) - extra["latency_ms"]["p50"]) <= MS_SHOWN_TO
        assert abs(float(row["p90 ms"]) - extra["latency_ms"]["p90"]) <= MS_SHOWN_TO
        assert row["FPS"] == report.fmt_fps(extra["fps"])
        assert row["speedup vs dense-onnxruntime"] == report.fmt_ratio(extra["speedup_vs_reference"])
        # fastest session median over fastest session median, from the stored session medians
        torch_fastest = min(run.cells["dense-torch"].extra["session_p50_ms"] or [torch_p50])
        fastest = min(extra["session_p50_ms"] or [extra["latency_ms"]["p50"]])
        assert row["speedup vs dense-torch"] == report.fmt_ratio(torch_fastest / fastest)
        assert row["mAP@0.5"] == report.fmt_map(extra["map50"])
        assert row["sparsity"] == report.fmt_sparsity(extra["sparsity"])
        assert row["size MB"] == report.fmt_size(extra["model_size_bytes"])
    # The mAP change is taken against dense on the same engine, else against the reference cell (and says so).
    assert rows["pruned-onnxruntime"]["ΔmAP@0.5 vs dense (points)"] == "-1.00"
    assert rows["pruned_quant-deepsparse"]["ΔmAP@0.5 vs dense (points)"] == "-2.20"
    assert "vs dense-onnxruntime" in rows["pruned_quant-deepsparse"]["notes"]
    assert rows["oneshot-openvino"]["mAP@0.5"] == "n/a"
    assert rows["dense-torch"]["speedup vs dense-torch"] == "1.00x"

    fastest = run.cells[FASTEST_WITHIN_ONE_POINT]
    assert (f"fastest configuration within 1 point of dense mAP: {FASTEST_WITHIN_ONE_POINT} at "
            f"{report.fmt_fps(fastest.extra['fps'])} FPS") in markdown
    assert f"Machine: {CPU}, 2 cores, threads 2" in markdown
    assert "Commit: abc1234, branch main" in markdown
    assert "Date: 2026-11-27T23:05:32+00:00" in markdown
    assert "onnxruntime onnxruntime-1.0" in markdown  # library versions, from the cells
    assert str(run_path) in markdown or report.display_path(run_path) in markdown
    assert "Not drawn (--no-detections)" in markdown
    assert not (out / "detections").exists()
    assert f"{FASTEST_WITHIN_ONE_POINT} at" in stdout


def test_charts_open_at_their_size(tmp_path, capfd, no_models):
    out = tmp_path / "report"
    assert run_report(capfd, "--run", make_run(tmp_path), "--out", out, "--no-detections")[0] == 0
    for name, figsize in (("fps.png", report.FPS_FIGSIZE), ("tradeoff.png", report.TRADEOFF_FIGSIZE)):
        image = cv2.imread(str(out / name))
        assert image is not None, name
        width, height = (round(side * report.CHART_DPI) for side in figsize)
        assert image.shape == (height, width, 3), name
        assert image.std() > 0  # not blank


def test_example_run_file_without_a_torch_baseline(tmp_path, capfd, no_models):
    out = tmp_path / "report"
    code, _, stderr = run_report(capfd, "--run", EXAMPLE_RUN, "--out", out, "--no-detections")
    assert code == 0, stderr
    markdown = (out / "report.md").read_text()
    rows = table(markdown)
    assert set(rows) == {"dense-onnxruntime", "pruned_quant-deepsparse"}
    assert rows["pruned_quant-deepsparse"]["speedup vs dense-torch"] == "n/a"
    assert rows["pruned_quant-deepsparse"]["FPS"] == "243.9"
    assert rows["pruned_quant-deepsparse"]["speedup vs dense-onnxruntime"] == "2.49x"
    assert "Machine: AMD EPYC, 2 cores, threads 2" in markdown  # pytest-benchmark's own machine_info
    assert "fastest configuration within 1 point of dense mAP: dense-onnxruntime at 98.0 FPS" in markdown


def test_fastest_within_one_point_counts_a_drop_of_exactly_one_point(tmp_path):
    rows = report.build_rows(load_run(make_run(tmp_path)))
    assert report.fastest_within_dense(rows).name == FASTEST_WITHIN_ONE_POINT
    assert report.fastest_within_dense(rows, points=1.1).name == "pruned_quant-onnxruntime"
    no_dense = {k: v for k, v in CELLS.items() if not k.startswith("dense-")}
    no_dense["dense-onnxruntime"] = (20.0, None, 0.0, 1)  # the reference, without an mAP
    assert report.fastest_within_dense(report.build_rows(load_run(make_run(tmp_path, no_dense, "nodense")))) is None


def test_default_run_is_the_newest(tmp_path, monkeypatch, capfd, no_models):
    runs = tmp_path / "runs"
    runs.mkdir()
    old = make_run(runs, {"dense-onnxruntime": (20.0, 0.5, 0.0, 1)}, "b-old")
    new = make_run(runs, {"dense-onnxruntime": (10.0, 0.5, 0.0, 1)}, "a-new")
    os.utime(old, (1_000_000, 1_000_000))
    monkeypatch.setattr(report, "default_runs_dir", lambda: runs)
    assert report.newest_run() == new
    out = tmp_path / "report"
    assert run_report(capfd, "--out", out, "--no-detections")[0] == 0
    assert table((out / "report.md").read_text())["dense-onnxruntime"]["FPS"] == report.fmt_fps(
        load_run(new).cells["dense-onnxruntime"].extra["fps"])


@pytest.mark.parametrize("case", ["missing run", "no runs", "not a run", "unknown profile", "unknown engine"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capfd, case):
    empty = tmp_path / "no-runs"
    empty.mkdir()
    monkeypatch.setattr(report, "default_runs_dir", lambda: empty)
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
    assert report.infer_profile(load_run(EXAMPLE_RUN)) == "full"  # 416 px: only `full` exports it


@pytest.fixture(scope="module")
def dense_tiny(tiny_home):
    from yolobench.store import Store

    return builder.build("dense", "tiny", store=Store(tiny_home / "store"))


@pytest.mark.slow
def test_detections_of_built_variants_and_a_note_for_the_others(tmp_path, dense_tiny, capfd):
    cells = {"dense-onnxruntime": (20.0, 0.5, 0.0, 1), "pruned-onnxruntime": (10.0, 0.5, 0.8, 1)}
    run_path = make_run(tmp_path, cells, imgsz=64)
    out = tmp_path / "report"
    code, stdout, stderr = run_report(capfd, "--run", run_path, "--out", out, "--store", dense_tiny.path.parent)
    assert code == 0, stderr
    sheet = cv2.imread(str(out / "detections" / "dense.png"))
    assert sheet is not None and sheet.shape[0] == DETECTION_SHEET_HEIGHT
    markdown = (out / "report.md").read_text()
    assert "![dense detections](detections/dense.png)" in markdown
    assert re.search(r"### pruned\n\nskipped: not built for profile tiny", markdown)
    assert not (out / "detections" / "pruned.png").exists()
    assert "not built for profile tiny: pruned" in stdout


class FakeArtifact:
    key = "0123456789abcdef"
    export_sizes = [64]


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

    monkeypatch.setattr(annotate, "load_built", lambda variant, *a, **k: FakeArtifact() if variant == "dense" else None)
    monkeypatch.setattr(annotate.Detector, "load", classmethod(lambda cls, *a, **k: FakeDetector()))
    cells = {"dense-onnxruntime": (20.0, 0.5, 0.0, 1), "pruned-onnxruntime": (10.0, 0.5, 0.8, 1)}
    out = tmp_path / "report"
    code, stdout, stderr = run_report(capfd, "--run", make_run(tmp_path, cells, imgsz=64), "--out", out)
    assert code == 0, stderr
    sheet = cv2.imread(str(out / "detections" / "dense.png"))
    assert sheet.shape[0] == DETECTION_SHEET_HEIGHT
    box_colour = (sheet == draw.class_color(0)).all(axis=2)
    assert box_colour.sum() > 3 * report.DETECTION_PANEL_HEIGHT  # one box outline per panel, at least
    markdown = (out / "report.md").read_text()
    assert "detections per image: 1 (val_000000.png), 1 (bus.jpg), 1 (zidane.jpg)" in markdown
    assert "### pruned\n\nskipped: not built for profile tiny" in markdown
    assert not (out / "detections" / "pruned.png").exists()
