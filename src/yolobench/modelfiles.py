"""Any model file as a benchmark variant: ``yolobench bench --model A.onnx [B.onnx ...] [--data data.yaml]``.

A file given to ``--model`` is not built: it is checked (``engines.base.inspect_onnx``: a YOLO detection
ONNX with the raw head, as ``yolobench parity --model`` takes) and put into the artifact store as an
ordinary entry whose files and ``meta.json`` look like a built variant's, so the benchmark matrix, the
run file, the gate and the report handle it as they handle the catalogue's variants:

- its variant name is the file's stem and the first 8 hex digits of its sha256
  (:func:`model_variant_name`, e.g. ``yolov8n_1a2b3c4d``), so its cells are ``yolov8n_1a2b3c4d-openvino-640``
  and two different files of one name never share a cell;
- the entry holds the file as ``model-<imgsz>[.<form>].onnx`` (``store.onnx_filename``), its form read
  from its operators (fp32, qdq, or deepsparse for integer operators such as ConvInteger); ``export_imgsz``
  is the graph's static input size (a dynamic input runs at ``--imgsz``, default
  :data:`DYNAMIC_DEFAULT_IMGSZ`); ``quantized`` is its form's; ``sparsity`` is measured on the ONNX
  initializers of its convolution weights (:func:`conv_sparsity`);
- ``metrics``: mAP@0.5 and mAP@0.5:0.95 of the file on ONNX Runtime over ``--data``'s validation split
  (``yolobench.evaluate``, the path every engine's mAP takes), or None without ``--data`` (the report
  shows "n/a"); ``dataset`` is recorded as the builder records it;
- ``origin``: the path it was first imported from and its sha256; every cell of it carries them
  (``extra_info.model_file``, beside ``artifact_key``).

Its key hashes the file's content, the data's content hash (or None) and the input size: the same file
with the same data is the same entry, imported once.

Which engines: every ONNX engine runs the file as it is (an engine whose preferred forms do not include
the file's form, e.g. DeepSparse on a QDQ graph, loads the file itself, as ``parity --model`` does);
PyTorch is not applicable (:data:`NO_TORCH_GRAPH`); a quantized file is not quantized again by
``openvino_nncf`` (the engine's ``untimed_quantized``), and a float one is quantized there on ``--data``'s
training images (without ``--data`` it has none, and the cell is skipped saying so).

Must not: train, export or convert anything; import torch.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from yolobench.errors import UserError
from yolobench.forms import QUANTIZED_FORMS

# What a cell of a model file on an engine that runs no ONNX (PyTorch) is skipped with.
NO_TORCH_GRAPH = "a bare ONNX file has no PyTorch graph"
# The input size a file with a dynamic input runs at when --imgsz is not given (ultralytics' default).
DYNAMIC_DEFAULT_IMGSZ = 640
# Bump when what an import records changes: every model file is imported anew.
IMPORTER_VERSION = 1
HASH_PREFIX_LEN = 8
_NAME_CHARS = re.compile(r"[^a-z0-9_]+")
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def model_variant_name(path: str | os.PathLike, sha256: str) -> str:
    """``<stem>_<first 8 hex of sha256>``, lower case, only ``[a-z0-9_]`` (never ``-``: a cell name is
    ``<variant>-<engine>-<imgsz>``). ``yolov8n-int8.onnx`` -> ``yolov8n_int8_1a2b3c4d``."""
    stem = _NAME_CHARS.sub("_", Path(path).stem.lower()).strip("_") or "model"
    return f"{stem}_{sha256[:HASH_PREFIX_LEN].lower()}"


def sha256_of(path: Path) -> str:
    from yolobench.store import sha256_file  # noqa: PLC0415

    return sha256_file(path)


@dataclass(frozen=True)
class ModelFile:
    """A checked model file: what the matrix needs before importing it."""

    path: Path  # absolute
    sha256: str
    name: str  # its variant name (model_variant_name)
    form: str
    imgsz: int
    dynamic: bool  # the input size is not fixed in the graph: it runs at imgsz (--imgsz or the default)
    nc: int | None

    @property
    def quantized(self) -> bool:
        return self.form in QUANTIZED_FORMS


def import_checkpoint_file(path: str | os.PathLike, **_: Any):
    """A PyTorch checkpoint given to ``--model``: refused with the command that takes it.

    ``--model`` times files as they are deployed (ONNX graphs). A checkpoint goes through ``--weights``,
    which reads it without running code from it (``yolobench.checkpoints``), exports it, and times it as
    the ``dense`` rung on every engine, PyTorch included, next to the rungs derived from it.
    """
    raise UserError(f"{path}: a PyTorch checkpoint; `bench --model` takes ONNX files as deployed: run "
                    f"`yolobench bench --weights {path} --variants dense --data DATA.yaml` (PyTorch and every "
                    "ONNX engine), or export it (`yolo export model=<file> format=onnx`) and pass the .onnx")


@functools.lru_cache(maxsize=64)
def _describe(path: str, mtime_ns: int, size: int, imgsz: int | None) -> ModelFile:
    from yolobench.engines.base import inspect_onnx, resolve_geometry  # noqa: PLC0415

    spec = inspect_onnx(path)
    dynamic = spec.static_imgsz is None
    geometry = resolve_geometry(spec, 1, imgsz if imgsz is not None or not dynamic else DYNAMIC_DEFAULT_IMGSZ)
    height, width = geometry.imgsz
    if height != width:
        raise UserError(f"{path}: input {height}x{width} is not square; yolobench times square inputs "
                        "(export with one imgsz, e.g. imgsz=640)")
    digest = sha256_of(Path(path))
    return ModelFile(path=Path(path), sha256=digest, name=model_variant_name(path, digest), form=spec.form,
                     imgsz=int(height), dynamic=dynamic, nc=spec.nc)


def describe(path: str | os.PathLike, imgsz: int | None = None) -> ModelFile:
    """Check one file given to ``--model``; :class:`UserError` (one line) if it cannot be benchmarked.

    ``imgsz``: the size a dynamic input runs at (default :data:`DYNAMIC_DEFAULT_IMGSZ`); for a static
    input it must match (or be None)."""
    path = Path(path).expanduser().resolve()
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        import_checkpoint_file(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    stat = path.stat()
    return _describe(str(path), stat.st_mtime_ns, stat.st_size, imgsz)


def describe_all(paths: Sequence[str | os.PathLike], imgsz: int | None = None,
                 data: str | os.PathLike | None = None) -> tuple[ModelFile, ...]:
    """Every file checked, in the order given, one entry per distinct content; with ``data``, each file's
    classes must be the data's (:class:`UserError` otherwise)."""
    if not paths:
        raise UserError("--model: give at least one model file")
    found: dict[str, ModelFile] = {}
    for path in paths:
        model = describe(path, imgsz)
        found.setdefault(model.name, model)
    if data is not None:
        names = read_dataset(data, decode_images=False).names
        for model in found.values():
            if model.nc is not None and model.nc != len(names):
                raise UserError(f"{model.path}: {model.nc} classes, but {data} names {len(names)}: its mAP on "
                                "these labels would mean nothing (give the data the model was trained for)")
    return tuple(found.values())


