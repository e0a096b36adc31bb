"""The engine protocol: every runtime sits behind ``Engine.load(...) -> Session`` and ``Session.run``.

An engine takes a model (an ONNX path, or any artifact-like object with ``onnx_path(form)`` and
``load_torch()``), picks the export form it is fast on, fixes its thread count explicitly, and returns a
:class:`Session` whose ``run(images)`` gives the *raw* head output ``(B, 4+nc, N)``. Decoding and NMS
are not an engine's business (see ``yolobench.processing``).

Errors, so that nothing is ever dropped silently:
- bad input the user can fix (missing file, not an ONNX model, unsupported input rank/dtype/shape,
  wrong image batch) -> :class:`yolobench.errors.UserError`, one line;
- an engine that cannot run here or cannot take this model form -> :class:`EngineUnsupported`
  with the reason, which tests turn into ``pytest.skip(reason)`` and the CLI into a table row.

Must not: import a runtime at module import time (listing engines must stay cheap).
"""

from __future__ import annotations

import abc
import collections
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from yolobench.errors import UserError
from yolobench.timer import default_threads  # noqa: F401 (re-exported: engines' default threads)

# "openvino-f32": the setting that pins an engine to FP32 (its fp32_options), in labels, parity tables
# and test ids
PINNED_FP32 = "f32"

# Artifact export forms (each engine needs the form it is fast on: OpenVINO ran sparseml's converted INT8 graph 3x slower than its own QDQ INT8, measured).
from yolobench.forms import (FORM_DEEPSPARSE, FORM_FP32, FORM_QDQ, FORM_TORCH, ONNX_FORMS,  # noqa: E402,F401
                             QUANTIZED_FORMS)

_INTEGER_OPS = {"ConvInteger", "QLinearConv", "MatMulInteger", "QLinearMatMul"}
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


class EngineUnsupported(Exception):
    """This engine cannot run here, or cannot take this model form. ``reason`` says why, in one line."""

    def __init__(self, reason: str):
        self.reason = " ".join(str(reason).split())
        super().__init__(self.reason)


class EngineNotApplicable(EngineUnsupported):
    """The engine does not take this model, by design (PyTorch and a bare ONNX file, a form the model does
    not have, a quantizer given a quantized model): nothing is broken. The plain :class:`EngineUnsupported`
    means the engine could not import, load or compile: on a machine that has the engine installed, the
    tests count that as a failure, not a skip (``fixtures/engine_checks.py``)."""


@dataclass(frozen=True)
class ModelSpec:
    """What yolobench reads from an ONNX detection model before any engine touches it."""

    path: Path
    form: str  # fp32 | qdq | deepsparse (read from the operators in the graph)
    input_name: str
    input_shape: tuple[int | None, ...]  # None where the dimension is dynamic
    output_name: str
    output_shape: tuple[int | None, ...]
    nc: int | None  # number of classes, from ultralytics' metadata or the static output shape
    opset: int
    op_counts: dict[str, int] = field(default_factory=dict)

    @property
    def static_imgsz(self) -> tuple[int, int] | None:
        h, w = self.input_shape[2:]
        return (h, w) if h is not None and w is not None else None

    @property
    def static_batch(self) -> int | None:
        return self.input_shape[0]

    def describe(self) -> str:
        shape = "x".join("?" if d is None else str(d) for d in self.input_shape)
        return f"{self.form} graph, input {self.input_name} {shape}, nc {self.nc if self.nc is not None else '?'}"


def _dims(value_info) -> tuple[int | None, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)


def form_of_graph(op_counts: dict[str, int]) -> str:
    """fp32, deepsparse (integer operators) or qdq, from the operator types of a graph."""
    if any(op in op_counts for op in _INTEGER_OPS):
        return FORM_DEEPSPARSE
    if any(op in op_counts for op in _QDQ_OPS):
        return FORM_QDQ
    return FORM_FP32


