"""``yolobench parity``: does every engine compute the same thing on any YOLOv5u/YOLOv8 detection ONNX?

Runs the model on every available ONNX engine (ONNX Runtime, DeepSparse, OpenVINO) with the same
letterboxed images and compares the raw head outputs pair by pair under the same-graph policy of the
model's form (``yolobench.parity.POLICY``); detection agreement is shown beside it. With ``--against``
it compares two model files on each engine instead (e.g. an export against its simplified or
quantized copy). Each engine runs at its defaults (what a user gets); one whose default computes below
FP32 (OpenVINO: bf16 on CPUs that have it) is judged there by detections (``POLICY.bf16``) and also
runs pinned to FP32 (row ``openvino-f32``), where raw tensors check the graph. Exit 0: everything
agrees; 1: a pair disagrees, or no pair could run; 2: bad input (one line on stderr, nothing run,
nothing written).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from yolobench import engines as engine_registry
from yolobench.commands import common
from yolobench.engines.base import (FORM_FP32, EngineUnsupported, ModelSpec, default_threads, first_line,
                                    inspect_onnx, resolve_geometry)
from yolobench.errors import EXIT_FAILED, EXIT_OK, UserError
from yolobench.modelfiles import NO_TORCH_GRAPH
from yolobench.parity import (POLICY, DetectionComparison, DetectionPolicy, RawComparison, compare_detections,
                              compare_raw, cross_graph_policy, raw_policy_for, same_graph_policy)
from yolobench.processing import default_images, load_images, postprocess, preprocess

HELP = "check that every engine gives the same outputs and detections for an ONNX detection model"

TORCH_NOT_APPLICABLE = NO_TORCH_GRAPH  # also why `bench --model` does not time a file on PyTorch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="YOLOv5u/YOLOv8-style detection ONNX (raw head)")
    parser.add_argument("--against", type=Path, default=None,
                        help="a second ONNX of the same model: compare MODEL vs AGAINST on each engine")
    parser.add_argument("--images", nargs="+", type=Path, default=None,
                        help="image folder or files (default: the two photos shipped with ultralytics)")
    common.add_engines(parser)
    parser.add_argument("--imgsz", type=int, default=None,
                        help="input size for a model with a dynamic input (a static one is read from the model)")
    parser.add_argument("--threads", type=int, default=None, help="threads per engine (default: usable cores)")
    parser.add_argument("--conf", type=float, default=0.25, help="confidence threshold for detections")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold for detections")


@dataclass
class EngineRun:
    """One engine's outcome: raw outputs per model, or why it did not run."""

    name: str
    version: str
    status: str  # "ran" | "skipped" | "n/a" | "failed"
    reason: str = ""
    forms: dict[str, str] = field(default_factory=dict)  # "model"/"against" -> form the engine ran
    describe: dict = field(default_factory=dict)
    raw: dict[str, np.ndarray] = field(default_factory=dict)  # "model"/"against" -> (n_images, 4+nc, N)
    reduced_precision: str | None = None  # "bf16" when the session computes below FP32 (Session.reduced_precision)


@dataclass
class PairResult:
    label: str  # e.g. "onnxruntime vs deepsparse" or "openvino: model vs against"
    decided_by: str  # policy kind that decides the verdict
    raw: RawComparison
    detections: DetectionComparison
    ok: bool


@dataclass
class ParityReport:
    spec: ModelSpec
    against: ModelSpec | None
    images: list[Path]
    threads: int
    runs: list[EngineRun]
    pairs: list[PairResult]
    conf: float = 0.25
    iou: float = 0.45

    @property
    def ok(self) -> bool:
        return bool(self.pairs) and all(p.ok for p in self.pairs) and not any(r.status == "failed" for r in self.runs)


