"""The user's own model (``--weights`` / ``--source-weights``): read a checkpoint, safely, into what the
builder needs.

``load_checkpoint(path)`` takes

- an ultralytics 8.4 detection checkpoint as ``yolo train`` writes it (``best.pt`` / ``last.pt``: a dict
  whose ``ema`` or ``model`` entry is a pickled ``DetectionModel``; the EMA weights are taken where present,
  as ultralytics itself does; half tensors become float32), of any family with a plain ``Detect`` head
  (YOLOv5u, YOLOv8, YOLO11; YOLOv3/v6/v9/YOLO12 load the same way), or
- a yolobench artifact's ``weights.pt`` (``modelio.save_weights``: state_dict, model YAML, classes and
  recipe), or the artifact folder that holds it,

and returns a :class:`Checkpoint`: the model YAML, classes, a float32 state_dict that loads strictly into
``modelio.build_model(cfg, nc)`` (checked here), the file's sha256 (part of every artifact key derived from
it) and, for a yolobench artifact, its recipe. ``model_from(ckpt)`` rebuilds the network;
``check_names`` compares the checkpoint's classes with the dataset's. Every bad input is a one-line
:class:`UserError` naming the file, and nothing is written anywhere.

Why no checkpoint runs code: a ``.pt`` file is a pickle, and unpickling can call any function it names
(``os.system``, ``open``); ultralytics' default loader (``weights_only=False``) runs whatever a file asks
for. yolobench never does. Its own format holds only tensors and plain data, and is read with
``torch.load(weights_only=True)``; an ultralytics checkpoint also holds its network's layer objects, so it is
read with ``weights_only=True`` plus an allowlist of exactly the classes such a file pickles, derived from
the libraries: ``ultralytics.nn.tasks.DetectionModel``, every ``nn.Module`` subclass defined in
``ultralytics.nn.modules.*`` (less ``TorchVision``, whose constructor downloads weights), every
``nn.Module`` subclass defined in ``torch.nn.modules.*``, and ``ultralytics.utils.IterableSimpleNamespace``
(the training arguments an interrupted run's ``last.pt`` keeps). These are data classes to torch's restricted
unpickler (created empty, their state filled in); no function, no ``builtins``/``os``/``subprocess`` name is
on the list, and the list handed to torch for one file holds only the globals that file names. A file
that names anything else is refused, never re-read with ``weights_only=False``: the way to hand over a
model yolobench cannot read like that is an ONNX export (``yolo export format=onnx``), which is data, not
code. The model YAML inside a checkpoint is checked too before anything is built from it, because
ultralytics' ``parse_model`` ``eval()``s the ``activation`` string and looks layer names up among its
module's globals: only ``nn.<Activation>(<literals>)`` and known layer classes pass.

End-to-end (NMS-free) detection heads are refused: a ``v10Detect`` (YOLOv10) or a ``Detect`` with a
one-to-one branch (YOLO26 ``end2end: True``) is a different head from the one the ladder's recipes, exports
and NMS evaluation are written for (it also computes a second branch in every forward). So are
segmentation, pose, OBB, classification, RT-DETR, YOLO-World and YOLOE models: ``SegmentationModel`` and
friends subclass ``DetectionModel``, so the check is on the exact model class and head class (and the
``task`` the checkpoint records), never ``isinstance``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import io
import pickle
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yolobench import offline
from yolobench.errors import UserError
from yolobench.store import WEIGHTS_NAME

offline.apply()

if TYPE_CHECKING:  # pragma: no cover
    from ultralytics.nn.tasks import DetectionModel

KIND_ULTRALYTICS = "ultralytics"
KIND_YOLOBENCH = "yolobench"

SAFE_HANDOVER = ("yolobench loads checkpoints without running code from them; export the model to ONNX "
                 "(`yolo export model=<file> format=onnx`), the safe way to hand over a model")
WHAT_TO_PASS = "pass best.pt or last.pt from `yolo train` of a detection model, or a yolobench artifact's weights.pt"

# ultralytics model classes (ultralytics.nn.tasks) that are not plain detection, and what they are
TASK_MODELS = {
    "SegmentationModel": "segmentation", "YOLOESegModel": "YOLOE segmentation", "PoseModel": "pose",
    "OBBModel": "oriented-box (OBB)", "ClassificationModel": "classification",
    "SemanticSegmentationModel": "semantic segmentation", "DepthModel": "depth estimation",
    "RTDETRDetectionModel": "RT-DETR", "WorldModel": "YOLO-World (open-vocabulary)",
    "YOLOEModel": "YOLOE (open-vocabulary)", "DistillationModel": "distillation (teacher + student)",
}
# ... and head classes (ultralytics.nn.modules.head), for a model class that does not say
TASK_HEADS = {
    "Segment": "segmentation", "Segment26": "segmentation", "YOLOESegment": "YOLOE segmentation",
    "YOLOESegment26": "YOLOE segmentation", "Pose": "pose", "Pose26": "pose", "OBB": "oriented-box (OBB)",
    "OBB26": "oriented-box (OBB)", "Classify": "classification", "SemanticSegment": "semantic segmentation",
    "Depth": "depth estimation", "RTDETRDecoder": "RT-DETR", "WorldDetect": "YOLO-World (open-vocabulary)",
    "YOLOEDetect": "YOLOE (open-vocabulary)",
}
TASK_NAMES = {"segment": "segmentation", "pose": "pose", "obb": "oriented-box (OBB)", "classify": "classification",
              "semantic": "semantic segmentation", "depth": "depth estimation"}
END_TO_END_GLOBALS = {"ultralytics.nn.tasks.YOLOv10DetectionModel", "ultralytics.nn.modules.head.v10Detect"}
# ultralytics layers whose constructor reaches outside the process (TorchVision downloads weights)
UNSAFE_LAYERS = frozenset({"TorchVision"})
PLAIN_TYPES = (str, int, float, bool, type(None))
MAX_DEPTH, MAX_MODULES = 64, 200_000  # far beyond any YOLO; a pickled cycle of modules stops here
_GLOBAL_IN_ERROR = re.compile(r"GLOBAL (\S+) was not an allowed global")


@dataclass(frozen=True, eq=False)  # eq=False: compared (and hashed) by identity, never tensor by tensor
class Checkpoint:
    path: Path  # resolved
    sha256: str  # of the file's bytes (hex); part of every artifact key derived from it
    kind: str  # "ultralytics" (a `yolo train` best.pt/last.pt) | "yolobench" (an artifact's weights.pt)
    cfg: dict  # model YAML dict: modelio.build_model(cfg, nc) rebuilds the network
    nc: int
    names: dict  # int -> str
    state_dict: dict = field(repr=False)  # name -> tensor (float32 where floating), loads strictly (see module doc)
    recipe: str | None = None  # yolobench artifact's recipe text (None for ultralytics checkpoints)
    recipe_variables: dict = field(default_factory=dict)
    family: str = "custom"  # short name of the network: "yolov8n", "yolov5nu", "yolo11n"
    train_imgsz: int | None = None  # imgsz the checkpoint was trained at, when it says
    widths: dict = field(default_factory=dict)  # a thinned network's channel counts (modelio.thin_model)

    @property
    def quantized(self) -> bool:
        return bool(self.recipe) and "QuantizationModifier" in self.recipe


# --- public API ----------------------------------------------------------------------------------------
def load_checkpoint(path) -> Checkpoint:
    """Read and check ``path`` (a checkpoint file or a yolobench artifact folder); see the module doc."""
    file = _resolve(path)
    data = _read(file)
    digest = hashlib.sha256(data).hexdigest()
    blob = _unpickle(file, data)
    if not isinstance(blob, dict):
        raise UserError(f"{file}: holds a {type(blob).__name__}, not a checkpoint dict; {WHAT_TO_PASS}")
    try:
        if "model" in blob or "ema" in blob:
            ckpt = _from_ultralytics(file, digest, blob)
        elif any(key in blob for key in ("state_dict", "cfg", "recipe")):
            ckpt = _from_yolobench(file, digest, blob)
        else:
            keys = ", ".join(sorted(map(str, blob))[:6]) or "none"
            raise UserError(f"{file}: not a checkpoint yolobench knows (its keys: {keys}); {WHAT_TO_PASS}")
    except (AttributeError, TypeError, KeyError, IndexError) as err:  # objects laid out unlike ultralytics' own
        raise UserError(f"{file}: its contents are not laid out as a checkpoint ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:100]}); {WHAT_TO_PASS}") from None
    _check_loads(ckpt)
    return ckpt


def model_from(ckpt: Checkpoint) -> "DetectionModel":
    """The checkpoint's network, rebuilt from its YAML (recipe structure re-applied), weights loaded
    strictly, ``.names`` set, in eval mode."""
    model = _build(ckpt)
    model.load_state_dict(ckpt.state_dict, strict=True)
    model.names = dict(ckpt.names)
    return model.eval()


def check_names(ckpt: Checkpoint, dataset_names: dict, data_label: str) -> None:
    """UserError unless the dataset has the checkpoint's classes, in the same order."""
    ours = _ordered(ckpt.names)
    theirs = _ordered(dataset_names)
    if ours == theirs:
        return
    message = (f"{ckpt.path} was trained on {len(ours)} classes ({_show_names(ours)}); {data_label} has "
               f"{len(theirs)} ({_show_names(theirs)}): they must be the same classes in the same order")
    if len(ours) == len(theirs):
        index = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
        message += f" (class {index} is {ours[index]!r} in the checkpoint, {theirs[index]!r} in the data)"
    raise UserError(message)