def parse_paths(text: str | None) -> list[str]:
    """``--yb-models a.onnx,b.onnx`` -> paths."""
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def read_dataset(data: str | os.PathLike, *, decode_images: bool):
    from yolobench.data import check_dataset  # noqa: PLC0415

    return check_dataset(Path(data).expanduser().resolve(), decode_images=decode_images)


def is_model_file(artifact: Any) -> bool:
    """Whether an artifact is a file given to ``--model`` (imported, not built)."""
    meta = getattr(artifact, "meta", None) or {}
    return bool((meta.get("origin") or {}).get("model_file"))


def untimed_reason(engine_name: str, *, quantized: bool) -> str | None:
    """Why the matrix does not time a model file on ``engine_name`` (None: it does)."""
    from yolobench import engines  # noqa: PLC0415

    if engine_name not in engines.onnx_engine_names():
        return NO_TORCH_GRAPH
    if quantized:
        return engines.get(engine_name).untimed_quantized
    return None


def engine_model(artifact: Any, engine: Any) -> Any:
    """What ``engine`` loads for ``artifact``: the artifact itself (the engine picks its form), except for a
    model file in a form the engine does not prefer, which it runs as it is (by path, as ``parity --model``
    does: DeepSparse on a QDQ graph, ONNX Runtime on ConvInteger)."""
    if not is_model_file(artifact):
        return artifact
    forms = artifact.forms()
    if not forms or forms[0] in getattr(engine, "preferred_forms", ()):
        return artifact
    return artifact.onnx_path(forms[0], artifact.imgsz)


