"""openvino_nncf: OpenVINO on the model NNCF quantized from an artifact's FP32 graph (tiny model, tiny data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from _tiny_yolo import tiny_yolo
from yolobench import engines
from yolobench.engines import EngineUnsupported
from yolobench.processing import default_images, load_images, preprocess

pytest.importorskip("nncf")
from yolobench.engines import openvino_nncf_engine as nncf_engine  # noqa: E402


@dataclass
class TinyArtifact:
    """The tiny model as a built FP32 artifact with a dataset, as the engine needs one."""

    onnx: Path
    data_yaml: Path
    quantized: bool = False
    imgsz: int = 160
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.meta = {"dataset": {"data_yaml": str(self.data_yaml)}}

    def onnx_path(self, form="fp32", imgsz=None):
        if form != "fp32":
            raise FileNotFoundError(form)
        return self.onnx


@pytest.fixture(scope="module")
def artifact(tiny_home, tmp_path_factory):
    from yolobench.data.builtin import builtin_dataset

    data_yaml = builtin_dataset(train=16, val=4, imgsz=160)
    return TinyArtifact(tiny_yolo(tmp_path_factory.mktemp("tiny")).onnx, data_yaml)


def test_it_quantizes_once_then_loads_the_cached_int8_model(artifact, monkeypatch):
    engine = engines.get("openvino_nncf")
    session = engine.load(artifact, threads=1)
    info = session.describe()
    assert info["form"] == nncf_engine.FORM_NNCF and "nncf" in info["engine_version"]
    assert Path(session.model_path).suffix == ".bin" and Path(session.model_path).stat().st_size > 0
    images, _ = preprocess([image for _, image in load_images(default_images())[:1]], 160)
    assert session.run(images).shape == (1, 84, 525)
    made = nncf_engine.cached_ir(Path(artifact.onnx), (160, 160), nncf_engine.calibration_files(artifact))
    fake_calls = []
    monkeypatch.setattr(nncf_engine, "quantize_ir", lambda *a: fake_calls.append(a))
    again = engine.load(artifact, threads=1)
    assert not fake_calls and Path(again.model_path) == made.with_suffix(".bin")
    # a quantized model: the quantization is visible in the compiled model's runtime graph
    precisions = {op.get_rt_info()["runtimePrecision"].astype(str) for op in session._compiled.get_runtime_model().get_ops()
                  if "runtimePrecision" in op.get_rt_info()}
    assert {"i8", "u8", "I8", "U8"} & precisions, precisions


def test_it_refuses_int8_variants_and_files_without_calibration_images(artifact):
    engine = engines.get("openvino_nncf")
    with pytest.raises(EngineUnsupported, match="quantized already"):
        engine.load(TinyArtifact(artifact.onnx, artifact.data_yaml, quantized=True), threads=1)
    with pytest.raises(EngineUnsupported, match="training images"):
        engine.load(artifact.onnx, threads=1)


def test_it_is_never_paired_on_raw_tensors_and_skips_int8_variants_in_the_matrix():
    from yolobench import bench

    assert all("openvino_nncf" not in pair for form in ("fp32", "qdq", "deepsparse")
               for pair in engines.same_graph_pairs(form))
    assert bench.untimed_reason("oneshot", "openvino_nncf") and bench.untimed_reason("dense", "openvino_nncf") is None


def test_its_per_layer_profile_is_of_the_int8_model(artifact):
    layers, form = engines.get("openvino_nncf").layer_profile(artifact, imgsz=160, threads=1, runs=2, warmup=1)
    assert form == nncf_engine.FORM_NNCF and layers
    assert any("I8" in layer.ran_as or "U8" in layer.ran_as or "i8" in layer.ran_as for layer in layers)
    assert any(layer.onnx_node.startswith("/model.") for layer in layers)  # mapped back to the ONNX nodes