def _run_engine(name: str, models: dict[str, Path], batch: np.ndarray, imgsz: tuple[int, int], threads: int,
                pinned_fp32: bool = False) -> EngineRun:
    engine = engine_registry.get_pinned_fp32(name) if pinned_fp32 else engine_registry.get(name)
    label = name + engine_registry.PINNED_FP32_SUFFIX if pinned_fp32 else name
    run = EngineRun(name=label, version=engine.version(), status="ran")
    if name not in engine_registry.onnx_engine_names():
        run.status, run.reason = "n/a", TORCH_NOT_APPLICABLE
        return run
    ok, reason = engine.available()
    if not ok:
        run.status, run.reason = "skipped", reason
        return run
    for key, path in models.items():
        try:
            session = engine.load(path, batch=1, threads=threads, imgsz=imgsz)
        except EngineUnsupported as err:
            run.status, run.reason = "skipped", err.reason
            return run
        try:
            run.raw[key] = np.concatenate([session.run(batch[i:i + 1]) for i in range(len(batch))])
        except Exception as err:  # noqa: BLE001 (it loaded the model, then failed on it: that is a finding)
            run.status, run.reason = "failed", f"inference failed on {path.name}: {first_line(err)}"
            return run
        run.forms[key] = session.form
        run.describe = session.describe()
        run.reduced_precision = session.reduced_precision
    return run


def check_onnx_parity(model: Path, against: Path | None = None, images: list[Path] | None = None,
                      engine_names: list[str] | None = None, imgsz: int | None = None, threads: int | None = None,
                      conf: float = 0.25, iou: float = 0.45) -> ParityReport:
    """Run the parity check and return the report (raises UserError on bad input before running anything)."""
    spec = inspect_onnx(model)
    against_spec = inspect_onnx(against) if against is not None else None
    geometry = resolve_geometry(spec, 1, imgsz)
    if against_spec is not None:
        other = resolve_geometry(against_spec, 1, imgsz)
        if other.imgsz != geometry.imgsz or against_spec.nc != spec.nc:
            raise UserError(f"{against_spec.path.name} (input {other.imgsz}, nc {against_spec.nc}) is not comparable with "
                            f"{spec.path.name} (input {geometry.imgsz}, nc {spec.nc})")
    if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
        raise UserError(f"--conf and --iou must lie in [0, 1], got {conf} and {iou}")
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    image_paths = images if images else default_images()
    loaded = load_images(image_paths)
    batch, infos = preprocess([img for _, img in loaded], geometry.imgsz)
    orig_shapes = [info.orig_shape for info in infos]

    models = {"model": spec.path}
    if against_spec is not None:
        models["against"] = against_spec.path
    names = list(dict.fromkeys(engine_names or engine_registry.engine_names()))
    runs = []
    for name in names:
        runs.append(_run_engine(name, models, batch, geometry.imgsz, threads))
        if runs[-1].status == "ran" and runs[-1].reduced_precision and engine_registry.engine_class(name).fp32_options:
            runs.append(_run_engine(name, models, batch, geometry.imgsz, threads, pinned_fp32=True))
    ran = [r for r in runs if r.status == "ran"]

    def detections(raw):
        return postprocess(raw, infos, orig_shapes, conf=conf, iou=iou, nc=spec.nc)

    side = max(geometry.imgsz)
    pairs = []
    if against_spec is None:
        for a, b in combinations(ran, 2):
            # Both in FP32: raw tensors under the form's policy decide. A side in bf16, or a quantized graph
            # on integer kernels that round elsewhere: detections decide (the raw numbers are shown).
            policy = same_graph_policy(spec.form, a.reduced_precision, b.reduced_precision,
                                       int8_raw=engine_registry.int8_raw_parity(a.name, b.name))
            raw = compare_raw(a.raw["model"], b.raw["model"], raw_policy_for(spec.form), imgsz=side, nc=spec.nc)
            dets = compare_detections(detections(a.raw["model"]), detections(b.raw["model"]),
                                      policy if isinstance(policy, DetectionPolicy) else POLICY.cross_graph)
            raw_decides = not isinstance(policy, DetectionPolicy)
            pairs.append(PairResult(f"{a.name} vs {b.name}", policy.kind, raw, dets, raw.ok if raw_decides else dets.ok))
    else:
        both_fp32 = spec.form == FORM_FP32 and against_spec.form == FORM_FP32
        for r in ran:
            # Two FP32 graphs of one model must compute the same function: raw tensors decide, unless the
            # engine computes in bf16. A quantized side computes a different one: detections decide (the
            # raw numbers are shown).
            raw = compare_raw(r.raw["model"], r.raw["against"],
                              POLICY.same_graph_fp32 if both_fp32 else POLICY.same_graph_int8, imgsz=side, nc=spec.nc)
            dets = compare_detections(detections(r.raw["model"]), detections(r.raw["against"]),
                                      cross_graph_policy(r.reduced_precision))
            raw_decides = both_fp32 and not r.reduced_precision
            decided_by = raw.policy.kind if raw_decides else dets.policy.kind
            pairs.append(PairResult(f"{r.name}: {spec.path.name} vs {against_spec.path.name}", decided_by, raw, dets,
                                    raw.ok if raw_decides else dets.ok))
    return ParityReport(spec, against_spec, [p for p, _ in loaded], threads, runs, pairs, conf, iou)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _raw_cells(raw: RawComparison, deciding: bool) -> tuple[str, str]:
    if raw.problem:
        return raw.problem, "-"
    suffix = (lambda tol: f" (tol {tol:.2g})") if deciding else (lambda tol: " (info)")
    score = f"{raw.max_abs_score:.2g}{suffix(raw.policy.score_max.value)}"
    if raw.policy.score_outliers.value > 0:
        score += f", {raw.score_outliers}/{raw.scores} > {raw.policy.score_atol.value:.2g}"
        score += f" (max {raw.allowed_outliers})" if deciding else ""
    return f"{raw.max_abs_box:.2g}{suffix(raw.box_tol_px)}", score