def inspect_onnx(path: str | os.PathLike) -> ModelSpec:
    """Read and sanity-check an ONNX detection model; :class:`UserError` with one line if it is unusable.

    Checks what the engines would otherwise fail on with pages of output: the file exists and parses,
    the graph is complete (every node input is defined: a file cut at a message boundary still
    parses), one float32 image input of rank 4 with 3 channels, a rank-3 raw head output (not an
    NMS-inside export).
    """
    import onnx  # noqa: PLC0415
    from google.protobuf.message import DecodeError  # noqa: PLC0415

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as err:
        raise UserError(f"{path}: not a readable ONNX model ({type(err).__name__}: {err})") from None
    graph = model.graph
    if not graph.node or not graph.output:
        raise UserError(f"{path}: not an ONNX model, or a truncated one (the graph has no nodes or outputs)")
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    for node in graph.node:
        for name in node.input:
            if name not in defined:
                raise UserError(f"{path}: incomplete ONNX graph (node {node.name or node.op_type!r} reads "
                                f"{name!r}, which nothing defines): truncated or corrupt file")
        defined.update(node.output)
    missing = [o.name for o in graph.output if o.name not in defined]
    if missing:
        raise UserError(f"{path}: incomplete ONNX graph (output {missing[0]!r} is never computed): "
                        "truncated or corrupt file")

    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise UserError(f"{path}: unsupported model: expected one image input, found {len(inputs)}")
    image_input = inputs[0]
    elem = image_input.type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT:
        raise UserError(f"{path}: unsupported input dtype {onnx.TensorProto.DataType.Name(elem).lower()} for "
                        f"{image_input.name!r}: yolobench feeds float32 images")
    in_shape = _dims(image_input)
    if len(in_shape) != 4 or in_shape[1] not in (3, None):
        shape = "x".join("?" if d is None else str(d) for d in in_shape)
        raise UserError(f"{path}: unsupported input shape {shape or 'scalar'} for {image_input.name!r}: "
                        "expected (batch, 3, height, width)")

    meta = {p.key: p.value for p in model.metadata_props}
    if str(meta.get("end2end", "")).lower() == "true" or str(meta.get("nms", "")).lower() == "true":
        raise UserError(f"{path}: this export has NMS inside the graph; parity needs the raw head: "
                        "export with nms=False (and end2end=False)")
    if len(graph.output) > 1:
        raise UserError(f"{path}: {len(graph.output)} outputs: yolobench handles detection models with one "
                        "output (segmentation exports are not supported)")
    output = graph.output[0]
    out_shape = _dims(output)
    if len(out_shape) != 3:
        raise UserError(f"{path}: unsupported output rank {len(out_shape)} of {output.name!r}: expected a raw "
                        "detection head (batch, 4+nc, anchors)")
    nc = _nc_from_metadata(meta)
    if nc is None and out_shape[1] is not None and out_shape[2] is not None:
        nc = min(out_shape[1], out_shape[2]) - 4
    op_counts = dict(collections.Counter(n.op_type for n in graph.node))
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return ModelSpec(path=path, form=form_of_graph(op_counts), input_name=image_input.name, input_shape=in_shape,
                     output_name=output.name, output_shape=out_shape, nc=nc, opset=opset, op_counts=op_counts)


def class_names(text: str | None) -> dict[int, str] | None:
    """``{id: name}`` from the ``names`` metadata of an ONNX file (ultralytics writes a Python dict literal;
    JSON and a list of names are read too); None for anything else. The text is the file author's, so
    nothing in it is run and nothing it holds raises (``{[]: 1}`` is a TypeError to literal_eval)."""
    if not text or not isinstance(text, str):
        return None
    import ast  # noqa: PLC0415

    try:
        parsed = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return None
    if isinstance(parsed, list):
        parsed = dict(enumerate(parsed))
    if not isinstance(parsed, dict) or not parsed:
        return None
    table = {}
    for key, value in parsed.items():
        if isinstance(key, bool) or not isinstance(key, (int, str)) or not str(key).isdigit():
            return None
        if not isinstance(value, str):
            return None
        table[int(key)] = value
    return dict(sorted(table.items()))


def _nc_from_metadata(meta: dict[str, str]) -> int | None:
    """Class count from ultralytics' ONNX metadata (``names``: see :func:`class_names`)."""
    names = class_names(meta.get("names"))
    return len(names) if names else None


def _artifact_onnx(model: Any, form: str, imgsz: int | None) -> Path | None:
    """The artifact's ONNX file of ``form`` (at ``imgsz`` when it keeps several sizes), or None if it has none."""
    try:
        if imgsz is None:
            path = model.onnx_path(form)
        else:
            try:
                path = model.onnx_path(form, imgsz=imgsz)
            except TypeError:  # an artifact with one size per form
                path = model.onnx_path(form)
    except (KeyError, LookupError, FileNotFoundError, ValueError):
        return None
    if path is None:
        return None
    path = Path(path)
    return path if path.is_file() else None


