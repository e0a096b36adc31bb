"""Every engine behind one protocol: same raw outputs on one ultralytics export, same errors for bad input."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from _tiny_yolo import IMGSZ, tiny_yolo
from yolobench import engines
from yolobench.engines.base import EngineUnsupported, inspect_onnx
from yolobench.errors import UserError
from yolobench.parity import POLICY, compare_detections, compare_raw
from yolobench.processing import default_images, load_images, postprocess, preprocess

THREADS = 1  # the machine's two cores are shared: one thread per engine is enough for parity
REFERENCE = "onnxruntime"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return tiny_yolo(tmp_path_factory.getbasetemp() / "tiny_yolo")


@pytest.fixture(scope="session")
def batch():
    """The two ultralytics sample photos, letterboxed by the shared path: (2, 3, 160, 160)."""
    images, infos = preprocess([img for _, img in load_images(default_images())], IMGSZ)
    return images, infos


def load_or_skip(name, model, **kwargs):
    engine = engines.get(name)
    try:
        return engine.load(model, threads=THREADS, **kwargs)
    except EngineUnsupported as err:
        pytest.skip(f"{name}: {err.reason}")


def run_each(session, images):
    return np.concatenate([session.run(images[i:i + 1]) for i in range(len(images))])


@pytest.fixture(scope="session")
def reference_raw(tiny, batch):
    return run_each(load_or_skip(REFERENCE, tiny.onnx), batch[0])


def test_registry_names_the_four_engines():
    assert engines.ENGINE_NAMES == ("torch", "onnxruntime", "deepsparse", "openvino")
    assert [engines.get(n).name for n in engines.ENGINE_NAMES] == list(engines.ENGINE_NAMES)


def test_unknown_engine_is_a_user_error():
    with pytest.raises(UserError, match="unknown engine 'tensorrt'"):
        engines.get("tensorrt")


@pytest.mark.parametrize("name", engines.ONNX_ENGINE_NAMES)
def test_onnx_engine_matches_reference_raw_outputs(name, tiny, batch, reference_raw):
    """One FP32 graph on every ONNX engine: raw head outputs within the same_graph_fp32 policy."""
    session = load_or_skip(name, tiny.onnx)
    raw = run_each(session, batch[0])
    assert raw.shape == reference_raw.shape == (2, 84, 525)
    result = compare_raw(raw, reference_raw, POLICY.same_graph_fp32, imgsz=IMGSZ)
    assert result.ok, f"{name} vs {REFERENCE}: {result}"
    info = session.describe()
    assert (info["engine"], info["form"], info["threads"]) == (name, "fp32", THREADS)
    assert info["model_path"] == str(tiny.onnx)


def test_torch_matches_its_onnx_export(tiny, batch, reference_raw):
    """The unfused torch module vs ultralytics' (fused) export: raw within FP32 noise, detections all matched."""
    session = load_or_skip("torch", tiny)
    raw = run_each(session, batch[0])
    result = compare_raw(raw, reference_raw, POLICY.same_graph_fp32, imgsz=IMGSZ)
    assert result.ok, f"torch vs {REFERENCE}: {result}"
    images, infos = batch
    dets = compare_detections(postprocess(raw, infos), postprocess(reference_raw, infos), POLICY.cross_graph)
    assert dets.n_ref > 0 and dets.ok, str(dets)
    assert session.describe()["form"] == "torch" and session.threads == THREADS


def test_deepsparse_records_fraction_of_supported_ops(tiny):
    session = load_or_skip("deepsparse", tiny.onnx)
    # SiLU yolov5nu in FP32: every operator has a DeepSparse kernel (FINDINGS 6-7).
    assert session.fraction_of_supported_ops == 1.0
    assert session.describe()["fraction_of_supported_ops"] == 1.0
    assert session.describe()["num_cores"] == THREADS


def test_openvino_runs_fp32_graphs_in_f32(tiny):
    session = load_or_skip("openvino", tiny.onnx)
    info = session.describe()
    assert info["inference_precision_hint"] == "f32"  # not the bf16 default of CPUs that have it
    assert info["inference_num_threads"] == str(THREADS) and info["performance_hint"] == "LATENCY"


def test_torch_is_not_applicable_to_a_bare_onnx(tiny):
    with pytest.raises(EngineUnsupported, match="bare ONNX file has no PyTorch graph"):
        engines.get("torch").load(tiny.onnx, threads=THREADS)


class FormsArtifact:
    """An artifact look-alike with the given forms, all pointing at copies of one file."""

    def __init__(self, source, folder, forms):
        self.paths = {}
        for form in forms:
            self.paths[form] = folder / f"model.{form}.onnx"
            shutil.copy(source, self.paths[form])

    def onnx_path(self, form):
        if form not in self.paths:
            raise FileNotFoundError(form)
        return self.paths[form]


@pytest.mark.parametrize("forms, expected", [
    (("fp32", "deepsparse", "qdq"), {"onnxruntime": "qdq", "openvino": "qdq", "deepsparse": "deepsparse"}),
    (("fp32",), {"onnxruntime": "fp32", "openvino": "fp32", "deepsparse": "fp32"}),
])
def test_each_engine_prefers_the_form_it_is_fast_on(tiny, tmp_path, forms, expected):
    artifact = FormsArtifact(tiny.onnx, tmp_path, forms)
    assert {name: engines.get(name).preferred_form(artifact) for name in expected} == expected


