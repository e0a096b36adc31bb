"""Every engine behind one protocol: same raw outputs on one ultralytics export, same errors for bad input."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from _tiny_yolo import IMGSZ, tiny_yolo
from fixtures import engine_checks
from yolobench import engines
from yolobench.engines.base import EngineUnsupported, inspect_onnx
from yolobench.errors import UserError
from yolobench.parity import POLICY, DetectionPolicy, compare_detections, compare_raw, same_graph_policy
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


def load_or_skip(name, model, pinned_fp32=False, **kwargs):
    """The engine's session; skipped where it does not take the model by design or is not installed, a
    failure where it is installed but broken (unless opted out: fixtures/engine_checks.py)."""
    engine = engines.get_pinned_fp32(name) if pinned_fp32 else engines.get(name)
    return engine_checks.load(engine, model, name, threads=THREADS, **kwargs)


def run_each(session, images):
    return np.concatenate([session.run(images[i:i + 1]) for i in range(len(images))])


@pytest.fixture(scope="session")
def reference_raw(tiny, batch):
    return run_each(load_or_skip(REFERENCE, tiny.onnx), batch[0])


# Engines that run an ONNX file as it is (openvino_nncf quantizes it first, from an artifact's images:
# tests/test_openvino_nncf.py)
FILE_ENGINES = [n for n in engines.onnx_engine_names() if engines.engine_class(n).same_graph]


def test_registry_names_the_engines():
    assert engines.engine_names() == ("torch", "onnxruntime", "deepsparse", "openvino", "openvino_nncf")
    assert [engines.get(n).name for n in engines.engine_names()] == list(engines.engine_names())


def test_unknown_engine_is_a_user_error():
    with pytest.raises(UserError, match="unknown engine 'tensorrt'"):
        engines.get("tensorrt")


@pytest.mark.parametrize("name", FILE_ENGINES)
def test_onnx_engine_matches_reference_raw_outputs(name, tiny, batch, reference_raw):
    """One FP32 graph on every ONNX engine computing in FP32: raw head outputs within the same_graph_fp32 policy."""
    session = load_or_skip(name, tiny.onnx, pinned_fp32=True)
    assert session.reduced_precision is None
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
    # SiLU yolov5nu in FP32: every operator has a DeepSparse kernel (no fallback).
    assert session.fraction_of_supported_ops == 1.0
    assert session.describe()["fraction_of_supported_ops"] == 1.0
    assert session.describe()["num_cores"] == THREADS


@pytest.mark.parametrize("name", FILE_ENGINES)
def test_onnx_engine_at_its_default_agrees_under_the_policy_its_precision_picks(name, tiny, batch, reference_raw):
    """As timed (the user's defaults): raw tensors where the engine computes in FP32, detections where in bf16."""
    session = load_or_skip(name, tiny.onnx)
    raw = run_each(session, batch[0])
    policy = same_graph_policy("fp32", session.reduced_precision, None)
    if session.reduced_precision is None:
        assert policy is POLICY.same_graph_fp32 and compare_raw(raw, reference_raw, policy, imgsz=IMGSZ).ok
    else:
        assert policy is POLICY.bf16 and not compare_raw(raw, reference_raw, POLICY.same_graph_fp32, imgsz=IMGSZ).ok
        images, infos = batch
        dets = compare_detections(postprocess(reference_raw, infos), postprocess(raw, infos), policy)
        assert dets.n_ref > 0 and dets.ok, str(dets)


def openvino_default_precision():
    engine_checks.require("openvino")
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()


def test_openvino_runs_at_its_own_default_precision_and_reports_it(tiny):
    """Not pinned: the precision a user gets (bf16 on CPUs that have it), read back from the compiled model."""
    session = load_or_skip("openvino", tiny.onnx)
    info = session.describe()
    expected = openvino_default_precision()
    assert info["inference_precision_hint"] == expected and info["inference_precision_source"] == "openvino default"
    assert session.reduced_precision == (expected if expected in ("bf16", "f16") else None)
    assert info["inference_num_threads"] == str(THREADS) and info["performance_hint"] == "LATENCY"


def test_openvino_pinned_to_f32_runs_and_reports_f32(tiny):
    session = load_or_skip("openvino", tiny.onnx, pinned_fp32=True)
    info = session.describe()
    assert (info["inference_precision_hint"], info["inference_precision_source"]) == ("f32", "pinned")
    assert session.reduced_precision is None
    assert info["inference_num_threads"] == str(THREADS) and info["performance_hint"] == "LATENCY"


def test_openvino_default_config_does_not_pin_precision_and_pinning_does():
    from yolobench.engines.openvino_engine import OpenVinoEngine

    default = engines.get("openvino")
    assert default.precision is None
    assert default.compile_config(3) == {"INFERENCE_NUM_THREADS": 3, "PERFORMANCE_HINT": "LATENCY"}
    for pinned in (OpenVinoEngine(precision="f32"), engines.get_pinned_fp32("openvino"),
                   engines.get_setting("openvino-f32")):
        assert pinned.compile_config(3) == {"INFERENCE_NUM_THREADS": 3, "PERFORMANCE_HINT": "LATENCY",
                                            "INFERENCE_PRECISION_HINT": "f32"}
    assert engines.get_setting("openvino").precision is None
    assert engines.get_pinned_fp32("onnxruntime").name == "onnxruntime"  # FP32 as it is: nothing to pin
    with pytest.raises(UserError, match="openvino precision must be one of f32, bf16, f16"):
        OpenVinoEngine(precision="fp32")


def test_onnxruntime_nospin_setting_turns_spinning_off_and_says_so(tiny):
    engine_checks.require("onnxruntime")
    default, nospin = engines.get_setting("onnxruntime"), engines.get_setting("onnxruntime-nospin")
    with pytest.raises(RuntimeError, match="allow_spinning"):  # no entry at all: ONNX Runtime's default (spin)
        default.session_options(2).get_session_config_entry("session.intra_op.allow_spinning")
    assert nospin.session_options(2).get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert nospin.session_options(2).intra_op_num_threads == 2
    session = nospin.load(tiny.onnx, threads=1)
    assert session.describe()["intra_op_spinning"] is False
    assert engines.get("onnxruntime").load(tiny.onnx, threads=1).describe()["intra_op_spinning"] is True


def test_unknown_engine_setting_names_the_choices():
    with pytest.raises(UserError, match="engine 'onnxruntime' has no setting 'fast': choose from onnxruntime, "
                                        "onnxruntime-nospin"):
        engines.get_setting("onnxruntime-fast")
    with pytest.raises(UserError, match="choose from openvino, openvino-f32"):
        engines.get_setting("openvino-f16")
    with pytest.raises(UserError, match="unknown engine 'tvm'"):
        engines.get_setting("tvm")


class FakeOvType:
    def __init__(self, name):
        self.name = name

    def get_type_name(self):
        return self.name


class FakeCompiled:
    """A compiled model look-alike reporting the given properties (what OpenVINO's compiled model reads back)."""

    def __init__(self, **properties):
        self.properties = properties

    def create_infer_request(self):
        return None

    def get_property(self, key):
        return self.properties[key]


@pytest.mark.parametrize("effective, pinned, reduced, source", [
    (FakeOvType("bf16"), None, "bf16", "openvino default"),
    (FakeOvType("f32"), None, None, "openvino default"),
    (FakeOvType("f32"), "f32", None, "pinned"),
])
def test_openvino_session_reports_the_compiled_models_precision(effective, pinned, reduced, source):
    """The effective precision is the compiled model's, not what was asked for (nothing asked: the default)."""
    from yolobench.engines.base import Geometry
    from yolobench.engines.openvino_engine import OpenVinoSession

    compiled = FakeCompiled(INFERENCE_PRECISION_HINT=effective, PERFORMANCE_HINT="LATENCY")
    session = OpenVinoSession(compiled, pinned_precision=pinned, engine="openvino", engine_version="x", form="fp32",
                              model_path=None, threads=1, geometry=Geometry(1, (IMGSZ, IMGSZ)))
    info = session.describe()
    assert (info["inference_precision_hint"], info["inference_precision_source"]) == (effective.name, source)
    assert session.reduced_precision == reduced
    assert same_graph_policy("fp32", session.reduced_precision) is (
        POLICY.bf16 if reduced else POLICY.same_graph_fp32)
    assert isinstance(same_graph_policy("qdq", session.reduced_precision), DetectionPolicy) == bool(reduced)


def test_openvino_alone_is_judged_by_detections_on_quantized_graphs():
    """OpenVINO fuses the float steps between quantization nodes into its integer kernels (rounding ties
    fall elsewhere): its quantized same-graph pairs take detections; ONNX Runtime vs DeepSparse stay raw."""
    assert not engines.int8_raw_parity("onnxruntime", "openvino-f32")
    assert not engines.int8_raw_parity("onnxruntime", "openvino")
    assert engines.int8_raw_parity("onnxruntime", "deepsparse")
    assert same_graph_policy("qdq", None, None, int8_raw=engines.int8_raw_parity("onnxruntime", "openvino-f32")) \
        is POLICY.int8_kernels
    assert same_graph_policy("fp32", None, None, int8_raw=engines.int8_raw_parity("onnxruntime", "openvino-f32")) \
        is POLICY.same_graph_fp32


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
    for name in engines.onnx_engine_names():  # the same check fronts every engine
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


@pytest.mark.parametrize("name", FILE_ENGINES)
def test_dynamic_model_runs_at_the_given_size(name, dynamic_onnx, batch, reference_raw):
    session = load_or_skip(name, dynamic_onnx, pinned_fp32=True, imgsz=IMGSZ)  # the reshape, checked in FP32
    result = compare_raw(run_each(session, batch[0]), reference_raw, POLICY.same_graph_fp32, imgsz=IMGSZ)
    assert result.ok, f"{name} (dynamic input) vs {REFERENCE} (static): {result}"


# --- a broken engine fails; only an explicit opt-out or a missing install skips ---------------------


def _broken_import(self):
    raise ImportError("libonnxruntime.so.1: cannot open shared object file")


def _parity_session(name, model):
    from test_parity_variants import _session

    return _session(name, model, None, IMGSZ)


def outcome(call, *args) -> tuple[str, str]:
    """("skip" | "fail" | "ran", message): what pytest would make of the call (a skip here would skip this test)."""
    try:
        call(*args)
    except pytest.skip.Exception as err:
        return "skip", str(err)
    except pytest.fail.Exception as err:
        return "fail", str(err)
    return "ran", ""


@pytest.mark.parametrize("load", [load_or_skip, _parity_session], ids=["engine-tests", "parity-tests"])
def test_an_installed_engine_that_cannot_run_fails_not_skips(tiny, monkeypatch, load):
    """Skipping would let the suite pass with no parity for that engine at all."""
    from yolobench.engines.onnxruntime_engine import OnnxRuntimeEngine

    monkeypatch.delenv("YOLOBENCH_SKIP_ENGINES", raising=False)
    monkeypatch.setattr(OnnxRuntimeEngine, "_import", _broken_import)
    kind, message = outcome(load, "onnxruntime", tiny.onnx)
    assert kind == "fail" and "onnxruntime is installed but cannot run here" in message, message
    assert "ImportError" in message and "YOLOBENCH_SKIP_ENGINES" in message  # how to opt out, if it must
    # the machine says it cannot run it: a skip that names the opt-out
    monkeypatch.setenv("YOLOBENCH_SKIP_ENGINES", "deepsparse, onnxruntime")
    kind, message = outcome(load, "onnxruntime", tiny.onnx)
    assert kind == "skip" and "YOLOBENCH_SKIP_ENGINES" in message and "ImportError" in message, message
    # not installed at all (an optional engine): a skip that says so
    monkeypatch.delenv("YOLOBENCH_SKIP_ENGINES")
    monkeypatch.setattr(OnnxRuntimeEngine, "installed", lambda self: False, raising=False)
    kind, message = outcome(load, "onnxruntime", tiny.onnx)
    assert kind == "skip" and "onnxruntime is not installed" in message, message


def test_an_engine_that_does_not_take_the_model_by_design_skips_with_its_reason(tiny, monkeypatch):
    monkeypatch.delenv("YOLOBENCH_SKIP_ENGINES", raising=False)
    kind, message = outcome(load_or_skip, "torch", tiny.onnx)
    assert kind == "skip" and "no PyTorch graph" in message, message


def test_an_engine_that_fails_to_compile_a_model_fails(tiny, monkeypatch):
    from yolobench.engines.onnxruntime_engine import OnnxRuntimeEngine

    monkeypatch.delenv("YOLOBENCH_SKIP_ENGINES", raising=False)

    def refuses(self, spec, form, geometry, threads):
        raise EngineUnsupported(f"onnxruntime cannot load {spec.path.name}: [ONNXRuntimeError] : 10 : INVALID_GRAPH")

    monkeypatch.setattr(OnnxRuntimeEngine, "_load_onnx", refuses)
    kind, message = outcome(load_or_skip, "onnxruntime", tiny.onnx)
    assert kind == "fail" and "INVALID_GRAPH" in message, message