# --- reading the file ----------------------------------------------------------------------------------
def _resolve(path) -> Path:
    given = Path(path).expanduser()
    if given.is_dir():
        if not (given / WEIGHTS_NAME).is_file():
            raise UserError(f"{given.resolve()}: a folder without {WEIGHTS_NAME}; pass a checkpoint file "
                            f"(best.pt from `yolo train`) or a yolobench artifact folder")
        given = given / WEIGHTS_NAME
    if not given.exists():
        raise UserError(f"{given}: no such file; {WHAT_TO_PASS}")
    if not given.is_file():
        raise UserError(f"{given}: not a regular file; {WHAT_TO_PASS}")
    return given.resolve()


def _read(file: Path) -> bytes:
    try:
        data = file.read_bytes()
    except OSError as err:
        raise UserError(f"{file}: cannot be read ({err.strerror or err}); check its permissions") from None
    if not data:
        raise UserError(f"{file}: is empty; {WHAT_TO_PASS}")
    return data


def _damaged(file: Path, err: BaseException) -> UserError:
    text = " ".join(str(err).split())
    if "central directory" in text or isinstance(err, EOFError):
        detail = "truncated or damaged: the archive ends early"
    elif any(s in text for s in ("hasRecord", "not in a subdirectory", "data.pkl")):
        detail = "a zip archive, but not one torch.save wrote"
    else:
        detail = f"damaged: {text.split('. ')[0][:100] or type(err).__name__}"
    return UserError(f"{file}: not a readable PyTorch checkpoint ({detail}); {WHAT_TO_PASS}")