def resolve_onnx(model: Any, preferred: Sequence[str], form: str | None = None,
                 imgsz: int | Sequence[int] | None = None) -> tuple[ModelSpec, str]:
    """Pick and check the ONNX file an engine runs: (its spec, the form it was chosen as).

    ``model`` is a path (its form is read from its operators) or an artifact with ``onnx_path(form)``;
    for an artifact the first of ``preferred`` forms it has is used, or exactly ``form`` if given.
    """
    if isinstance(model, (str, os.PathLike)):
        spec = inspect_onnx(model)
        if form is not None and form != spec.form:
            raise EngineNotApplicable(f"{spec.path.name} is a {spec.form} graph, not the {form} form asked for")
        return spec, spec.form
    if not hasattr(model, "onnx_path"):
        raise EngineNotApplicable(f"{type(model).__name__} has no ONNX form (no onnx_path())")
    hw = as_hw(imgsz)
    side = None if hw is None else (hw[0] if hw[0] == hw[1] else None)  # artifacts keep square exports
    for candidate in ([form] if form is not None else preferred):
        path = _artifact_onnx(model, candidate, side)
        if path is not None:
            return inspect_onnx(path), candidate
    wanted = form if form is not None else " or ".join(preferred)
    raise EngineNotApplicable(f"the artifact has no {wanted} ONNX form")


@dataclass(frozen=True)
class Geometry:
    """The fixed input a session was loaded for."""

    batch: int
    imgsz: tuple[int, int]  # (height, width)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, 3, *self.imgsz)


def as_hw(imgsz: int | Sequence[int] | None) -> tuple[int, int] | None:
    if imgsz is None:
        return None
    if isinstance(imgsz, (int, np.integer)):
        return int(imgsz), int(imgsz)
    h, w = (int(v) for v in imgsz)
    return h, w


def resolve_geometry(spec: ModelSpec, batch: int, imgsz: int | Sequence[int] | None) -> Geometry:
    """Batch and image size for a session: the model's static ones, or the requested ones where dynamic."""
    if batch < 1:
        raise UserError(f"batch must be at least 1, got {batch}")
    requested = as_hw(imgsz)
    static = spec.static_imgsz
    if static is not None:
        if requested is not None and requested != static:
            raise UserError(f"{spec.path.name}: the model input is fixed at {static[0]}x{static[1]}; "
                            f"image size {requested[0]}x{requested[1]} does not match (export it again or drop --imgsz)")
        size = static
    elif requested is None:
        raise UserError(f"{spec.path.name}: the model input size is dynamic: give the image size (--imgsz)")
    else:
        size = requested
    if spec.static_batch is not None and spec.static_batch != batch:
        raise UserError(f"{spec.path.name}: the model batch is fixed at {spec.static_batch}; batch {batch} "
                        "needs an export with that batch or a dynamic one")
    return Geometry(batch=batch, imgsz=size)


