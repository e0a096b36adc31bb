"""A copy of an ONNX model that does a chosen share more work, which no engine can fold away.

The A/B comparison must find a real slowdown of about 10% (the power study in results/ab/). A slower
model made by sleeping or by a parameter no engine sees would test nothing; this one computes more:
some convolutions are computed a second time, by a second Conv on the same input whose weights differ
in one stored value (so no common-subexpression pass merges the two), and the second result reaches the
model's output through its mean, times 1e-9, added to the output (so no dead-code pass removes it and
the detections do not change). The duplicated convolutions are picked so that their MACs add up to the
asked share of the model's convolution MACs (``yolobench.profiling.conv_facts``).

Float graphs and QDQ graphs: in a QDQ graph the duplicate reads the same dequantized input, its weights
come through a DequantizeLinear of the same integer weights at a scale 1e-4 larger, and its output is
quantized and dequantized again, so that engines that fuse DQ -> Conv -> Q run it as an integer
convolution, as they run the original. Sparsity is unchanged (the weights are the same values).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from yolobench.profiling import conv_facts

EPS = 1e-9  # the duplicate's mean enters the output at this weight: far below any tolerance


def _pick(convs: list[tuple[int, float]], share: float, total: float) -> list[int]:
    """Node indices whose MACs add up to ``share`` of ``total`` as closely as a greedy pass allows:
    the largest convolutions first, skipping any that would overshoot by more than a quarter of the share."""
    target, chosen, sum_ = share * total, [], 0.0
    for index, macs in sorted(convs, key=lambda c: -c[1]):
        if macs <= 0 or sum_ + macs > target * 1.25:
            continue
        chosen.append(index)
        sum_ += macs
        if sum_ >= target * 0.95:
            break
    return sorted(chosen)


def slower_copy(src: str | Path, dst: str | Path, share: float = 0.10) -> float:
    """Write ``src`` with about ``share`` more convolution MACs to ``dst``; the extra share achieved."""
    model = onnx.load(str(src))
    facts = conv_facts(model)
    total = sum(f[4] for f in facts)
    macs = {f[0]: f[4] for f in facts}
    chosen = _pick([(f[0], f[4]) for f in facts], share, total)
    if not chosen:
        raise ValueError(f"{src}: no convolution fits a share of {share}")
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    new_nodes, terms = [], []
    for n, index in enumerate(chosen):
        conv = graph.node[index]
        weight_name = conv.input[1]
        prefix = f"yolobench_slower_{n}"
        if weight_name in inits:  # float graph: a copy of the weights with one value changed
            w = numpy_helper.to_array(inits[weight_name]).copy()
            flat = w.reshape(-1)
            k = int(np.flatnonzero(flat)[0]) if np.count_nonzero(flat) else 0
            flat[k] = flat[k] * np.float32(1.0001) + np.float32(1e-6)
            graph.initializer.append(numpy_helper.from_array(w, f"{prefix}_w"))
            weight = f"{prefix}_w"
        else:  # QDQ: the same integer weights through a DequantizeLinear with a slightly larger scale
            dq = producers[weight_name]
            scale = numpy_helper.to_array(inits[dq.input[1]]) * np.float32(1.0001)
            graph.initializer.append(numpy_helper.from_array(scale.astype(np.float32), f"{prefix}_wscale"))
            new_nodes.append(helper.make_node("DequantizeLinear", [dq.input[0], f"{prefix}_wscale", *dq.input[2:]],
                                              [f"{prefix}_w"], name=f"{prefix}_wdq", **_axis(dq)))
            weight = f"{prefix}_w"
        extra = list(conv.input)
        extra[1] = weight
        new_nodes.append(helper.make_node(conv.op_type, extra, [f"{prefix}_y"], name=f"{prefix}_conv",
                                          **{a.name: helper.get_attribute_value(a) for a in conv.attribute}))
        out = f"{prefix}_y"
        source = producers.get(conv.input[0])
        if source is not None and source.op_type == "DequantizeLinear":  # quantize it again, as the original is
            new_nodes.append(helper.make_node("QuantizeLinear", [out, *source.input[1:]], [f"{prefix}_q"],
                                              name=f"{prefix}_q", **_axis(source)))
            new_nodes.append(helper.make_node("DequantizeLinear", [f"{prefix}_q", *source.input[1:]],
                                              [f"{prefix}_dq"], name=f"{prefix}_dq", **_axis(source)))
            out = f"{prefix}_dq"
        new_nodes.append(helper.make_node("ReduceMean", [out], [f"{prefix}_mean"], name=f"{prefix}_mean", keepdims=0))
        terms.append(f"{prefix}_mean")
    graph.initializer.append(numpy_helper.from_array(np.array(EPS, np.float32), "yolobench_slower_eps"))
    total_term = terms[0]
    for n, term in enumerate(terms[1:]):
        new_nodes.append(helper.make_node("Add", [total_term, term], [f"yolobench_slower_sum{n}"]))
        total_term = f"yolobench_slower_sum{n}"
    new_nodes.append(helper.make_node("Mul", [total_term, "yolobench_slower_eps"], ["yolobench_slower_tiny"]))
    output = graph.output[0].name
    for node in graph.node:  # the original output now feeds the final Add
        node.output[:] = [o if o != output else "yolobench_slower_original" for o in node.output]
        node.input[:] = [i if i != output else "yolobench_slower_original" for i in node.input]
    new_nodes.append(helper.make_node("Add", ["yolobench_slower_original", "yolobench_slower_tiny"], [output]))
    graph.node.extend(new_nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return sum(macs[i] for i in chosen) / total


def _axis(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"}