def _unpickle(file: Path, data: bytes):
    """The file's object, unpickled with ``weights_only=True`` and only the allowlisted globals it names."""
    import torch

    if not data.startswith(b"PK"):  # torch.save has written zip archives since torch 1.6
        raise UserError(f"{file}: not a PyTorch checkpoint (torch.save writes a zip archive, this file is not one); "
                        f"{WHAT_TO_PASS}")
    try:  # a static scan of the pickle (nothing is unpickled): the globals beyond torch's own safe set
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except ValueError as err:
        if "torchscript" in str(err).lower():
            raise UserError(f"{file}: is a TorchScript archive, not a training checkpoint; {WHAT_TO_PASS}") from None
        raise _damaged(file, err) from None
    except Exception as err:  # noqa: BLE001 - miniz/pickle errors of a damaged file come as many types
        raise _damaged(file, err) from None
    allow = allowlist()
    for name in needed:
        _refuse_other_task(file, name)
    refused = sorted(name for name in needed if name not in allow)
    if refused:
        raise _refuse_global(file, refused[0])
    with torch.serialization.safe_globals([allow[name] for name in sorted(set(needed))]):
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:  # a global the static scan could not see
            match = _GLOBAL_IN_ERROR.search(str(err))
            if match:
                _refuse_other_task(file, match.group(1))
                raise _refuse_global(file, match.group(1)) from None
            if "WeightsUnpickler error" in str(err):
                detail = str(err).split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0][:160]
                raise UserError(f"{file}: refused ({detail}); {SAFE_HANDOVER}") from None
            raise _damaged(file, err) from None
        except Exception as err:  # noqa: BLE001 - truncated/damaged archives raise RuntimeError, EOFError, ...
            raise _damaged(file, err) from None


