"""Double quantization (Q -> DQ -> Q -> DQ) in exported graphs: detection, and why it matters.

ONNX Runtime merges such chains (its DoubleQDQPairsRemover), so a graph containing one computes a
different function on ORT than on OpenVINO, DeepSparse and PyTorch. The recipes avoid them
(`exclude_module_types: [Hardswish]` in recipes/pruned_quant.yaml) and the builder refuses exports
that still contain one. The ORT test below fails when ORT stops merging, which is when that rule
could be revisited.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from yolobench.modelio import double_quantizations


def _chain_model(scales: tuple[float, ...]) -> onnx.ModelProto:
    """x -> (Q(scale) -> DQ) for each scale -> y, int8 with zero point 0."""
    nodes, inits, prev = [], [], "x"
    for i, scale in enumerate(scales):
        inits += [helper.make_tensor(f"s{i}", TensorProto.FLOAT, [], [scale]),
                  helper.make_tensor(f"z{i}", TensorProto.INT8, [], [0])]
        out = "y" if i == len(scales) - 1 else f"f{i}"
        nodes += [helper.make_node("QuantizeLinear", [prev, f"s{i}", f"z{i}"], [f"q{i}"], name=f"Q{i}"),
                  helper.make_node("DequantizeLinear", [f"q{i}", f"s{i}", f"z{i}"], [out], name=f"DQ{i}")]
        prev = out
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_double_quantization_is_found():
    assert double_quantizations(_chain_model((0.1, 0.07))) == [("Q0", "Q1")]
    assert double_quantizations(_chain_model((0.1, 0.07, 0.05))) == [("Q0", "Q1"), ("Q1", "Q2")]


def test_single_quantization_is_not_flagged():
    assert double_quantizations(_chain_model((0.1,))) == []


def test_onnxruntime_still_merges_double_quantization():
    """Default-optimized ORT differs from unoptimized ORT on a double chain (the reason for the rule)."""
    import onnxruntime as ort

    data = _chain_model((0.1, 0.07)).SerializeToString()
    x = np.linspace(-3.0, 3.0, 64, dtype=np.float32).reshape(1, 64)

    def run(level):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    exact = run(ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    twice = np.clip(np.round(np.clip(np.round(x / 0.1), -128, 127) * 0.1 / 0.07), -128, 127) * 0.07
    np.testing.assert_allclose(exact, twice, atol=1e-6)  # unoptimized ORT quantizes twice, like torch
    default = run(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    assert np.abs(default - exact).max() > 0.01, "ORT no longer merges Q->DQ->Q->DQ chains"