def format_report(report: ParityReport) -> str:
    spec = report.spec
    out = [f"model:   {spec.path} ({spec.describe()}, opset {spec.opset})"]
    if report.against is not None:
        out.append(f"against: {report.against.path} ({report.against.describe()}, opset {report.against.opset})")
    out.append(f"images:  {len(report.images)} ({', '.join(p.name for p in report.images[:4])}"
               f"{', ...' if len(report.images) > 4 else ''}), batch 1, {report.threads} threads")
    out.append("")
    rows = [["engine", "version", "form", "status"]]
    for r in report.runs:
        status = r.status
        fraction = r.describe.get("fraction_of_supported_ops")
        if r.status == "ran" and fraction is not None:
            status += f" (fraction_of_supported_ops {fraction:.2f}"
            # Below 1.0 part of the graph runs in DeepSparse's bundled ONNX Runtime.
            status += ": all in DeepSparse's ONNX Runtime fallback)" if fraction == 0 else (
                ": partly in DeepSparse's ONNX Runtime fallback)" if fraction < 1 else ")")
        elif r.reason:
            status += f": {r.reason}"
        if r.status == "ran" and r.reduced_precision:
            status += f" ({r.reduced_precision}: the engine's default here)"
        rows.append([r.name, r.version, "/".join(r.forms.values()) or "-", status])
    out.append(_table(rows))
    out.append("")
    if report.pairs:
        rows = [["pair", "decided by", "max |Δbox| px", "max |Δscore|", "detections (both ways)", "verdict"]]
        for p in report.pairs:
            deciding_raw = p.decided_by.startswith("same_graph")
            box, score = _raw_cells(p.raw, deciding_raw)
            rows.append([p.label, p.decided_by, box, score, p.detections.short(), "agree" if p.ok else "DISAGREE"])
        out.append(_table(rows))
        out.append(f"detections: conf {report.conf}, NMS IoU {report.iou}; raw tensors decide rows 'decided by "
                   "same_graph_*', detections the others, under:")
        for policy in dict.fromkeys(p.detections.policy for p in report.pairs):
            out.append(f"  {policy.kind}: matched when score >= {policy.ref_min_score.value}, same class, IoU >= "
                       f"{policy.min_iou.value}, |Δscore| <= {policy.score_atol.value}, >= "
                       f"{policy.min_matched_fraction.value:.0%} both ways")
        out.append("")
    failed = [r for r in report.runs if r.status == "failed"]
    bad = [p for p in report.pairs if not p.ok]
    if not report.pairs:
        what = "engine" if report.against is not None else "pair of engines"
        out.append(f"parity not established: no {what} could run this model")
    elif bad or failed:
        names = [p.label for p in bad] + [f"{r.name} (failed)" for r in failed]
        out.append(f"DISAGREE: {', '.join(names)}")
    else:
        out.append(f"all {len(report.pairs)} comparisons agree")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    report = check_onnx_parity(args.model, against=args.against, images=args.images, engine_names=common.engine_list(args.engines),
                               imgsz=args.imgsz, threads=args.threads, conf=args.conf, iou=args.iou)
    print(format_report(report))
    return EXIT_OK if report.ok else EXIT_FAILED