def _refuse_global(file: Path, name: str) -> UserError:
    why = (" (pickled for a model saved after .fuse(), whose layers hold bound methods)"
           if name == "builtins.getattr" else "")
    return UserError(f"{file}: needs {name} to load{why}, which is not one of the classes an ultralytics detection "
                     f"checkpoint holds; {SAFE_HANDOVER}")


def _refuse_other_task(file: Path, global_name: str) -> None:
    module, _, name = global_name.rpartition(".")
    if not module.startswith("ultralytics."):
        return
    if global_name in END_TO_END_GLOBALS:
        raise _refuse_end_to_end(file, "yolov10")
    if name in TASK_MODELS:
        raise _refuse_task(file, TASK_MODELS[name])


def _refuse_task(file: Path, task: str) -> UserError:
    article = "an" if task[0].lower() in "aeiou" else "a"
    return UserError(f"{file}: is {article} {task} model; yolobench takes detection models (`yolo train` of a "
                     "detect model such as yolov8n.yaml or yolo11n.yaml)")


def _refuse_end_to_end(file: Path, family: str) -> UserError:
    return UserError(f"{file}: is an end-to-end (NMS-free) detection model ({family}: its head has a one-to-one "
                     "branch); yolobench takes detection models decoded with NMS (YOLOv5u, YOLOv8, YOLO11, ...)")