# --- measuring the file ---


def conv_sparsity(model) -> dict:
    """Fraction of exact zeros in the convolution weights of an ONNX graph (``onnx.ModelProto``): overall
    and per node, as ``modelio.sparsity_report`` reports a PyTorch model's 4-D weights.

    Float weights count their zeros; quantized ones (through DequantizeLinear, or ConvInteger's and
    QLinearConv's integer weights) count the values equal to their zero point, which dequantize to 0."""
    import numpy as np  # noqa: PLC0415
    from onnx import numpy_helper  # noqa: PLC0415

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def array(name: str):
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = producers.get(name)
        if node is not None and node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    return numpy_helper.to_array(attribute.t)
        return None

    def zero_mask(weights, zero_point):
        if zero_point is None or zero_point.size == 1:
            return weights == (0 if zero_point is None else zero_point.reshape(()))
        return weights == zero_point.reshape((-1,) + (1,) * (weights.ndim - 1))  # per output channel

    def weight_zeros(name: str, zero_point_name: str | None = None):
        weights = array(name)
        if weights is not None:
            zp = array(zero_point_name) if zero_point_name else None
            return zero_mask(weights, zp)
        node = producers.get(name)
        if node is None:
            return None
        if node.op_type == "DequantizeLinear":
            return weight_zeros(node.input[0], node.input[2] if len(node.input) > 2 and node.input[2] else None)
        if node.op_type == "QuantizeLinear":  # a float weight quantized in the graph: its zeros stay zero
            return weight_zeros(node.input[0])
        return None

    per_layer, zeros, total = {}, 0, 0
    for index, node in enumerate(graph.node):
        if node.op_type == "Conv":
            mask = weight_zeros(node.input[1])
        elif node.op_type == "ConvInteger":
            mask = weight_zeros(node.input[1], node.input[3] if len(node.input) > 3 and node.input[3] else None)
        elif node.op_type == "QLinearConv":
            mask = weight_zeros(node.input[3], node.input[5])
        else:
            continue
        if mask is None or np.ndim(mask) != 4:
            continue
        n_zero = int(np.count_nonzero(mask))
        per_layer[node.name or f"{node.op_type}_{index}"] = round(n_zero / mask.size, 4)
        zeros += n_zero
        total += int(mask.size)
    return {"overall": round(zeros / total, 4) if total else None, "per_layer": per_layer,
            "source": "ONNX convolution weights"}


def onnx_map(path: Path, data_yaml: Path, imgsz: int) -> dict:
    """mAP of the file on ONNX Runtime over the validation split of ``data_yaml`` (``yolobench.evaluate``)."""
    from yolobench import engines  # noqa: PLC0415
    from yolobench.evaluate import evaluate  # noqa: PLC0415

    try:
        session = engines.get("onnxruntime").load(path, batch=1, imgsz=imgsz)
    except engines.EngineUnsupported as err:
        return {"map50": None, "map50_95": None, "source": f"not measured: {err.reason}"}
    metrics = evaluate(session.run, data_yaml, imgsz)
    return {**metrics, "engine": "onnxruntime", "source": f"ONNX Runtime on {data_yaml}"}


