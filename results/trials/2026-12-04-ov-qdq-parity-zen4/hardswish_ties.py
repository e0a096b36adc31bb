"""Which Hardswish -> QuantizeLinear boundaries of a QDQ graph have an 8-bit input value whose output lands on a rounding tie.

    python hardswish_ties.py MODEL.qdq.onnx

Between a DequantizeLinear and the next QuantizeLinear a one-shot yolov5n graph computes Hardswish in float
(Mul(x, Clip(x + 3, 0, 6)) / 6). Its input takes only the 256 values of the 8-bit grid, so an input value
whose output / scale lies within 1e-4 of k + 0.5 can be rounded up by one engine and down by another if
their float order differs, moving every element that holds that value by one step.
Research script of results/trials/2026-12-04-ov-qdq-parity-zen4/ (not part of the library).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).parent))
from locate_divergence import Graph  # noqa: E402


def main(path: str) -> int:
    graph = Graph(onnx.load(path))
    producer, const = graph.producer, graph.const

    hits = total = 0
    for q in (n for n in graph.model.graph.node if n.op_type == "QuantizeLinear"):
        div = producer.get(q.input[0])
        mul = producer.get(div.input[0]) if div is not None and div.op_type == "Div" else None
        dq = producer.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        info = np.iinfo(const(dq.input[2]).dtype)
        grid = np.arange(info.min, info.max + 1)
        x = ((grid - int(const(dq.input[2]))).astype(np.float32) * np.float32(const(dq.input[1])))
        y = x * np.clip(x + np.float32(3), 0, 6).astype(np.float32) / np.float32(const(div.input[1]))
        v = y.astype(np.float64) / float(const(q.input[1]))
        near = int((np.abs(v - np.floor(v) - 0.5) < 1e-4).sum())
        total += 1
        hits += near > 0
        if near:
            print(f"{q.name}: {near} of {grid.size} input values within 1e-4 of a rounding tie")
    print(f"{hits} of {total} Hardswish -> QuantizeLinear boundaries have an input value on a tie")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