def test_asking_for_a_missing_form_is_unsupported_not_silent(tiny, tmp_path):
    artifact = FormsArtifact(tiny.onnx, tmp_path, ("fp32",))
    with pytest.raises(EngineUnsupported, match="no qdq ONNX form"):
        engines.get("onnxruntime").load(artifact, threads=THREADS, form="qdq")


def test_unavailable_engine_raises_unsupported_with_its_reason(tiny, monkeypatch):
    engine = engines.get("openvino")
    monkeypatch.setattr(engine, "available", lambda: (False, "openvino is not installed"))
    with pytest.raises(EngineUnsupported, match="openvino is not installed"):
        engine.load(tiny.onnx, threads=THREADS)


def _graph_model(path, input_type, input_shape):
    """A one-node ONNX model with the given input (Identity to a rank-3 output is not needed: input checks come first)."""
    x = helper.make_tensor_value_info("images", input_type, input_shape)
    y = helper.make_tensor_value_info("out", input_type, input_shape)
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "g", [x], [y]))
    onnx.save(model, path)
    return path


def _truncated_at_node_boundary(source, path):
    model = onnx.load(source)
    nodes = list(model.graph.node)
    del model.graph.node[len(nodes) // 2:]  # a file cut between two nodes still parses
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("case, message", [
    ("missing", "no such model file"),
    ("half_the_bytes", "not a readable ONNX model"),
    ("cut_between_nodes", "incomplete ONNX graph"),
    ("text", "not a readable ONNX model|not an ONNX model"),
    ("empty", "not an ONNX model"),
    ("rank_2_input", "unsupported input shape 1x3"),
    ("uint8_input", "unsupported input dtype uint8"),
])
def test_bad_model_files_are_one_line_user_errors(tiny, tmp_path, case, message):
    path = tmp_path / f"{case}.onnx"
    if case == "half_the_bytes":
        data = tiny.onnx.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "cut_between_nodes":
        _truncated_at_node_boundary(tiny.onnx, path)
    elif case == "text":
        path.write_text("this is not a model\n" * 50)
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "rank_2_input":
        _graph_model(path, TensorProto.FLOAT, [1, 3])
    elif case == "uint8_input":
        _graph_model(path, TensorProto.UINT8, [1, 3, IMGSZ, IMGSZ])
    for name in engines.ONNX_ENGINE_NAMES:  # the same check fronts every engine
        with pytest.raises(UserError, match=message) as err:
            engines.get(name).load(path, threads=THREADS)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("images, message", [
    (np.zeros((1, 3, IMGSZ, IMGSZ), np.float64), "must be float32"),
    (np.zeros((3, IMGSZ, IMGSZ), np.float32), "do not fit"),
    (np.zeros((1, 3, 128, 128), np.float32), "do not fit"),
    (np.zeros((2, 3, IMGSZ, IMGSZ), np.float32), "do not fit"),
    ([[0.0]], "must be a numpy array"),
])
def test_run_rejects_images_that_do_not_fit_the_session(tiny, images, message):
    session = load_or_skip(REFERENCE, tiny.onnx)
    with pytest.raises(UserError, match=message):
        session.run(images)


def test_static_model_refuses_another_size_or_batch(tiny):
    engine = engines.get(REFERENCE)
    with pytest.raises(UserError, match="fixed at 160x160"):
        engine.load(tiny.onnx, threads=THREADS, imgsz=320)
    with pytest.raises(UserError, match="batch is fixed at 1"):
        engine.load(tiny.onnx, threads=THREADS, batch=2)


@pytest.fixture(scope="session")
def dynamic_onnx(tiny, tmp_path_factory):
    """The tiny export with its input declared dynamic (still valid at 160 px, the size its anchors were traced at)."""
    model = onnx.load(tiny.onnx)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for index, name in ((0, "batch"), (2, "height"), (3, "width")):
        dims[index].Clear()
        dims[index].dim_param = name
    path = tmp_path_factory.mktemp("dynamic") / "dynamic.onnx"
    onnx.save(model, path)
    return path


def test_dynamic_model_needs_an_image_size(dynamic_onnx):
    assert inspect_onnx(dynamic_onnx).static_imgsz is None
    with pytest.raises(UserError, match="dynamic: give the image size"):
        engines.get(REFERENCE).load(dynamic_onnx, threads=THREADS)


@pytest.mark.parametrize("name", engines.ONNX_ENGINE_NAMES)
def test_dynamic_model_runs_at_the_given_size(name, dynamic_onnx, batch, reference_raw):
    session = load_or_skip(name, dynamic_onnx, imgsz=IMGSZ)
    result = compare_raw(run_each(session, batch[0]), reference_raw, POLICY.same_graph_fp32, imgsz=IMGSZ)
    assert result.ok, f"{name} (dynamic input) vs {REFERENCE} (static): {result}"
