"""``yolobench bench --model A.onnx [B.onnx ...]``: any detection ONNX timed, checked and gated as catalogue cells.

A tiny YOLOv5u (random init, the built-in target data's 3 classes) exported by ultralytics' own ONNX
exporter at 64 px is the model file; a weight-only QDQ copy of it (int8 convolution weights through
DequantizeLinear) is the quantized one. The end-to-end run times four cells at the shortest protocol
(one session); nothing here asserts a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from yolobench import catalogue, engines, modelfiles, paths, runfile
from yolobench.commands import bench as bench_command
from yolobench.errors import UserError
from yolobench.store import Store, sha256_file

REPO = paths.repo_root()
IMGSZ = 64


# --- model files ---


@pytest.fixture(scope="module")
def data(tiny_home) -> Path:
    """The tiny profile's built-in target data (3 classes), in the module's private home."""
    from yolobench.builder import DATASET_SEED
    from yolobench.data import builtin_dataset

    return builtin_dataset("target", seed=DATASET_SEED, **catalogue.get_profile("tiny").dataset)


@pytest.fixture(scope="module")
def fp32_onnx(data, tmp_path_factory) -> Path:
    """A YOLOv5u with the data's classes, exported by ultralytics at 64 px (static input, raw head)."""
    import torch
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    import yolobench.offline
    from yolobench.data import check_dataset

    yolobench.offline.configure_ultralytics()
    names = check_dataset(data, decode_images=False).names
    root = tmp_path_factory.mktemp("model-files")
    torch.manual_seed(0)
    yolo = YOLO("yolov5nu.yaml")
    model = DetectionModel({**yolo.model.yaml, "nc": len(names)}, nc=len(names), verbose=False)
    model.args, model.task, model.names = yolo.model.args, yolo.model.task, dict(names)
    model.pt_path = str(root / "tiny-yolo.pt")  # the exporter writes beside it: tiny-yolo.onnx
    yolo.model = model
    return Path(yolo.export(format="onnx", imgsz=IMGSZ, opset=17, simplify=False, dynamic=False, device="cpu"))


def weight_qdq(src: Path, dst: Path, zero_first: int = 0) -> Path:
    """A QDQ copy: every Conv weight int8 (per tensor, zero point 0) through DequantizeLinear; the first
    ``zero_first`` weights of each set to zero."""
    model = onnx.load(str(src))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    dequantize = []
    for name in sorted({n.input[1] for n in graph.node if n.op_type == "Conv" and n.input[1] in inits}):
        weights = numpy_helper.to_array(inits[name]).copy()
        weights.reshape(-1)[:zero_first] = 0
        scale = np.float32(max(float(np.abs(weights).max()), 1e-8) / 127)
        graph.initializer.remove(inits[name])
        graph.initializer.extend([
            numpy_helper.from_array(np.clip(np.round(weights / scale), -127, 127).astype(np.int8), name + "_q"),
            numpy_helper.from_array(np.array(scale, np.float32), name + "_s"),
            numpy_helper.from_array(np.array(0, np.int8), name + "_z")])
        dequantize.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_s", name + "_z"], [name]))
    nodes = dequantize + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(dst))
    return dst


@pytest.fixture(scope="module")
def qdq_onnx(fp32_onnx) -> Path:
    return weight_qdq(fp32_onnx, fp32_onnx.with_name("tiny-yolo.int8.onnx"))


def handmade(path: Path, *, channels: int = 84, zeros: int = 0, rank2: bool = False) -> Path:
    """A one-Conv graph: images (1, 3, 64, 64) -> Conv 1x1 to ``channels`` -> (1, channels, 4096), no
    metadata (nc = channels - 4), ``zeros`` of its weights 0; ``rank2``: pooled to (1, channels) instead."""
    weights = np.ones((channels, 3, 1, 1), np.float32)
    weights.reshape(-1)[:zeros] = 0
    nodes = [helper.make_node("Conv", ["images", "w"], ["c"], name="conv")]
    inits = [numpy_helper.from_array(weights, "w")]
    if rank2:
        nodes += [helper.make_node("GlobalAveragePool", ["c"], ["p"]), helper.make_node("Flatten", ["p"], ["out"])]
        shape = [1, channels]
    else:
        inits.append(numpy_helper.from_array(np.array([1, channels, -1], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["c", "shape"], ["out"]))
        shape = [1, channels, IMGSZ * IMGSZ]
    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, IMGSZ, IMGSZ])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


