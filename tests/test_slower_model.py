"""The A/B power study's slower model: about 10% more convolution work, same outputs, nothing foldable."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from _slower_model import slower_copy
from _tiny_yolo import tiny_yolo
from yolobench.profiling import conv_facts


def _run(path, x):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _qdq(src, dst):
    """A QDQ graph of ``src`` as quantizers export one: int8 weights behind DequantizeLinear, each
    convolution's input quantized and dequantized (per-tensor scales; the values do not matter here)."""
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    nodes = []
    for n, node in enumerate(graph.node):
        if node.op_type == "Conv" and node.input[1] in inits:
            w = numpy_helper.to_array(inits[node.input[1]])
            scale = np.float32(np.abs(w).max() / 127 or 1.0)
            graph.initializer.extend([numpy_helper.from_array(np.round(w / scale).astype(np.int8), f"wq{n}"),
                                      numpy_helper.from_array(np.array(scale), f"ws{n}"),
                                      numpy_helper.from_array(np.array(0.05, np.float32), f"xs{n}"),
                                      numpy_helper.from_array(np.array(0, np.int8), f"xz{n}")])
            nodes += [helper.make_node("DequantizeLinear", [f"wq{n}", f"ws{n}"], [f"w{n}"]),
                      helper.make_node("QuantizeLinear", [node.input[0], f"xs{n}", f"xz{n}"], [f"xq{n}"]),
                      helper.make_node("DequantizeLinear", [f"xq{n}", f"xs{n}", f"xz{n}"], [f"x{n}"])]
            node.input[0], node.input[1] = f"x{n}", f"w{n}"
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(dst))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("slower")
    tiny = tiny_yolo(root / "tiny")
    x = np.random.default_rng(0).random((1, 3, tiny.imgsz, tiny.imgsz), dtype=np.float32)
    qdq = root / "qdq.onnx"
    _qdq(tiny.onnx, qdq)
    return {"fp32": tiny.onnx, "qdq": qdq}, x, root


@pytest.mark.parametrize("form", ["fp32", "qdq"])
def test_the_copy_does_about_ten_percent_more_convolution_work_and_computes_the_same(models, form):
    paths, x, root = models
    src, dst = paths[form], root / f"slower-{form}.onnx"
    share = slower_copy(src, dst, 0.10)
    assert 0.09 <= share <= 0.125
    before = sum(f[4] for f in conv_facts(onnx.load(str(src))))
    after = sum(f[4] for f in conv_facts(onnx.load(str(dst))))
    assert after / before == pytest.approx(1 + share, rel=1e-6)  # the duplicates are real convolutions
    a, b = _run(src, x), _run(dst, x)
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-4


def test_the_duplicates_cannot_be_merged_with_their_originals(models):
    """Each duplicate's weights differ from its original's: a common-subexpression pass cannot fold it."""
    paths, _, root = models
    dst = root / "slower-fp32-check.onnx"
    slower_copy(paths["fp32"], dst, 0.10)
    model = onnx.load(str(dst))
    facts = {f[1].name: f[2] for f in conv_facts(model)}
    duplicates = [name for name in facts if name.startswith("yolobench_slower_")]
    assert duplicates
    for name in duplicates:
        node = next(n for n in model.graph.node if n.name == name)
        original = next(n for n in model.graph.node
                        if n.op_type == node.op_type and n.input[0] == node.input[0] and n.name != name)
        assert not np.array_equal(facts[name], facts[original.name])
