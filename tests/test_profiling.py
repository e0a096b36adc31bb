"""Per-layer profiles: block mapping, the ONNX facts beside each block, and the engines' profilers.

Times are never asserted (they are the machine's); what is asserted is that every layer an engine
reports lands in a block, that blocks add up to the cell's total, and that MACs and sparsity read
from the ONNX file are right (checked against the PyTorch module it was exported from).
"""

from __future__ import annotations

import numpy as np
import pytest

from _tiny_yolo import IMGSZ, tiny_yolo
from yolobench import engines, profiling


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_yolo(tmp_path_factory.getbasetemp() / "tiny_yolo")


@pytest.mark.parametrize("name, block", [
    ("/model.2/cv1/conv/Conv", "model.2"), ("/model/model.24/cv3.0/cv3.0.2/Conv_output_0", "model.24"),
    ("model.10.conv.weight", "model.10"), ("Multiply_22247", "other"), ("shuffle_0", "other"), (None, "other"),
    ("/model.1x/Conv", "other")])
def test_block_of(name, block):
    assert profiling.block_of(name) == block


def test_macs_are_those_of_the_pytorch_convolutions(tiny):
    import torch

    macs = {}

    def hook(name):
        def record(module, _inputs, output):
            k = module.weight.shape
            macs[name] = output.numel() * k[1] * k[2] * k[3]
        return record

    module = tiny.load_torch()
    handles = [m.register_forward_hook(hook(n)) for n, m in module.named_modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        module(torch.zeros(1, 3, IMGSZ, IMGSZ))
    for h in handles:
        h.remove()
    facts = profiling.onnx_block_facts(tiny.onnx)
    by_block: dict[str, float] = {}
    for name, value in macs.items():
        block = profiling.block_of(name)
        by_block[block] = by_block.get(block, 0) + value
    assert {b: f.macs for b, f in facts.items()} == pytest.approx(by_block)
    assert all(f.sparsity is not None and f.sparsity < 0.01 for f in facts.values())  # random init: dense


def test_sparsity_counts_zero_weights(tiny, tmp_path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(tiny.onnx))
    target = next(n for n in model.graph.node if n.op_type == "Conv" and profiling.block_of(n.name) == "model.2")
    init = next(t for t in model.graph.initializer if t.name == target.input[1])
    weights = numpy_helper.to_array(init).copy()
    weights.reshape(-1)[: weights.size // 2] = 0
    init.CopyFrom(numpy_helper.from_array(weights, init.name))
    path = tmp_path / "half.onnx"
    onnx.save(model, str(path))
    before, after = profiling.onnx_block_facts(tiny.onnx)["model.2"], profiling.onnx_block_facts(path)["model.2"]
    assert after.zero_weights - before.zero_weights == weights.size // 2 - int(np.count_nonzero(
        numpy_helper.to_array(next(t for t in onnx.load(str(tiny.onnx)).graph.initializer if t.name == init.name))
        .reshape(-1)[: weights.size // 2] == 0))
    assert after.weights == before.weights and after.macs == before.macs


class _Named:
    """The tiny model as a cell's artifact."""

    def __init__(self, tiny):
        self.tiny = tiny

    def onnx_path(self, form="fp32", imgsz=None):
        return self.tiny.onnx_path(form, imgsz)


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino", "deepsparse"])
def test_an_engines_profile_maps_onto_blocks(tiny, engine):
    ok, reason = engines.get(engine).available()
    if not ok:
        pytest.skip(reason)
    cell = profiling.profile_cell(_Named(tiny), "tiny", engine, imgsz=IMGSZ, threads=1, runs=2, warmup=1)
    blocks = cell.blocks()
    assert cell.layers and all(layer.ms >= 0 for layer in cell.layers)
    assert sum(b.ms for b in blocks.values()) == pytest.approx(cell.total_ms)
    named = {b for b in blocks if b != profiling.OTHER}
    assert {"model.0", "model.24"} <= named  # the first block and the Detect head are found by name
    text = profiling.format_profiles([cell])
    assert "| model.0 |" in text and f"tiny-{engine}-{IMGSZ} ms" in text


def test_an_engine_without_a_profiler_says_so(tiny):
    with pytest.raises(engines.EngineUnsupported, match="no per-layer profiler"):
        engines.get("torch").layer_profile(_Named(tiny), imgsz=IMGSZ)
