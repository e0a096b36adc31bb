"""Which Hardswish -> QuantizeLinear boundaries of a QDQ graph have an 8-bit input value whose output lands on a rounding tie.

    python hardswish_ties.py MODEL.qdq.onnx

Between a DequantizeLinear and the next QuantizeLinear a one-shot yolov5n graph computes Hardswish in float
(Mul(x, Clip(x + 3, 0, 6)) / 6). Its input takes only the 256 values of the 8-bit grid, so an input value
whose output / scale lies within 1e-4 of k + 0.5 is rounded up by one engine and down by another (their
float order differs), and every element holding that value moves by one step.
Research script of results/trials/2026-12-04-ov-qdq-parity-zen4/ (not part of the library).
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main(path: str) -> int:
    model = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}

    def const(name):
        return inits[name] if name in inits else numpy_helper.to_array(producer[name].attribute[0].t)

    hits = total = 0
    for q in (n for n in model.graph.node if n.op_type == "QuantizeLinear"):
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
