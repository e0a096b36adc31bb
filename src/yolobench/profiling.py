"""Where the time goes: an engine's own per-layer timing, mapped onto the model's blocks.

``yolobench profile`` asks an engine for its per-layer profile (ONNX Runtime's profiler, OpenVINO's
performance counters, DeepSparse's analysis: ``Engine.layer_profile``), maps every layer to the
model block it belongs to (``model.N`` in the exported node names: ultralytics' layer index, the
Detect head last) and puts beside each block what the ONNX file says about it: its multiply-
accumulates at this input size and the sparsity of its convolution weights. Two cells side by side
show where one pipeline wins or loses against another (e.g. ``pruned_quant`` on DeepSparse against
``oneshot`` on OpenVINO).

Timings are the engine's own, on whatever else the machine is doing: profile on an idle machine and
compare blocks within one profile (shares), not milliseconds across days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from yolobench.engines.base import LayerTime
from yolobench.errors import UserError

_BLOCK = re.compile(r"(?:^|[/._])model\.(\d+)(?=[./_]|$)")
OTHER = "other"
_CONV_OPS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}  # op -> index of its weight input
_WEIGHT_ZERO_POINT = {"ConvInteger": 3, "QLinearConv": 5}  # op -> index of its weight zero point


def block_of(name: str | None) -> str:
    """``/model.2/cv1/conv/Conv`` -> ``model.2``; names without a block index -> ``other``."""
    match = _BLOCK.search(name or "")
    return f"model.{match.group(1)}" if match else OTHER


def _block_key(block: str) -> tuple:
    return (0, int(block.split(".")[1])) if block != OTHER else (1, 0)


@dataclass(frozen=True)
class BlockFacts:
    """What the ONNX file says about one block: convolutions, multiply-accumulates, weight sparsity."""

    convs: int = 0
    macs: float = 0.0
    weights: int = 0
    zero_weights: int = 0

    @property
    def sparsity(self) -> float | None:
        return self.zero_weights / self.weights if self.weights else None


def conv_facts(model) -> list[tuple[int, Any, np.ndarray, np.ndarray, float]]:
    """Every convolution of an ONNX ``ModelProto`` with stored weights: (node index, node, weights, weight zero
    point, MACs at the model's input size). Float, QDQ (fake-quant or stored integer) and integer graphs."""
    from onnx import numpy_helper, shape_inference

    model = shape_inference.infer_shapes(model)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    shapes = {}
    for value in [*graph.value_info, *graph.output, *graph.input]:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        shapes[value.name] = dims

    def weight_array(name: str):
        """The weight initializer behind ``name`` (directly, or through DequantizeLinear), and its zero point."""
        if name in inits:
            return numpy_helper.to_array(inits[name]), 0
        node = producers.get(name)
        if node is None or node.op_type != "DequantizeLinear":
            return None, 0
        if node.input[0] in inits:  # stored integer weights
            zero = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] in inits else 0
            return numpy_helper.to_array(inits[node.input[0]]), zero
        quant = producers.get(node.input[0])  # float weights quantized in the graph (fake-quant export)
        if quant is not None and quant.op_type == "QuantizeLinear" and quant.input[0] in inits:
            return numpy_helper.to_array(inits[quant.input[0]]), 0
        return None, 0

    found = []
    for index, node in enumerate(graph.node):
        if node.op_type not in _CONV_OPS:
            continue
        weights, zero = weight_array(node.input[_CONV_OPS[node.op_type]])
        if weights is None or weights.ndim != 4:
            continue
        zp_index = _WEIGHT_ZERO_POINT.get(node.op_type)
        if zp_index is not None and len(node.input) > zp_index and node.input[zp_index] in inits:
            zero = numpy_helper.to_array(inits[node.input[zp_index]])
        zero = np.asarray(zero)
        if zero.ndim == 1 and zero.size == weights.shape[0]:
            zero = zero.reshape(-1, 1, 1, 1)
        out = shapes.get(node.output[0]) or []
        spatial = out[2] * out[3] if len(out) == 4 and out[2] and out[3] else 0
        found.append((index, node, weights, zero, float(np.prod(weights.shape)) * spatial))
    return found


def onnx_block_facts(path: str | Path) -> dict[str, BlockFacts]:
    """Per block: its convolutions' MACs at the file's input size and their weights' sparsity (zeros, or
    entries equal to the weight zero point of an integer graph)."""
    import onnx

    facts: dict[str, dict] = {}
    for _, node, weights, zero, macs in conv_facts(onnx.load(str(path))):
        entry = facts.setdefault(block_of(node.name or node.output[0]), {"convs": 0, "macs": 0.0, "weights": 0,
                                                                         "zero_weights": 0})
        entry["convs"] += 1
        entry["macs"] += macs
        entry["weights"] += int(weights.size)
        entry["zero_weights"] += int(np.count_nonzero(weights == zero))
    return {block: BlockFacts(**values) for block, values in facts.items()}