@functools.cache
def allowlist() -> dict[str, type]:
    """``"module.Class"`` -> class: every class an ultralytics detection checkpoint may pickle (module doc)."""
    import torch.nn as nn
    import torch.nn.modules
    import ultralytics.nn.modules
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import IterableSimpleNamespace

    allowed: dict[str, type] = {}
    for package, skip in ((ultralytics.nn.modules, UNSAFE_LAYERS), (torch.nn.modules, frozenset())):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if (isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__
                        and obj.__name__ not in skip):
                    allowed[f"{obj.__module__}.{obj.__qualname__}"] = obj
    for obj in (DetectionModel, IterableSimpleNamespace):
        allowed[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return allowed


# --- the two formats -----------------------------------------------------------------------------------
def _from_ultralytics(file: Path, digest: str, blob: dict) -> Checkpoint:
    import torch.nn as nn
    from ultralytics.nn.modules.head import Detect
    from ultralytics.nn.tasks import DetectionModel

    model = blob.get("ema") if blob.get("ema") is not None else blob.get("model")
    if model is None:
        raise UserError(f"{file}: holds no model (its 'ema' and 'model' entries are empty); {WHAT_TO_PASS}")
    train_args = blob.get("train_args") if isinstance(blob.get("train_args"), dict) else {}
    attrs = vars(model) if isinstance(model, nn.Module) else {}
    model_args = attrs.get("args")  # a dict once stripped, an IterableSimpleNamespace in an unstripped last.pt
    model_args = model_args if isinstance(model_args, dict) else getattr(model_args, "__dict__", {})
    if type(model) is not DetectionModel:
        name = type(model).__name__
        if name in TASK_MODELS:
            raise _refuse_task(file, TASK_MODELS[name])
        raise UserError(f"{file}: holds a {name}, not an ultralytics DetectionModel; {WHAT_TO_PASS}")
    for task in (train_args.get("task"), model_args.get("task")):
        if isinstance(task, str) and task != "detect":
            raise _refuse_task(file, TASK_NAMES.get(task, task))
    cfg = _check_cfg(file, attrs.get("yaml"))
    layers = attrs.get("_modules", {}).get("model")
    children = list(vars(layers).get("_modules", {}).values()) if isinstance(layers, nn.Sequential) else []
    head = children[-1] if children else None
    if type(head) is not Detect:
        kind = type(head).__name__
        if kind == "v10Detect":
            raise _refuse_end_to_end(file, _family(cfg))
        if kind in TASK_HEADS:
            raise _refuse_task(file, TASK_HEADS[kind])
        raise UserError(f"{file}: its last layer is {kind}, not ultralytics' Detect head; {WHAT_TO_PASS}")
    if vars(head).get("_modules", {}).get("one2one_cv2") is not None or cfg.get("end2end"):
        raise _refuse_end_to_end(file, _family(cfg))
    nc = vars(head).get("nc")
    if not isinstance(nc, int) or isinstance(nc, bool) or nc < 1:
        raise UserError(f"{file}: its Detect head has no valid class count ({nc!r}); {WHAT_TO_PASS}")
    names = _names(file, attrs.get("names"), nc)
    return Checkpoint(path=file, sha256=digest, kind=KIND_ULTRALYTICS, cfg=cfg, nc=nc, names=names,
                      state_dict=_state_dict(file, model), recipe=None, recipe_variables={},
                      family=_family(cfg), train_imgsz=_imgsz(train_args.get("imgsz")))


def _from_yolobench(file: Path, digest: str, blob: dict) -> Checkpoint:
    import torch

    missing = [key for key in ("state_dict", "cfg", "nc") if key not in blob]
    if missing:
        raise UserError(f"{file}: a yolobench weights file without {', '.join(repr(k) for k in missing)}; "
                        "pass the unmodified weights.pt of a yolobench artifact")
    nc = blob["nc"]
    if not isinstance(nc, int) or isinstance(nc, bool) or nc < 1:
        raise UserError(f"{file}: 'nc' is {nc!r}, not a class count; pass the unmodified weights.pt of a "
                        "yolobench artifact")
    state = blob["state_dict"]
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UserError(f"{file}: 'state_dict' is not a mapping of names to tensors; pass the unmodified weights.pt "
                        "of a yolobench artifact")
    cfg = _check_cfg(file, blob["cfg"])
    recipe = blob.get("recipe")
    variables = blob.get("recipe_variables") or {}
    if recipe is not None and not isinstance(recipe, str) or not isinstance(variables, dict) or not _plain(variables):
        raise UserError(f"{file}: its recipe is not text with a mapping of variables; pass the unmodified weights.pt "
                        "of a yolobench artifact")
    if recipe:
        from yolobench.recipes import validate_recipe

        validate_recipe(file, recipe, variables)
    names = _names(file, blob.get("names"), nc)
    widths = blob.get("widths") or {}
    if not isinstance(widths, dict) or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                                               for k, v in widths.items()):
        raise UserError(f"{file}: its 'widths' is not a mapping of layer names to channel counts; pass the "
                        "unmodified weights.pt of a yolobench artifact")
    return Checkpoint(path=file, sha256=digest, kind=KIND_YOLOBENCH, cfg=cfg, nc=nc, names=names,
                      state_dict={k: _float32(v) for k, v in state.items()}, recipe=recipe or None,
                      recipe_variables=dict(variables), family=_family(cfg), train_imgsz=None,
                      widths=dict(widths))


# --- checks --------------------------------------------------------------------------------------------
def _plain(value, depth: int = 0) -> bool:
    """Only str/int/float/bool/None in (nested) lists, tuples and dicts with plain keys."""
    if depth > 32:
        return False
    if isinstance(value, PLAIN_TYPES):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, PLAIN_TYPES) and _plain(v, depth + 1) for k, v in value.items())
    return False


@functools.cache
def _layer_names() -> frozenset[str]:
    """Names a model YAML may use for a layer without the ``nn.`` prefix: ultralytics' own layer classes,
    as ``parse_model`` looks them up (``ultralytics.nn.tasks`` globals)."""
    import torch.nn as nn
    import ultralytics.nn.tasks as tasks

    return frozenset(name for name, obj in vars(tasks).items()
                     if isinstance(obj, type) and issubclass(obj, nn.Module) and name not in UNSAFE_LAYERS
                     and obj.__module__.startswith("ultralytics.nn.modules."))