# --- names, sparsity, the import ---


def test_a_model_file_is_named_by_its_stem_and_digest_in_characters_a_cell_name_can_hold():
    digest = "1A2B3C4D" + "0" * 56
    assert modelfiles.model_variant_name("/x/yolov8n-int8.onnx", digest) == "yolov8n_int8_1a2b3c4d"
    assert modelfiles.model_variant_name("My Model (v2).onnx", digest) == "my_model_v2_1a2b3c4d"
    assert modelfiles.model_variant_name("---.onnx", digest) == "model_1a2b3c4d"
    name = modelfiles.model_variant_name("a-b.c-d.onnx", digest)
    assert "-" not in name
    assert runfile.split_cell_name(runfile.cell_name(name, "openvino", 640)) == (name, "openvino", 640)


def test_sparsity_counts_zero_float_weights_and_quantized_weights_at_their_zero_point(tmp_path):
    float_graph = onnx.load(str(handmade(tmp_path / "f.onnx", channels=8, zeros=6)))
    assert modelfiles.conv_sparsity(float_graph)["overall"] == pytest.approx(6 / 24)
    quantized = onnx.load(str(weight_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", zero_first=12)))
    assert modelfiles.conv_sparsity(quantized)["overall"] == pytest.approx(12 / 24)
    # ConvInteger: zeros are the weights equal to the (per output channel) zero point
    w = np.array([3, 3, 0, 5, 5, 5], np.uint8).reshape(2, 3, 1, 1)
    graph = helper.make_graph(
        [helper.make_node("ConvInteger", ["x", "w", "", "wz"], ["y"], name="ci")], "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 2, 4, 4])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([3, 5], np.uint8), "wz")])
    report = modelfiles.conv_sparsity(helper.make_model(graph))
    assert report["overall"] == 0.8333 and report["per_layer"] == {"ci": 0.8333}  # rounded as the builder rounds


def test_a_model_file_is_imported_once_as_a_variant_artifact_with_its_map_on_the_data(fp32_onnx, data, tmp_path):
    store = Store(tmp_path / "store")
    artifact = modelfiles.import_model_file(fp32_onnx, store, data)
    digest = sha256_file(fp32_onnx)
    assert artifact.name == modelfiles.model_variant_name(fp32_onnx, digest) and artifact.imgsz == IMGSZ
    assert artifact.forms() == ["fp32"] and not artifact.quantized
    assert sha256_file(artifact.onnx_path("fp32", IMGSZ)) == digest
    meta = artifact.meta
    assert meta["origin"]["sha256"] == digest and meta["origin"]["model_file"] == str(fp32_onnx)
    assert meta["metrics"]["map50"] is not None and meta["metrics_by_imgsz"][str(IMGSZ)]["engine"] == "onnxruntime"
    assert meta["dataset"]["data_yaml"] == str(Path(data).resolve()) and len(meta["dataset"]["names"]) == 3
    assert meta["sparsity"]["overall"] is not None
    assert meta["file_sizes"] == {"model-64.onnx": fp32_onnx.stat().st_size}
    again = modelfiles.import_model_file(fp32_onnx, store, data)
    assert (again.key, again.meta["built_at"]) == (artifact.key, meta["built_at"])  # the same entry, not redone
    bare = modelfiles.import_model_file(fp32_onnx, store)  # no labels: no mAP, another entry
    assert bare.key != artifact.key and bare.meta["metrics"]["map50"] is None
    assert bare.meta["dataset"]["data_yaml"] is None and bare.meta["dataset"]["names"] == meta["dataset"]["names"]
    assert bare.eval_data_yaml() is None


def test_a_quantized_file_runs_as_it_is_and_is_not_timed_where_it_cannot_be(qdq_onnx, tmp_path):
    from yolobench import bench

    artifact = modelfiles.import_model_file(qdq_onnx, Store(tmp_path / "store"))
    assert artifact.forms() == ["qdq"] and artifact.quantized and artifact.meta["quantized"] is True
    assert bench.untimed_reason(artifact.name, "torch", artifact) == modelfiles.NO_TORCH_GRAPH
    nncf = engines.get("openvino_nncf").untimed_quantized
    assert bench.untimed_reason(artifact.name, "openvino_nncf", artifact) == nncf
    assert bench.untimed_reason(artifact.name, "onnxruntime", artifact) is None
    # DeepSparse prefers its own integer form: it runs the QDQ file itself; ONNX Runtime picks the form
    assert modelfiles.engine_model(artifact, engines.get("deepsparse")) == artifact.onnx_path("qdq", IMGSZ)
    assert modelfiles.engine_model(artifact, engines.get("onnxruntime")) is artifact


# --- `yolobench bench --model`: bad input ---


def _no_pytest(monkeypatch):
    from yolobench.commands import bench as command

    monkeypatch.setattr(command.children, "run", lambda *a, **k: pytest.fail("pytest must not start"))


@pytest.mark.parametrize("case", ["missing", "not onnx", "no detection head", "checkpoint", "classes not the data's"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, data, tmp_path, monkeypatch, capsys):
    from yolobench import cli

    _no_pytest(monkeypatch)
    model = {"missing": tmp_path / "absent.onnx", "not onnx": tmp_path / "notes.onnx",
             "no detection head": tmp_path / "classifier.onnx", "checkpoint": tmp_path / "best.pt",
             "classes not the data's": tmp_path / "coco.onnx"}[case]
    if case == "not onnx":
        model.write_text("this is not a model\n")
    elif case == "checkpoint":
        model.write_bytes(b"\x80\x02}q\x00.")
    elif case == "no detection head":
        handmade(model, rank2=True)
    elif case == "classes not the data's":
        handmade(model)  # (1, 84, N): 80 classes
    out, store = tmp_path / "run.json", tmp_path / "store"
    code = cli.main(["bench", "--model", str(model), "--profile", "tiny", "--out", str(out), "--store", str(store),
                     *(["--data", str(data)] if case == "classes not the data's" else [])])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and str(model.name) in err, err
    expected = {"missing": "no such model file", "not onnx": "not a readable ONNX model",
                "no detection head": "unsupported output rank 2", "checkpoint": "bench --weights",
                "classes not the data's": "80 classes"}[case]
    assert expected in err
    assert not out.exists() and not store.exists()


def test_model_and_variants_do_not_go_together(capsys):
    from yolobench import cli

    with pytest.raises(SystemExit) as stopped:
        cli.main(["bench", "--model", "a.onnx", "--variants", "dense"])
    assert stopped.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_the_pytest_command_names_each_file_by_its_absolute_path(fp32_onnx, qdq_onnx, monkeypatch, capsys):
    from yolobench import cli

    _no_pytest(monkeypatch)
    monkeypatch.chdir(fp32_onnx.parent)
    assert cli.main(["bench", "--model", fp32_onnx.name, qdq_onnx.name, "--dry-run"]) == 0
    command = capsys.readouterr().err
    assert f"--yb-models={fp32_onnx},{qdq_onnx}" in command and "--yb-variants" not in command


def test_a_parity_disagreement_fails_the_command_after_the_run_file_is_written(fp32_onnx, tmp_path, monkeypatch,
                                                                              capsys):
    from yolobench import cli
    from yolobench.commands import bench as command
    from yolobench.commands import parity

    real = parity.check_onnx_parity

    def disagreeing(*args, **kwargs):  # the real check, with its first pair turned into a disagreement
        report = real(*args, **kwargs)
        report.pairs[0].ok = False
        return report

    def fake_pytest(cmd, cwd):
        out = Path(next(a for a in cmd if a.startswith("--benchmark-json=")).split("=", 1)[1])
        out.write_text(json.dumps({"machine_info": {}, "commit_info": {}, "benchmarks": []}))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(parity, "check_onnx_parity", disagreeing)
    monkeypatch.setattr(command.children, "run", fake_pytest)
    out = tmp_path / "run.json"
    code = cli.main(["bench", "--model", str(fp32_onnx), "--engines", "onnxruntime,openvino", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1 and "DISAGREE" in captured.out and "engines DISAGREE on" in captured.err
    verdict, = json.loads(out.read_text())["machine_info"][modelfiles.RUN_FILE_KEY]
    assert verdict["verdict"] == bench_command.DISAGREE and verdict["sha256"] == sha256_file(fp32_onnx)


# --- end to end ---


def test_bench_model_times_every_engine_that_takes_the_file_and_gates_against_itself(fp32_onnx, data, tmp_path):
    out, store = tmp_path / "run.json", tmp_path / "store"
    command = [sys.executable, "-m", "yolobench", "bench", "--model", str(fp32_onnx), "--data", str(data),
               "--profile", "tiny", "--sessions", "1", "--engines", "onnxruntime,openvino,openvino_nncf,torch",
               "--store", str(store), "--out", str(out), "--", "-rs"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    assert "all 3 comparisons agree" in done.stdout  # onnxruntime, openvino and openvino pinned to f32
    digest = sha256_file(fp32_onnx)
    name = modelfiles.model_variant_name(fp32_onnx, digest)
    assert "SKIPPED [1] benchmarks/test_latency.py" in done.stdout and modelfiles.NO_TORCH_GRAPH in done.stdout

    run = runfile.load_run(out)
    assert set(run.cells) == {f"{name}-{e}-{IMGSZ}" for e in ("onnxruntime", "openvino", "openvino_nncf")}
    reference = f"{name}-onnxruntime-{IMGSZ}"
    for cell in run.cells.values():
        assert cell.extra["model_file"]["sha256"] == digest and cell.extra["parity"] == bench_command.AGREE
        assert cell.reference_cell == reference and cell.speedup_vs_reference is not None
        assert cell.map50 is not None and cell.imgsz == IMGSZ
    assert run.cells[reference].speedup_vs_reference == 1.0
    assert run.cells[f"{name}-openvino_nncf-{IMGSZ}"].form == "nncf-int8"
    verdict, = run.machine[modelfiles.RUN_FILE_KEY]
    assert (verdict["sha256"], verdict["verdict"]) == (digest, bench_command.AGREE)

    gate = subprocess.run([sys.executable, "-m", "yolobench", "gate", "--current", str(out), "--baseline", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "gate: passed" in gate.stdout and "missing" not in gate.stdout  # no catalogue cell is expected

    from yolobench import report

    written = report.write_report(out, tmp_path / "report", store=Store(store), engine="onnxruntime")
    text = written.markdown.read_text()
    assert reference in text and f"speedup vs {reference}" in text
    assert written.detections and written.detections[0].image is not None


def test_every_onnx_engine_takes_the_files_and_the_others_say_why_not(fp32_onnx, qdq_onnx, tmp_path):
    """pytest's own side (``--yb-models``), checking that each cell runs (``--benchmark-disable``)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_latency.py", "--benchmark-disable",
                           f"--yb-models={fp32_onnx},{qdq_onnx}", "--yb-profile=tiny", f"--yb-store={tmp_path / 's'}",
                           "-rs", "-q", "-p", "no:cacheprovider",
                           "-W", "ignore::pytest_benchmark.logger.PytestBenchmarkWarning"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "6 passed, 4 skipped" in done.stdout, done.stdout[-3000:]  # onnxruntime, deepsparse, openvino x 2
    assert "SKIPPED [2] benchmarks/test_latency.py" in done.stdout  # both files on torch, one reason:
    assert modelfiles.NO_TORCH_GRAPH in done.stdout
    assert "an INT8 variant is quantized already" in done.stdout  # the QDQ file on openvino_nncf
    assert "give --data" in done.stdout  # the float file on openvino_nncf: no training images to calibrate on
