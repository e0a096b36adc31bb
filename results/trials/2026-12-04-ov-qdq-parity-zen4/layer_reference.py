"""One convolution of a QDQ graph on ONNX Runtime and OpenVINO (f32) against a float64 reference of the ONNX semantics.

    python layer_reference.py MODEL.qdq.onnx TENSOR [--imgsz 640]

TENSOR is the output of a QuantizeLinear fed by Conv -> Div -> BatchNormalization (the one-shot yolov5n's
pattern after each convolution). Both engines run the two photos shipped with ultralytics with the
convolution's quantized input and TENSOR exposed; the reference dequantizes each engine's own input, runs the
convolution, the Div and the BatchNormalization in float64 and quantizes (round half to even, as ONNX's
QuantizeLinear). Printed: how many output elements of each engine differ from the reference, and how far
those elements' exact values lie from a rounding tie: an engine that implements the layer right differs
only at ties.
Research script of results/trials/2026-12-04-ov-qdq-parity-zen4/ (not part of the library).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper

sys.path.insert(0, str(Path(__file__).parent))
from locate_divergence import Graph, photos, run_both  # noqa: E402


def _dequantized(graph: Graph, dq) -> tuple[np.ndarray, np.ndarray]:
    """(scale, zero point) of a DequantizeLinear, in float64, shaped for a per-output-channel weight."""
    scale, zero = graph.const(dq.input[1]).astype(np.float64), graph.const(dq.input[2]).astype(np.float64)
    return scale.reshape(-1, 1, 1, 1), zero.reshape(-1, 1, 1, 1)


def reference(graph: Graph, target: str):
    """A function from the convolution's quantized input to (TENSOR in float64 rounding, its exact value)."""
    g = graph.producer
    q = g[target]
    bn, div = g[q.input[0]], g[g[q.input[0]].input[0]]
    conv = g[div.input[0]]
    if (bn.op_type, div.op_type, conv.op_type) != ("BatchNormalization", "Div", "Conv"):
        raise SystemExit(f"{target}: not Conv -> Div -> BatchNormalization -> QuantizeLinear")
    dq_x, dq_w = g[conv.input[0]], g[conv.input[1]]
    w_scale, w_zero = _dequantized(graph, dq_w)
    q_w = g.get(dq_w.input[0])
    if q_w is not None and q_w.op_type == "QuantizeLinear":  # weights kept in float and quantized in the graph
        w_int = np.clip(np.rint(graph.const(q_w.input[0]).astype(np.float64) / w_scale) + w_zero, -128, 127)
    else:
        w_int = graph.const(dq_w.input[0]).astype(np.float64)
    weight = torch.from_numpy((w_int - w_zero) * w_scale)
    bias = torch.from_numpy(graph.const(conv.input[2]).astype(np.float64)) if len(conv.input) > 2 else None
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    pads = attrs.get("pads", [0, 0, 0, 0])
    if pads[:2] != pads[2:]:
        raise SystemExit(f"{conv.name}: asymmetric padding {pads}")
    x_scale, x_zero = float(graph.const(dq_x.input[1])), float(graph.const(dq_x.input[2]))
    y_scale, y_zero = float(graph.const(q.input[1])), float(graph.const(q.input[2]))
    divisor = graph.const(div.input[1]).astype(np.float64)
    divisor = divisor.reshape(-1, 1, 1) if divisor.size > 1 else divisor  # per channel or one number
    gamma, beta, mean, var = (graph.const(n).astype(np.float64).reshape(-1, 1, 1) for n in bn.input[1:5])
    eps = next((helper.get_attribute_value(a) for a in bn.attribute if a.name == "epsilon"), 1e-5)
    info = np.iinfo(graph.const(q.input[2]).dtype)

    def compute(x_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy((x_q.astype(np.float64) - x_zero) * x_scale)
        y = torch.nn.functional.conv2d(x, weight, bias, stride=attrs.get("strides", [1, 1]), padding=pads[:2],
                                       dilation=attrs.get("dilations", [1, 1]), groups=attrs.get("group", 1)).numpy()
        y = (y / divisor - mean) / np.sqrt(var + eps) * gamma + beta
        exact = y / y_scale + y_zero
        return np.clip(np.rint(exact), info.min, info.max), exact

    return g[dq_x.input[0]].output[0], compute


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("tensor")
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args(argv)
    graph = Graph(onnx.load(str(args.model)))
    source, compute = reference(graph, args.tensor)
    ort_out, ov_out = run_both(graph, photos(args.imgsz), [source, args.tensor])
    print("input elements that differ:", int((ort_out[0] != ov_out[0]).sum()), "of", ort_out[0].size)
    for label, (x_q, y_q) in (("ORT", ort_out), ("OpenVINO", ov_out)):
        rounded, exact = compute(x_q)
        steps = np.abs(rounded - y_q.astype(np.float64))
        from_tie = np.abs(exact - np.floor(exact) - 0.5)[steps == 1]
        print(f"{label}: vs float64 reference: {int((steps == 1).sum())} one step, {int((steps > 1).sum())} more, "
              f"of {steps.size}; of those one-step, distance of the exact value from a tie: "
              f"max {from_tie.max() if from_tie.size else 0:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