def _versions() -> dict:
    from importlib import metadata  # noqa: PLC0415

    out = {}
    for dist in ("onnx", "onnxruntime", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def import_key(model: ModelFile, dataset_hash: str | None) -> str:
    from yolobench.store import content_key  # noqa: PLC0415

    parts = {"model_file": model.sha256, "imgsz": model.imgsz, "dataset": dataset_hash,
             "importer": IMPORTER_VERSION}
    if dataset_hash is not None:  # the mAP is ONNX Runtime's
        parts["onnxruntime"] = _versions()["onnxruntime"]
    return content_key(parts)


def import_model_file(path: str | os.PathLike, store=None, data: str | os.PathLike | None = None, *,
                      imgsz: int | None = None, progress: Callable[[str], None] | None = None):
    """The file as an artifact of the store (imported once per content, data and size): see the module
    docstring for what it records. :class:`UserError` for a file or data that cannot be used."""
    import time  # noqa: PLC0415

    import onnx  # noqa: PLC0415

    from yolobench.store import Store, onnx_filename, sha256_file  # noqa: PLC0415

    say = progress or (lambda message: None)
    store = store if store is not None else Store()
    model, = describe_all([path], imgsz, data)
    data_yaml = Path(data).expanduser().resolve() if data is not None else None
    info = read_dataset(data_yaml, decode_images=False) if data_yaml is not None else None
    key = import_key(model, info.content_hash if info is not None else None)

    def build(work: Path, out: Path) -> dict:
        started = time.time()
        target = out / onnx_filename(model.form, model.imgsz)
        say(f"[{model.name}] importing {model.path}")
        shutil.copyfile(model.path, target)
        if sha256_file(target) != model.sha256:
            raise UserError(f"{model.path}: the file changed while it was imported; run again")
        graph = onnx.load(str(target), load_external_data=False)
        names = _onnx_names(graph)
        if info is not None:
            checked = read_dataset(data_yaml, decode_images=True)
            say(f"[{model.name}] measuring mAP at {model.imgsz} px on {data_yaml} (ONNX Runtime)")
            metrics = onnx_map(target, data_yaml, model.imgsz)
            dataset = {"data_yaml": str(data_yaml), "hash": checked.content_hash, "domain": "target",
                       "generator_domain": None, "names": {int(k): v for k, v in checked.names.items()},
                       "train_images": checked.train_images, "val_images": checked.val_images,
                       "eval_data_yaml": {str(model.imgsz): str(data_yaml)}}
        else:
            metrics = {"map50": None, "map50_95": None, "source": "not measured: no --data (labels) given"}
            dataset = {"data_yaml": None, "hash": None, "names": names, "eval_data_yaml": {}}
        return {
            "variant": model.name,
            "description": f"model file {model.path.name} ({model.form} graph), imported as it is",
            "profile": None,  # not built under a profile
            "parent": None,
            "recipe": None,
            "model": model.path.name,
            "origin": {"model_file": str(model.path), "sha256": model.sha256, "form": model.form,
                       "dynamic_input": model.dynamic, "opset": max((o.version for o in graph.opset_import
                                                                      if o.domain in ("", "ai.onnx")), default=0),
                       "producer": f"{graph.producer_name} {graph.producer_version}".strip() or None},
            "dataset": dataset,
            "quantized": model.quantized,
            "forms": [model.form],
            "export_imgsz": [model.imgsz],
            "versions": _versions(),
            "sparsity": conv_sparsity(graph),
            "metrics": metrics,
            "metrics_by_imgsz": {str(model.imgsz): metrics},
            "file_sizes": {target.name: target.stat().st_size},
            "build_seconds": round(time.time() - started, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    return store.build(model.name, key, build)


def _onnx_names(graph) -> dict[int, str]:
    """Class names from ultralytics' ONNX metadata (``names``), else {} (``engines.base.class_names``)."""
    from yolobench.engines.base import class_names  # noqa: PLC0415

    meta = {p.key: p.value for p in graph.metadata_props}
    return class_names(meta.get("names")) or {}


# --- what `yolobench bench --model` records (its command side lives in yolobench.commands.bench) ---

RUN_FILE_KEY = "yolobench_model_parity"  # machine_info[...] of the run file: every file's verdict