@dataclass
class BlockTime:
    block: str
    ms: float = 0.0
    layers: int = 0
    ran_as: dict[str, float] = field(default_factory=dict)  # how it ran -> ms spent that way

    def main_ways(self, top: int = 2) -> str:
        ways = sorted(self.ran_as.items(), key=lambda kv: -kv[1])[:top]
        return "; ".join(way for way, _ in ways)


@dataclass
class CellProfile:
    """One cell's per-layer profile, grouped by block."""

    variant: str
    engine: str
    form: str
    imgsz: int
    threads: int
    runs: int
    layers: list[LayerTime]
    facts: dict[str, BlockFacts]

    @property
    def label(self) -> str:
        return f"{self.variant}-{self.engine}-{self.imgsz}"

    @property
    def total_ms(self) -> float:
        return sum(layer.ms for layer in self.layers)

    def blocks(self) -> dict[str, BlockTime]:
        out: dict[str, BlockTime] = {}
        for layer in self.layers:
            entry = out.setdefault(block_of(layer.onnx_node or layer.name), BlockTime(block_of(layer.onnx_node or layer.name)))
            entry.ms += layer.ms
            entry.layers += 1
            entry.ran_as[layer.ran_as] = entry.ran_as.get(layer.ran_as, 0.0) + layer.ms
        return out

    @property
    def total_macs(self) -> float:
        return sum(f.macs for f in self.facts.values())


def profile_cell(artifact, variant: str, engine_name: str, *, imgsz: int, threads: int | None = None,
                 runs: int = 20, warmup: int = 5) -> CellProfile:
    from yolobench import engines
    from yolobench.engines.base import default_threads

    if runs < 1 or warmup < 0:
        raise UserError(f"--runs must be at least 1 and --warmup at least 0 (got {runs}, {warmup})")
    engine = engines.get(engine_name)
    threads = default_threads() if threads is None else threads
    layers, form = engine.layer_profile(artifact, imgsz=imgsz, threads=threads, runs=runs, warmup=warmup)
    # MACs and sparsity from the ONNX it ran, or the FP32 one an engine made its own model from (openvino_nncf)
    try:
        onnx_file = artifact.onnx_path(form, imgsz)
    except FileNotFoundError:
        onnx_file = artifact.onnx_path("fp32", imgsz)
    return CellProfile(variant=variant, engine=engine_name, form=form, imgsz=imgsz, threads=threads, runs=runs,
                       layers=layers, facts=onnx_block_facts(onnx_file))


def _fmt_macs(macs: float) -> str:
    return f"{macs / 1e9:.2f}" if macs else "-"


def format_profiles(profiles: list[CellProfile], *, top: int | None = None) -> str:
    """A markdown table per block, the cells side by side: time, share of the cell's total, MACs and
    weight sparsity from the ONNX each cell ran, and how each block mostly ran."""
    blocks = sorted({b for p in profiles for b in p.blocks()} | {b for p in profiles for b in p.facts},
                    key=_block_key)
    per = [p.blocks() for p in profiles]
    if top:
        weight = {b: max(pb.get(b, BlockTime(b)).ms for pb in per) for b in blocks}
        keep = set(sorted(blocks, key=lambda b: -weight[b])[:top])
        blocks = [b for b in blocks if b in keep]
    header = ["block"]
    for p in profiles:
        header += [f"{p.label} ms", "share", "GMACs", "sparsity", "ran as"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for block in blocks:
        row = [block]
        for p, pb in zip(profiles, per):
            t = pb.get(block)
            facts = p.facts.get(block)
            sparsity = facts.sparsity if facts else None
            row += [f"{t.ms:.2f}" if t else "-", f"{t.ms / p.total_ms:.1%}" if t and p.total_ms else "-",
                    _fmt_macs(facts.macs if facts else 0.0), "-" if sparsity is None else f"{sparsity:.0%}",
                    t.main_ways() if t else "-"]
        lines.append("| " + " | ".join(row) + " |")
    total = ["**total**"]
    for p in profiles:
        total += [f"**{p.total_ms:.2f}**", "100%", _fmt_macs(p.total_macs), "", f"{p.form} graph, {p.threads} threads"]
    lines.append("| " + " | ".join(total) + " |")
    notes = [f"- {p.label}: {p.engine}'s own per-layer timing, mean of {p.runs} runs at batch 1 "
             f"({len(p.layers)} layers as it scheduled them); effective dense-equivalent throughput "
             f"{p.total_macs / (p.total_ms / 1000) / 1e9:.1f} GMAC/s" for p in profiles if p.total_ms]
    return "\n".join(lines + [""] + notes) + "\n"
