"""The machine's limit: what a compute-bound layer and a memory copy reach here, on all cores.

``yolobench peak`` measures three numbers, each as the best of a few repetitions:

- **FP32 and INT8 multiply-accumulates per second** of a stack of ``DEPTH`` 3x3 convolutions,
  ``CHANNELS`` in and out over ``SPATIAL x SPATIAL`` positions (compute-bound, the shape of YOLOv5's
  mid-network layers at 640 px), run by OpenVINO (oneDNN's kernels: AVX-512/VNNI/AMX where the CPU has
  them) and by ONNX Runtime (MLAS); the FP32 one pinned to f32, the INT8 one as a QDQ graph (each
  activation quantized between layers, as in the variants' exports). The higher of the two engines is
  the peak: it is what software on this machine reaches, not a datasheet number. A stack, not one
  layer: the first version timed a single 1x1 convolution, whose call was dominated by converting its
  8 MB input and output (layout reorders, quantization), and whole YOLOv5 models then ran at up to 1.9x
  that "peak" (dense yolov5s at 640 on OpenVINO, 2026-12-03, Zen 5).
- **memory bandwidth**: a large array copied by every usable core at once (read + write bytes).

With a run file it also gives each timed cell's effective dense-equivalent throughput (the model's
MACs at the cell's size, from its FP32 ONNX, times its FPS) as a fraction of the peak of the
arithmetic it ran (INT8 for quantized variants, FP32 otherwise): a roofline picture of how far each
pipeline is from what the hardware does. A sparse model can pass 100%: it skips work.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHANNELS = 256
SPATIAL = 40
DEPTH = 8  # convolutions in the stack: the edges' conversions are paid once for DEPTH layers of work
KERNEL = 3
REPEATS = 10  # timed calls per measurement; the best (least disturbed) one counts
COPY_MB = 256


def _conv_model(path: Path, quantized: bool) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    fan_in = CHANNELS * KERNEL * KERNEL
    nodes, inits = [], []
    x = "x"
    if quantized:  # one activation scale for every layer: weights keep the activations' spread near 1
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "xs"),
                  numpy_helper.from_array(np.array(0, np.int8), "xz"),
                  numpy_helper.from_array(np.array(0, np.int8), "wz")]
    for i in range(DEPTH):
        w = rng.standard_normal((CHANNELS, CHANNELS, KERNEL, KERNEL)).astype(np.float32) / np.sqrt(fan_in)
        if quantized:
            scale = float(np.abs(w).max() / 127)
            inits += [numpy_helper.from_array(np.clip(np.round(w / scale), -127, 127).astype(np.int8), f"wq{i}"),
                      numpy_helper.from_array(np.array(scale, np.float32), f"ws{i}")]
            nodes += [helper.make_node("QuantizeLinear", [x, "xs", "xz"], [f"xq{i}"]),
                      helper.make_node("DequantizeLinear", [f"xq{i}", "xs", "xz"], [f"xd{i}"]),
                      helper.make_node("DequantizeLinear", [f"wq{i}", f"ws{i}", "wz"], [f"wd{i}"])]
            x_in, w_name = f"xd{i}", f"wd{i}"
        else:
            inits.append(numpy_helper.from_array(w, f"w{i}"))
            x_in, w_name = x, f"w{i}"
        out = "y" if i == DEPTH - 1 else f"h{i}"
        nodes.append(helper.make_node("Conv", [x_in, w_name], [out], pads=[KERNEL // 2] * 4))
        x = out
    shape = [1, CHANNELS, SPATIAL, SPATIAL]
    graph = helper.make_graph(nodes, "peak", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def stack_macs() -> int:
    """Multiply-accumulates of one call of the peak model."""
    return DEPTH * CHANNELS * CHANNELS * KERNEL * KERNEL * SPATIAL * SPATIAL


def _best_seconds(call, repeats: int = REPEATS) -> float:
    call()  # warm-up (compilation, caches)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def _openvino_seconds(path: Path, threads: int, precision: str | None) -> float:
    import openvino as ov

    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    request = ov.Core().compile_model(str(path), "CPU", config).create_infer_request()
    x = np.random.default_rng(1).random((1, CHANNELS, SPATIAL, SPATIAL), dtype=np.float32)
    return _best_seconds(lambda: request.infer({0: x}))


def _onnxruntime_seconds(path: Path, threads: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((1, CHANNELS, SPATIAL, SPATIAL), dtype=np.float32)
    return _best_seconds(lambda: session.run(None, {"x": x}))


def copy_bandwidth(threads: int, megabytes: int = COPY_MB) -> float:
    """Bytes per second read + written by ``threads`` threads each copying its share of a large array."""
    n = megabytes * (1 << 20) // 4 // threads
    sources = [np.ones(n, np.float32) for _ in range(threads)]
    targets = [np.empty_like(s) for s in sources]
    with ThreadPoolExecutor(threads) as pool:
        def copy_all():
            list(pool.map(lambda i: np.copyto(targets[i], sources[i]), range(threads)))
        seconds = _best_seconds(copy_all)
    return 2 * n * 4 * threads / seconds


@dataclass(frozen=True)
class Peak:
    fp32_macs: dict[str, float]  # engine -> MAC/s
    int8_macs: dict[str, float]
    bf16_macs: dict[str, float]  # OpenVINO's default on a CPU with bf16: the float arithmetic its users get
    copy_bytes_per_s: float
    threads: int

    @property
    def fp32(self) -> float:
        return max(self.fp32_macs.values(), default=0.0)

    @property
    def float_(self) -> float:
        """The fastest floating-point arithmetic measured (bf16 where an engine uses it by default)."""
        return max([*self.fp32_macs.values(), *self.bf16_macs.values()], default=0.0)

    @property
    def int8(self) -> float:
        return max(self.int8_macs.values(), default=0.0)

    @classmethod
    def from_dict(cls, data: dict) -> "Peak":
        """The measurement ``as_dict`` wrote (``yolobench peak --out``), read back for the report."""
        return cls(fp32_macs=dict(data["fp32_macs_per_s"]), int8_macs=dict(data["int8_macs_per_s"]),
                   bf16_macs=dict(data.get("bf16_macs_per_s") or {}), copy_bytes_per_s=float(data["copy_bytes_per_s"]),
                   threads=int(data["threads"]))

    def as_dict(self) -> dict:
        return {"fp32_macs_per_s": self.fp32_macs, "bf16_macs_per_s": self.bf16_macs, "int8_macs_per_s": self.int8_macs,
                "copy_bytes_per_s": self.copy_bytes_per_s, "threads": self.threads,
                "conv_stack": {"depth": DEPTH, "kernel": KERNEL, "channels": CHANNELS, "spatial": SPATIAL,
                               "repeats": REPEATS}, "copy_mb": COPY_MB}


def measure(threads: int, folder: Path) -> Peak:
    macs = stack_macs()
    fp32_path, int8_path = folder / "peak-fp32.onnx", folder / "peak-int8.onnx"
    _conv_model(fp32_path, quantized=False)
    _conv_model(int8_path, quantized=True)
    fp32, int8, bf16 = {}, {}, {}
    for name, run_fp32, run_int8 in (
            ("openvino", lambda: _openvino_seconds(fp32_path, threads, "f32"),
             lambda: _openvino_seconds(int8_path, threads, None)),
            ("onnxruntime", lambda: _onnxruntime_seconds(fp32_path, threads),
             lambda: _onnxruntime_seconds(int8_path, threads))):
        try:
            fp32[name] = macs / run_fp32()
            int8[name] = macs / run_int8()
        except ImportError:
            continue
        if name == "openvino":  # its default precision (bf16 on a CPU that has it, else f32)
            bf16[name] = macs / _openvino_seconds(fp32_path, threads, None)
    return Peak(fp32_macs=fp32, int8_macs=int8, bf16_macs=bf16, copy_bytes_per_s=copy_bandwidth(threads),
                threads=threads)


@dataclass(frozen=True)
class RooflineRow:
    cell: str
    form: str
    macs: float  # the model's dense multiply-accumulates per image at the cell's size
    fps: float
    arithmetic: str  # "int8" or "float": which peak it is held against

    def fraction(self, peak: Peak) -> float | None:
        limit = peak.int8 if self.arithmetic == "int8" else peak.float_
        return self.macs * self.fps / limit if limit else None


def roofline_rows(run, store) -> tuple[list[RooflineRow], list[str]]:
    """A row per timed cell whose artifact is in ``store`` (MACs from its ONNX at the cell's size), and
    the cells left out, with why."""
    from yolobench.forms import FORM_FP32, FORM_TORCH, INT8_FORMS, QUANTIZED_FORMS
    from yolobench.profiling import onnx_block_facts

    rows, skipped = [], []
    macs_cache: dict = {}
    for name, cell in sorted(run.cells.items()):
        key, form = cell.extra.get("artifact_key"), cell.extra.get("form") or FORM_FP32
        artifact = store.get(cell.variant, str(key), deep=False) if key else None
        if artifact is None:
            skipped.append(f"{name}: its artifact ({key}) is not in {store.root}")
            continue
        onnx_form = next((f for f in (form, FORM_FP32, *QUANTIZED_FORMS) if f != FORM_TORCH and f in artifact.forms()
                          and artifact.onnx_path(f, cell.imgsz).exists()), None)
        if onnx_form is None:
            skipped.append(f"{name}: no ONNX at {cell.imgsz} px to count its MACs")
            continue
        path = artifact.onnx_path(onnx_form, cell.imgsz)
        if path not in macs_cache:
            macs_cache[path] = sum(f.macs for f in onnx_block_facts(path).values())
        p50 = min(cell.extra.get("session_p50_ms") or [cell.latency.p50_ms])
        rows.append(RooflineRow(cell=name, form=form, macs=macs_cache[path], fps=1000.0 / p50,
                                arithmetic="int8" if form in INT8_FORMS else "float"))
    return rows, skipped


def format_peak(peak: Peak, rows: list[RooflineRow] | None = None) -> str:
    lines = [f"Peak on {peak.threads} threads (best of {REPEATS} calls; a stack of {DEPTH} {KERNEL}x{KERNEL} "
             f"convolutions, {CHANNELS} channels in and out over {SPATIAL}x{SPATIAL} positions):", "",
             "| arithmetic | " + " | ".join(sorted(peak.fp32_macs)) + " | peak |",
             "|---|" + "---:|" * (len(peak.fp32_macs) + 1)]
    for label, values in (("FP32 GMAC/s", peak.fp32_macs), ("default float (bf16 where used) GMAC/s", peak.bf16_macs),
                          ("INT8 GMAC/s", peak.int8_macs)):
        lines.append(f"| {label} | " + " | ".join(f"{values[e] / 1e9:.1f}" if e in values else "-"
                                                 for e in sorted(peak.fp32_macs))
                     + f" | {max(values.values(), default=0.0) / 1e9:.1f} |")
    lines.append(f"\nMemory copy, all threads: {peak.copy_bytes_per_s / 1e9:.1f} GB/s (read + write)")
    if rows:
        lines += ["", "| cell | form | GMACs per image | FPS | effective GMAC/s | of peak |", "|---|---|---:|---:|---:|---:|"]
        for row in sorted(rows, key=lambda r: -(r.fraction(peak) or 0)):
            fraction = row.fraction(peak)
            lines.append(f"| {row.cell} | {row.form} | {row.macs / 1e9:.2f} | {row.fps:.1f} | "
                         f"{row.macs * row.fps / 1e9:.1f} | "
                         + (f"{fraction:.0%} of {'INT8' if row.arithmetic == 'int8' else 'float'}"
                            if fraction is not None else "-") + " |")
        lines.append("\nEffective = the dense model's MACs x FPS (fastest session), held against the INT8 peak "
                     "for INT8 graphs and the fastest float peak (FP32 or bf16) otherwise: a sparse model "
                     "skips work, so it can pass 100%.")
    return "\n".join(lines) + "\n"