class Session(abc.ABC):
    """A loaded model on one engine. ``run`` takes (batch, 3, h, w) float32 in [0, 1], returns the raw head."""

    def __init__(self, *, engine: str, engine_version: str, form: str, model_path: Path | None, threads: int,
                 geometry: Geometry, nc: int | None = None):
        self.engine = engine
        self.engine_version = engine_version
        self.form = form
        self.model_path = model_path
        self.threads = threads
        self.batch = geometry.batch
        self.imgsz = geometry.imgsz
        self.nc = nc
        self.fraction_of_supported_ops: float | None = None  # DeepSparse only: below 1.0 part runs in its fallback
        # A floating-point precision below FP32 the session computes in ("bf16": OpenVINO's default on CPUs
        # with bf16), None for FP32 (with integer kernels where the graph is quantized). Parity picks its
        # policy by it (yolobench.parity.same_graph_policy).
        self.reduced_precision: str | None = None

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, 3, *self.imgsz)

    def run(self, images: np.ndarray) -> np.ndarray:
        """Raw head output (batch, 4+nc, N) float32 for a (batch, 3, h, w) float32 batch."""
        if not isinstance(images, np.ndarray):
            raise UserError(f"images must be a numpy array, got {type(images).__name__}")
        if images.dtype != np.float32:
            raise UserError(f"images must be float32 in [0, 1], got {images.dtype}")
        if images.shape != self.input_shape:
            raise UserError(f"images of shape {images.shape} do not fit this {self.engine} session, which was loaded "
                            f"for {self.input_shape}")
        out = np.asarray(self._run(np.ascontiguousarray(images)), dtype=np.float32)
        if out.ndim != 3 or out.shape[0] != self.batch:
            raise UserError(f"{self.engine} returned shape {out.shape}: not a raw detection head (batch, 4+nc, N)")
        return out

    @abc.abstractmethod
    def _run(self, images: np.ndarray) -> np.ndarray:
        """Engine-specific inference on a validated batch."""

    def describe(self) -> dict[str, Any]:
        """The context every measurement made with this session must carry."""
        info = {"engine": self.engine, "engine_version": self.engine_version, "form": self.form,
                "model_path": str(self.model_path) if self.model_path else None, "threads": self.threads,
                "batch": self.batch, "imgsz": list(self.imgsz)}
        if self.fraction_of_supported_ops is not None:
            info["fraction_of_supported_ops"] = self.fraction_of_supported_ops
        info.update(self._extra_info())
        return info

    def _extra_info(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


@dataclass(frozen=True)
class LayerTime:
    """One layer (as the engine schedules it) in a per-layer profile: its mean time per inference."""

    name: str  # the engine's own name for it (often the ONNX node name of the layer it starts with)
    onnx_node: str | None  # the ONNX node it maps to, where the engine says (else None)
    op_type: str
    ms: float
    ran_as: str  # how it ran: kernel / precision / sparsity, in the engine's words
    flops: float | None = None  # as the engine counts them, where it reports them


class Engine(abc.ABC):
    """One runtime. Subclasses set ``name``, ``package`` and ``preferred_forms``, and the traits below
    where they differ from the defaults: the rest of the suite (matrix, parity pairs, run files,
    benchmarks, report) asks the registry (``yolobench.engines``) about them and knows no engine by name.
    """

    name: str = ""
    package: str = ""  # the distribution whose version is reported
    preferred_forms: tuple[str, ...] = (FORM_FP32,)
    # Every form it can load, best first (default: the preferred ones). Parity compares engines on each
    # form that more than one of them accepts.
    accepted_forms: tuple[str, ...] | None = None
    # Why quantized variants are not timed on this engine (None: they are, as a deployment would run them)
    untimed_quantized: str | None = None
    # Its place in matrices, tables and charts (lower first), its colour and scatter marker in the report.
    order: int = 100
    color: str = "#555555"
    marker: str = "o"
    # True when its native code can end the whole process on a model it cannot compile (an abort, not a
    # Python exception): benchmarks then load each of its cells in a child process first.
    can_abort_process: bool = False
    # True when it runs unsupported operators outside its own kernels and reports the share it ran itself
    # (``fraction_of_supported_ops``): its run-file cells must carry that share.
    reports_fallback: bool = False
    # Constructor options that pin its arithmetic to FP32 where its default computes lower (None: it
    # computes in FP32 as it is). Timed at its defaults; parity also checks the pinned setting.
    fp32_options: dict[str, Any] | None = None
    # Other named settings (constructor options), chosen as ``<name>-<setting>`` wherever an engine
    # setting is asked for (``yolobench ab --engine onnxruntime-nospin``). Never timed in the matrix,
    # which runs every engine at its defaults.
    settings: dict[str, dict[str, Any]] = {}
    # The engine every other one is compared with on the same ONNX graph in parity (exactly one).
    parity_reference: bool = False
    # False when it runs a graph it made from the file (e.g. quantized it): it is then never compared
    # with another engine on raw tensors of "the same graph", only by detections and mAP.
    same_graph: bool = True
    # False when its integer kernels compute the float steps between two quantization nodes (the folded
    # batch norm's scale, an activation, the requantization) fused and in their own order: a value within
    # ~1e-5 of a rounding tie then rounds to the other side than in the reference, one quantization step
    # that every later layer carries on, and how far it grows depends on the graph's weights. On a
    # quantized graph it is then compared with the reference by detections (``parity.POLICY.int8_kernels``)
    # and mAP, not raw tensors; on an FP32 graph raw tensors still decide.
    int8_raw_parity: bool = True

    @classmethod
    def named_settings(cls) -> dict[str, dict[str, Any]]:
        """Every setting besides the default, by the suffix that names it (``PINNED_FP32`` when it pins FP32)."""
        return {**({PINNED_FP32: cls.fp32_options} if cls.fp32_options else {}), **cls.settings}

    @classmethod
    def forms(cls) -> tuple[str, ...]:
        return cls.accepted_forms or cls.preferred_forms

    def version(self) -> str:
        from importlib import metadata  # noqa: PLC0415

        try:
            return metadata.version(self.package)
        except metadata.PackageNotFoundError:
            return "not installed"

    def installed(self) -> bool:
        """Whether the engine's distribution is installed at all (an optional engine may not be); an installed
        engine that :meth:`available` still refuses is broken on this machine."""
        from importlib import metadata  # noqa: PLC0415

        try:
            metadata.version(self.package)
        except (metadata.PackageNotFoundError, ValueError):
            return False
        return True

    def available(self) -> tuple[bool, str]:
        """(True, "") when this engine can run here, else (False, why not)."""
        try:
            self._import()
        except Exception as err:  # noqa: BLE001 (any import failure means: not here, and why)
            return False, f"{self.name} cannot be imported: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return True, ""

    def preferred_form(self, model: Any, imgsz: int | None = None) -> str:
        """The form this engine would load from ``model`` (a path's own form, or the artifact's best one)."""
        return resolve_onnx(model, self.preferred_forms, None, imgsz)[1]

    def load(self, model: Any, *, batch: int = 1, threads: int | None = None,
             imgsz: int | Sequence[int] | None = None, form: str | None = None) -> Session:
        """A session for ``model`` (ONNX path or artifact) with ``threads`` fixed (default: usable cores)."""
        ok, reason = self.available()
        if not ok:
            raise EngineUnsupported(reason)
        threads = default_threads() if threads is None else int(threads)
        if threads < 1:
            raise UserError(f"threads must be at least 1, got {threads}")
        return self._load(model, batch=batch, threads=threads, imgsz=imgsz, form=form)

    def _load(self, model: Any, *, batch: int, threads: int, imgsz, form: str | None) -> Session:
        """Default for ONNX engines: resolve the file, check it, hand it to ``_load_onnx``."""
        spec, chosen = resolve_onnx(model, self.preferred_forms, form, imgsz)
        geometry = resolve_geometry(spec, batch, imgsz)
        return self._load_onnx(spec, chosen, geometry, threads)

    def _load_onnx(self, spec: ModelSpec, form: str, geometry: Geometry, threads: int) -> Session:
        raise EngineNotApplicable(f"{self.name} does not run ONNX models")

    def layer_profile(self, model: Any, *, imgsz: int | None = None, threads: int | None = None,
                      runs: int = 20, warmup: int = 5, form: str | None = None) -> tuple[list[LayerTime], str]:
        """The engine's own per-layer timing of ``model`` (batch 1): (layers, the form it ran).

        Runs ``warmup`` inferences, then ``runs`` whose per-layer times are averaged, on a fixed
        pseudo-random image (layer times of a convolutional detector do not depend on the pixels;
        activation sparsity could, and DeepSparse reports it). Engines without a profiler raise
        :class:`EngineUnsupported`."""
        if type(self)._layer_times is Engine._layer_times:
            raise EngineNotApplicable(f"{self.name} has no per-layer profiler in yolobench")
        ok, reason = self.available()
        if not ok:
            raise EngineUnsupported(reason)
        threads = default_threads() if threads is None else int(threads)
        spec, chosen = resolve_onnx(model, self.preferred_forms, form, imgsz)
        geometry = resolve_geometry(spec, 1, imgsz)
        images = np.random.default_rng(0).random(geometry.input_shape, dtype=np.float32)
        return self._layer_times(spec, geometry, threads, images, runs, warmup), chosen

    def _layer_times(self, spec: ModelSpec, geometry: Geometry, threads: int, images: np.ndarray, runs: int,
                     warmup: int) -> list[LayerTime]:
        raise EngineNotApplicable(f"{self.name} has no per-layer profiler in yolobench")

    @abc.abstractmethod
    def _import(self):
        """Import the runtime (raises if it cannot run here)."""

    def __repr__(self) -> str:
        return f"<Engine {self.name} {self.version()}>"


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"[:300]
