"""Where two engines part ways on one quantized (QDQ) ONNX graph: every QuantizeLinear output, in graph order.

    python locate_divergence.py MODEL.qdq.onnx --imgsz 640 [--images A.jpg B.jpg ...] [--limit 40]

Each QuantizeLinear output (an 8-bit tensor) becomes a graph output; ONNX Runtime and OpenVINO pinned to
f32 (as the parity test's `openvino-f32` session) run the same images; for each such tensor the script
prints how many elements differ by one quantization step and by more, and the largest difference in
steps, then the head output's largest |difference|. Engines that agree differ by one step at values on a
rounding boundary, and such a step may grow a little downstream; the first tensor where many elements
differ by several steps is where one engine computes something else.

Exposing a tensor can change how an engine fuses the graph around it, so the last line also compares the
head output with nothing exposed: if the divergence disappears once tensors are exposed, it lives in a fusion.
Research script of results/trials/2026-12-04-ov-qdq-parity-zen4/ (not part of the library).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
from onnx import helper, numpy_helper

from yolobench.processing import default_images, load_images, preprocess


class Graph:
    """Lookups in one ONNX graph: the node that produces a tensor, and a constant's value."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output}

    def const(self, name: str) -> np.ndarray:
        """An initializer or a Constant node's value."""
        return self.inits[name] if name in self.inits else numpy_helper.to_array(self.producer[name].attribute[0].t)

    def quantized_type(self, tensor: str) -> int:
        """The element type of a QuantizeLinear output: its zero point's (INT8 or UINT8)."""
        return helper.np_dtype_to_tensor_dtype(self.const(self.producer[tensor].input[2]).dtype)


def expose(graph: Graph, tensors: list[str]) -> onnx.ModelProto:
    """A copy of the model whose outputs are its own plus these QuantizeLinear outputs."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(graph.model)
    for name in tensors:
        exposed.graph.output.append(helper.make_tensor_value_info(name, graph.quantized_type(name), None))
    return exposed


def photos(imgsz: int, paths: list[str] | None = None) -> list[np.ndarray]:
    """One batch-1 input per image (default: the photos shipped with ultralytics), as the engines take it."""
    images = [image for _, image in load_images(paths or default_images())]
    return [np.ascontiguousarray(preprocess([image], imgsz)[0], dtype=np.float32) for image in images]


def run_ort(path: Path, batches: list[np.ndarray], names: list[str]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runs = [session.run(names, {session.get_inputs()[0].name: batch}) for batch in batches]
    return [np.concatenate(tensors) for tensors in zip(*runs)]


def run_ov(path: Path, batches: list[np.ndarray], names: list[str]) -> list[np.ndarray]:
    """OpenVINO pinned to f32, as the parity test's ``openvino-f32`` session."""
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    runs = []
    for batch in batches:
        result = compiled(batch)
        by_name = {name: np.asarray(result[port]) for port in compiled.outputs for name in port.get_names()}
        runs.append([by_name[n] for n in names])
    return [np.concatenate(tensors) for tensors in zip(*runs)]


def run_both(graph: Graph, batches: list[np.ndarray], names: list[str]) -> tuple[list, list]:
    """``names`` (QuantizeLinear outputs, or the model's own outputs) on ONNX Runtime and on OpenVINO."""
    own = {o.name for o in graph.model.graph.output}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "exposed.onnx"
        onnx.save(expose(graph, [n for n in names if n not in own]), str(path))
        return run_ort(path, batches, names), run_ov(path, batches, names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--images", nargs="*", help="image files (default: the photos shipped with ultralytics)")
    parser.add_argument("--limit", type=int, default=40, help="tensors to print after the first that differs")
    args = parser.parse_args(argv)

    graph = Graph(onnx.load(str(args.model)))
    head = [o.name for o in graph.model.graph.output]
    quantized = [n.output[0] for n in graph.model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) == 3]
    batch = photos(args.imgsz, args.images)

    plain_ort, plain_ov = run_ort(args.model, batch, head)[0], run_ov(args.model, batch, head)[0]
    a, b = run_both(graph, batch, head + quantized)
    print(f"{args.model} at {args.imgsz} px, {len(batch)} images, {len(quantized)} quantized tensors")
    print("| # | tensor | elements | 1 step | > 1 step | max steps |")
    print("|---:|---|---:|---:|---:|---:|")
    printed, first = 0, None
    for i, (name, x, y) in enumerate(zip(quantized, a[len(head):], b[len(head):])):
        steps = np.abs(x.astype(np.int32) - y.astype(np.int32))
        if first is None and steps.any():
            first = i
        if first is not None and printed < args.limit:
            print(f"| {i} | {name} | {steps.size} | {int((steps == 1).sum())} | {int((steps > 1).sum())} | "
                  f"{int(steps.max())} |")
            printed += 1
    print(f"head output, tensors exposed: max |ORT - OpenVINO| {float(np.abs(a[0] - b[0]).max()):.4g}")
    print(f"head output, nothing exposed: max |ORT - OpenVINO| {float(np.abs(plain_ort - plain_ov).max()):.4g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
