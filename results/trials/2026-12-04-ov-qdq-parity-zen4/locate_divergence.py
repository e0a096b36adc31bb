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
from onnx import helper

from yolobench.processing import default_images, load_images, preprocess


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in model.graph.initializer}


def expose_quantized(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy whose outputs are the head output(s) and every QuantizeLinear output, in graph order."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    inits = _initializers(model)
    names = []
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear" or len(node.input) < 3 or node.input[2] not in inits:
            continue
        elem = inits[node.input[2]].data_type  # the zero point's type is the output's (INT8 or UINT8)
        exposed.graph.output.append(helper.make_tensor_value_info(node.output[0], elem, None))
        names.append(node.output[0])
    return exposed, names


def _run_ort(path: Path, batches: list[np.ndarray], names: list[str]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runs = [session.run(names, {session.get_inputs()[0].name: batch}) for batch in batches]
    return [np.concatenate(tensors) for tensors in zip(*runs)]


def _run_ov(path: Path, batches: list[np.ndarray], names: list[str]) -> list[np.ndarray]:
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    runs = []
    for batch in batches:
        result = compiled(batch)
        by_name = {}
        for port in compiled.outputs:
            for name in port.get_names():
                by_name[name] = np.asarray(result[port])
        runs.append([by_name[n] for n in names])
    return [np.concatenate(tensors) for tensors in zip(*runs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--images", nargs="*", help="image files (default: the photos shipped with ultralytics)")
    parser.add_argument("--limit", type=int, default=40, help="tensors to print after the first that differs")
    args = parser.parse_args(argv)

    model = onnx.load(str(args.model))
    head = [o.name for o in model.graph.output]
    exposed, quantized = expose_quantized(model)
    images = [image for _, image in load_images(args.images or default_images())]
    batch = [np.ascontiguousarray(preprocess([image], args.imgsz)[0], dtype=np.float32) for image in images]

    plain_ort = _run_ort(args.model, batch, head)[0]
    plain_ov = _run_ov(args.model, batch, head)[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "exposed.onnx"
        onnx.save(exposed, str(path))
        a = _run_ort(path, batch, head + quantized)
        b = _run_ov(path, batch, head + quantized)

    print(f"{args.model} at {args.imgsz} px, {len(images)} images, {len(quantized)} quantized tensors")
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