def _torch_nn_class(name: str, base_module: str | None = None):
    import torch.nn as nn

    obj = getattr(nn, name, None) if name.isidentifier() else None
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        return None
    if base_module and obj.__module__ != base_module and obj is not nn.Identity:
        return None
    return obj


def _literal(node) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float, bool, type(None)))
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _literal(node.operand)


def _safe_activation(text) -> bool:
    """``nn.X(...)`` / ``torch.nn.X(...)`` with X a torch activation and only number/bool/None arguments:
    the only shape ultralytics documents, and safe for the ``eval()`` parse_model runs on it."""
    if not isinstance(text, str) or len(text) > 200:
        return False
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return False
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
        return False
    owner = call.func.value
    dotted = (owner.id if isinstance(owner, ast.Name) else
              f"{owner.value.id}.{owner.attr}" if isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name)
              else None)
    if dotted not in ("nn", "torch.nn"):
        return False
    if _torch_nn_class(call.func.attr, "torch.nn.modules.activation") is None:
        return False
    return all(_literal(a) for a in call.args) and all(k.arg and _literal(k.value) for k in call.keywords)


def _check_cfg(file: Path, cfg) -> dict:
    """The model YAML, checked so that building it runs nothing but ultralytics' own layer constructors."""
    bad = f"{file}: its model YAML is not one ultralytics builds"
    if not isinstance(cfg, dict) or not _plain(cfg):
        raise UserError(f"{bad} (not a mapping of plain values); {WHAT_TO_PASS}")
    rows = cfg.get("backbone"), cfg.get("head")
    if not all(isinstance(part, list) and part for part in rows):
        raise UserError(f"{bad} (no 'backbone' and 'head' lists); {WHAT_TO_PASS}")
    layers = _layer_names()
    for index, row in enumerate(rows[0] + rows[1]):
        if not (isinstance(row, (list, tuple)) and len(row) == 4 and isinstance(row[2], str)
                and isinstance(row[3], list)):
            raise UserError(f"{bad} (layer {index} is not [from, repeats, module, args]); {WHAT_TO_PASS}")
        module = row[2]
        ok = (_torch_nn_class(module[3:]) is not None) if module.startswith("nn.") else module in layers
        if not ok:
            raise UserError(f"{bad} (layer {index} is {module!r}, not an ultralytics or torch.nn layer); "
                            f"{SAFE_HANDOVER}")
    if cfg.get("activation") is not None and not _safe_activation(cfg["activation"]):
        raise UserError(f"{bad} (activation {str(cfg['activation'])[:60]!r} is not nn.<Activation>(<numbers>)); "
                        f"{SAFE_HANDOVER}")
    return cfg


def _names(file: Path, names, nc: int) -> dict[int, str]:
    if names is None:
        return {i: str(i) for i in range(nc)}
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        raise UserError(f"{file}: its class names are not a list or an id -> name mapping; {WHAT_TO_PASS}")
    try:
        names = {int(k): v for k, v in names.items()}
    except (TypeError, ValueError):
        raise UserError(f"{file}: its class names have ids that are not integers; {WHAT_TO_PASS}") from None
    if sorted(names) != list(range(nc)):
        raise UserError(f"{file}: has {len(names)} class names for {nc} classes; {WHAT_TO_PASS}")
    return dict(sorted(names.items()))


def _float32(tensor):
    tensor = tensor.detach()
    return tensor.float() if tensor.is_floating_point() else tensor


def _state_dict(file: Path, model) -> dict:
    """``model.state_dict()`` computed from the modules' dictionaries, so no method (or hook) of an object
    read from the file runs; floating tensors as float32."""
    import torch
    import torch.nn as nn

    out: dict[str, Any] = {}
    stack = [("", model, 0)]  # a layer may sit at several places (ultralytics shares one activation module)
    visited = 0
    while stack:
        prefix, module, depth = stack.pop()
        visited += 1
        if not isinstance(module, nn.Module) or depth > MAX_DEPTH or visited > MAX_MODULES:
            raise UserError(f"{file}: its model is not a tree of layers; {WHAT_TO_PASS}")
        attrs = vars(module)
        skip = attrs.get("_non_persistent_buffers_set") or set()
        for group in ("_parameters", "_buffers"):
            for name, value in (attrs.get(group) or {}).items():
                if value is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise UserError(f"{file}: {prefix}{name} is not a tensor; {WHAT_TO_PASS}")
                out[prefix + name] = _float32(value)
        children = [(f"{prefix}{name}.", child, depth + 1) for name, child in (attrs.get("_modules") or {}).items()
                    if child is not None]
        stack.extend(reversed(children))
    return out


def _family(cfg: dict) -> str:
    """``yolov8n`` from ``yaml_file: yolov8n.yaml``; the scale is put in (``yolov8`` + n) where the name lacks it."""
    from ultralytics.nn.tasks import guess_model_scale

    source = cfg.get("yaml_file")
    stem = Path(source).stem if isinstance(source, str) and source else ""
    scale = cfg.get("scale") if isinstance(cfg.get("scale"), str) else ""
    if stem and scale and not guess_model_scale(stem + ".yaml"):
        stem, count = re.subn(r"^(yolo(?:e-)?v?\d+)", rf"\g<1>{scale}", stem)
        if not count:
            stem = f"{stem}-{scale}"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")
    return stem[:40] or "custom"


def _imgsz(value) -> int | None:
    if isinstance(value, (list, tuple)) and value and all(v == value[0] for v in value):
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _ordered(names) -> list[str]:
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    return [str(names[k]) for k in sorted(names, key=int)]


def _show_names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... {len(names) - limit} more" if len(names) > limit else "") if names else "none"


# --- rebuilding ----------------------------------------------------------------------------------------
def _build(ckpt: Checkpoint):
    from yolobench import modelio

    model = modelio.build_model(ckpt.cfg, ckpt.nc)
    modelio.apply_widths(model, ckpt.widths)
    if ckpt.recipe:
        modelio.apply_recipe_structure(model, ckpt.recipe, ckpt.recipe_variables)
    return model


def _check_loads(ckpt: Checkpoint) -> None:
    """UserError unless the state_dict loads strictly into the network its YAML (and recipe) builds."""
    redo = ("pass the unmodified weights.pt of a yolobench artifact" if ckpt.kind == KIND_YOLOBENCH
            else "pass the best.pt or last.pt `yolo train` wrote (not a fused or edited model)")
    from yolobench import modelio

    def detail(err: BaseException) -> str:
        return f"{type(err).__name__}: {' '.join(str(err).split())[:120]}"

    try:
        model = modelio.build_model(ckpt.cfg, ckpt.nc)
    except Exception as err:  # noqa: BLE001 - ultralytics raises KeyError/IndexError/TypeError/... for a bad YAML
        raise UserError(f"{ckpt.path}: its model YAML does not build ({detail(err)}); {redo}") from None
    try:
        modelio.apply_widths(model, ckpt.widths)
    except ValueError as err:
        raise UserError(f"{ckpt.path}: its channel widths do not fit its model YAML ({err}); {redo}") from None
    if ckpt.recipe:
        try:
            modelio.apply_recipe_structure(model, ckpt.recipe, ckpt.recipe_variables)
        except Exception as err:  # noqa: BLE001 - sparseml raises many types for a recipe that does not fit
            raise UserError(f"{ckpt.path}: its recipe does not apply to its network ({detail(err)}); {redo}") from None
    try:
        result = model.load_state_dict(ckpt.state_dict, strict=False)
    except RuntimeError as err:  # shape mismatches
        detail = " ".join(str(err).split("\n\t", 1)[-1].split())[:160]
        raise UserError(f"{ckpt.path}: its weights do not fit its model YAML ({detail}); {redo}") from None
    problems = []
    if result.missing_keys:
        problems.append(f"{len(result.missing_keys)} missing, e.g. {result.missing_keys[0]}")
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} unexpected, e.g. {result.unexpected_keys[0]}")
    if problems:
        raise UserError(f"{ckpt.path}: its weights do not fit its model YAML ({'; '.join(problems)}); {redo}")
