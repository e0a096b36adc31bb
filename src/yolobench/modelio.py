"""Model building, saving, loading and ONNX export for the builder and the PyTorch engine.

- ``model_config(spec_model)`` turns a catalogue model reference (``yolov5su``, ``yolov5nu`` or a
  ``recipes/*.model.yaml`` override) into the YAML dict ultralytics builds a DetectionModel from.
- ``save_weights`` / ``load_artifact_model``: weights are a state_dict plus the model YAML and the
  recipe, because ``torch.save`` of a SparseML QAT model fails (unpicklable observer factories); on
  load the model is rebuilt, the recipe's structure re-applied, and the state_dict loaded *strictly*
  (ultralytics' own loader silently drops unknown keys).
- ``export_fp32`` / ``export_quantized``: the ONNX forms each engine is fast on (see store.FORMS).
- ``drop_dead_channels``: a float model whose structured pruning left channels that are zero for every
  input runs without them (smaller convolutions on every engine, the same function).

Hardswish: DeepSparse 1.8 has no kernel for ONNX ``HardSwish``; every exported graph writes it as
``x * clip(x + 3, 0, 6) / 6`` (exactly equal), see ``replace_hardswish``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn as nn
import yaml

from yolobench import offline, paths, shims
from yolobench.errors import UserError

offline.apply()

from ultralytics.nn.tasks import DetectionModel, yaml_model_load  # noqa: E402

ONNX_OPSET = 13  # DeepSparse 1.8 and sparseml's QAT conversion are tested at 13; ORT/OpenVINO take it


# Bumped when the export of Hardswish models changes (part of their artifact key, see builder).
# 2: the forward is rewritten in place; revision 1 replaced the module and so dropped the fake-quant
#    observer torch's QAT attaches to each nn.Hardswish: the integer graphs then disagreed with the
#    PyTorch model (score differences up to 0.33, measured by the parity tests).
HARDSWISH_EXPORT_REVISION = 2


def _exportable_hardswish_forward(self, x):
    return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def replace_hardswish(model: nn.Module) -> int:
    """Make every nn.Hardswish trace as Add/Clip/Mul/Div; returns how many were changed.

    The module objects stay (only their forward changes), so the forward hooks and
    ``activation_post_process`` observers QAT attached to them are exported too.
    """
    import types

    count = 0
    for module in model.modules():
        if isinstance(module, nn.Hardswish):
            module.forward = types.MethodType(_exportable_hardswish_forward, module)
            count += 1
    return count


def model_config(ref: str) -> dict:
    """YAML dict for a catalogue model reference.

    ``yolov5su`` / ``yolov5nu`` come from ultralytics' own YAML; a path ending in ``.model.yaml``
    under recipes/ is an override: ``base`` (an ultralytics model name) plus keys to replace, such as
    ``activation: nn.Hardswish()``.
    """
    if ref.endswith(".yaml") and "/" in ref:
        path = paths.repo_root() / ref
        try:
            override = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise UserError(f"cannot read model YAML {path}: {err}; fix or restore the file") from err
        if not isinstance(override, dict) or "base" not in override:
            raise UserError(f"{path}: a model override needs a 'base' key (e.g. base: yolov5nu)")
        cfg = copy.deepcopy(yaml_model_load(f"{override['base']}.yaml"))
        for key, value in override.items():
            if key != "base" and not key.startswith("_"):
                cfg[key] = value
        return cfg
    return copy.deepcopy(yaml_model_load(f"{ref}.yaml"))


class RawHead(nn.Module):
    """Wraps a DetectionModel so forward returns only the decoded head tensor (B, 4+nc, N)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return out[0] if isinstance(out, (tuple, list)) else out


def _set_export_mode(model: nn.Module) -> None:
    for module in model.modules():
        if module.__class__.__name__ in ("Detect",):
            module.export = True
            module.format = "onnx"
            module.dynamic = False


def build_model(cfg: dict, nc: int) -> DetectionModel:
    model = DetectionModel(copy.deepcopy(cfg), nc=nc, ch=3, verbose=False)
    shims.own_activations(model)  # before any recipe: QAT must not touch ultralytics' shared activation
    return model


def apply_recipe_structure(model: nn.Module, recipe_text: str, recipe_variables: dict | None) -> None:
    """Re-create the QAT wrappers a finished recipe leaves in the model (no-op for pruning only)."""
    shims.apply()
    from sparseml.pytorch.optim import ScheduledModifierManager

    manager = ScheduledModifierManager.from_yaml(recipe_text, recipe_variables=recipe_variables or {})
    if manager.quantization_modifiers:
        manager.apply_structure(model, epoch=float("inf"))


def save_weights(path: Path, model: nn.Module, *, cfg: dict, nc: int, names: dict,
                 recipe_text: str | None, recipe_variables: dict | None, widths: dict | None = None) -> None:
    """The artifact's weights.pt; a full disk is ``OSError(ENOSPC)`` naming ``path`` and leaves no file
    (``fsutil.atomic_torch_save``). ``widths``: the channel counts of a thinned network (``thin_model``),
    written only when there are any, so every other weights.pt keeps its form."""
    from yolobench.fsutil import atomic_torch_save

    blob = {"state_dict": model.state_dict(), "cfg": cfg, "nc": nc, "names": names,
            "recipe": recipe_text, "recipe_variables": recipe_variables or {}}
    if widths:
        blob["widths"] = dict(widths)
    atomic_torch_save(blob, path)


def load_weights_model(path: Path) -> tuple[DetectionModel, dict]:
    blob = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and data: no code runs
    model = build_model(blob["cfg"], blob["nc"])
    apply_widths(model, blob.get("widths"))  # a thinned network: its channel counts before its weights
    if blob.get("recipe"):
        apply_recipe_structure(model, blob["recipe"], blob.get("recipe_variables"))
    model.load_state_dict(blob["state_dict"], strict=True)
    model.names = blob.get("names") or {i: str(i) for i in range(blob["nc"])}
    model.eval()
    return model, blob


def load_artifact_model(artifact) -> nn.Module:
    """Eval-mode model of an artifact. Float models get Conv+BN fused, as ultralytics' own predictor
    runs them (the PyTorch baseline a user would measure); fake-quant models cannot be fused."""
    model, blob = load_weights_model(Path(artifact.path) / "weights.pt")
    disable_observers(model)
    quantized = bool(blob.get("recipe")) and "QuantizationModifier" in blob["recipe"]
    if not quantized:
        model = model.fuse(verbose=False)
        drop_dead_channels(model)  # as exported: what a structured pruning removed, PyTorch skips too
    return RawHead(model).eval()


def disable_observers(model: nn.Module) -> None:
    for module in model.modules():
        if hasattr(module, "disable_observer") and callable(module.disable_observer):
            module.disable_observer()


def _fused_conv(module: nn.Module) -> tuple[nn.Conv2d, nn.Module] | None:
    """(conv, activation) of a fused ultralytics Conv or a plain Conv2d; None for anything else."""
    if isinstance(module, nn.Conv2d):
        return module, nn.Identity()
    conv = getattr(module, "conv", None)
    if isinstance(conv, nn.Conv2d) and not hasattr(module, "bn"):  # Conv after fuse(): no BatchNorm left
        return conv, getattr(module, "act", nn.Identity())
    return None


def _chained_convs(model: nn.Module):
    """(producer, consumer) pairs where the producer's output feeds only the consumer, from what the
    ultralytics modules are: a Bottleneck's cv1 -> cv2, and each of Detect's box and class branches
    (Conv -> Conv -> Conv2d). Nothing else is assumed: DetectionModel's own Sequential routes layers
    by index (``.f``), so it is not a chain."""
    for module in model.modules():
        kind = type(module).__name__
        if kind == "Bottleneck":
            yield module.cv1, module.cv2
        elif kind == "Detect":
            for branch in (*getattr(module, "cv2", ()), *getattr(module, "cv3", ())):
                if isinstance(branch, nn.Sequential):
                    layers = list(branch)
                    yield from zip(layers, layers[1:])


def _live_channels(conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None) -> torch.Tensor:
    """Indices of the output channels that are not zero for every input: a channel is dead when its
    filter and bias are zero and, with a BatchNorm after the conv, its scale and shift too. At least one
    channel is kept, so that a layer never vanishes."""
    dead = conv.weight.flatten(1).eq(0).all(dim=1)
    if conv.bias is not None:
        dead &= conv.bias.eq(0)
    if bn is not None:
        dead &= bn.weight.eq(0) & bn.bias.eq(0)
    keep = (~dead).nonzero().flatten()
    return keep if len(keep) else torch.tensor([0])


def drop_dead_channels(model: nn.Module) -> int:
    """Remove the output channels that are zero for every input, and the next conv's inputs they fed.

    Structured pruning that masks a conv's filter together with its BatchNorm scale and shift (see
    results/trials/recipes-structured/) leaves channels whose fused weights and bias are all zero; with an
    activation that maps 0 to 0 (SiLU, Hardswish, ReLU) such a channel is 0 everywhere, so dropping it and
    the consumer's matching input channels computes exactly the same function with fewer MACs on every
    engine (zero padding adds nothing to a zero channel). Needs a fused model (``model.fuse()``); a layer
    keeps at least one channel. Returns how many channels were dropped (0 for unstructured or dense models:
    their BatchNorm shifts make no channel zero)."""
    dropped = 0
    with torch.no_grad():
        for producer, consumer in _chained_convs(model):
            first, second = _fused_conv(producer), _fused_conv(consumer)
            if first is None or second is None:
                continue
            (conv, act), (nxt, _) = first, second
            if conv.groups != 1 or nxt.groups != 1 or nxt.in_channels != conv.out_channels:
                continue
            if float(act(torch.zeros(1))) != 0.0:
                continue
            keep = _live_channels(conv)
            if len(keep) == conv.out_channels:
                continue
            dropped += conv.out_channels - len(keep)
            conv.weight = nn.Parameter(conv.weight[keep].clone())
            if conv.bias is not None:
                conv.bias = nn.Parameter(conv.bias[keep].clone())
            conv.out_channels = len(keep)
            nxt.weight = nn.Parameter(nxt.weight[:, keep].clone())
            nxt.in_channels = len(keep)
    return dropped


def _unfused_conv(module: nn.Module) -> tuple[nn.Conv2d, nn.BatchNorm2d | None, nn.Module] | None:
    """(conv, batch norm, activation) of a training-form ultralytics Conv, or (conv, None, identity) of a
    plain Conv2d (the Detect head's last 1x1); None for anything else."""
    if isinstance(module, nn.Conv2d):
        return module, None, nn.Identity()
    conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
    if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
        return conv, bn, getattr(module, "act", nn.Identity())
    return None


def _keep_channels(producer: nn.Module, consumer: nn.Module, keep: torch.Tensor) -> None:
    """Keep only output channels ``keep`` of a training-form Conv (conv filters, BatchNorm scale, shift and
    statistics) and the matching input channels of the conv it feeds."""
    (conv, bn, _), (nxt, _, _) = _unfused_conv(producer), _unfused_conv(consumer)
    conv.weight = nn.Parameter(conv.weight[keep].clone())
    if conv.bias is not None:
        conv.bias = nn.Parameter(conv.bias[keep].clone())
    conv.out_channels = len(keep)
    bn.weight = nn.Parameter(bn.weight[keep].clone())
    bn.bias = nn.Parameter(bn.bias[keep].clone())
    bn.running_mean = bn.running_mean[keep].clone()
    bn.running_var = bn.running_var[keep].clone()
    bn.num_features = len(keep)
    nxt.weight = nn.Parameter(nxt.weight[:, keep].clone())
    nxt.in_channels = len(keep)


def _thinnable_pairs(model: nn.Module):
    """(name, producer, consumer) of each chain (``_chained_convs``) in training form, with a BatchNorm after
    the producer and an activation that maps 0 to 0."""
    names = {id(m): n for n, m in model.named_modules()}
    for producer, consumer in _chained_convs(model):
        first, second = _unfused_conv(producer), _unfused_conv(consumer)
        if first is None or second is None or first[1] is None:
            continue
        (conv, _, act), (nxt, _, _) = first, second
        if conv.groups != 1 or nxt.groups != 1 or nxt.in_channels != conv.out_channels:
            continue
        if float(act(torch.zeros(1))) != 0.0:
            continue
        yield names[id(producer)], producer, consumer


def thin_model(model: nn.Module) -> dict[str, int]:
    """Remove, from a training-form (unfused) float model, the channels a structured pruning left dead,
    so that training goes on with a thinner network (fewer MACs in every step and in every export, the
    integer ones included, where ``drop_dead_channels`` only thins a fused float model).

    A channel is dead when its filter, BatchNorm scale and BatchNorm shift are all zero: whatever the
    running statistics, BatchNorm then outputs 0, the activation keeps it 0, and the consumer's matching
    input channel multiplies nothing, so removing both computes the same function (in eval mode; in
    training mode batch statistics do not matter for a zero channel either). A layer keeps at least one
    channel. Returns ``{producer Conv's module name: channels kept}`` for every layer it changed: what
    ``apply_widths`` needs to rebuild the same network from its model YAML (saved in weights.pt)."""
    widths = {}
    with torch.no_grad():
        for name, producer, consumer in list(_thinnable_pairs(model)):
            conv, bn, _ = _unfused_conv(producer)
            keep = _live_channels(conv, bn)
            if len(keep) == conv.out_channels:
                continue
            _keep_channels(producer, consumer, keep)
            widths[name] = len(keep)
    return widths


def apply_widths(model: nn.Module, widths: dict[str, int] | None) -> None:
    """Give a freshly built (training-form) model the channel counts ``thin_model`` left, so that a thinned
    model's state_dict loads into it; the values are placeholders until it does. An unknown layer name or
    a width larger than the layer is a ValueError naming it (weights.pt of another network)."""
    if not widths:
        return
    pairs = {name: (producer, consumer) for name, producer, consumer in _thinnable_pairs(model)}
    unknown = sorted(set(widths) - set(pairs))
    if unknown:
        raise ValueError(f"channel widths name layers this network has no thinnable chain at: {unknown[:4]}")
    with torch.no_grad():
        for name, count in widths.items():
            producer, consumer = pairs[name]
            width = _unfused_conv(producer)[0].out_channels
            if not isinstance(count, int) or not 1 <= count <= width:
                raise ValueError(f"channel width of {name} is {count!r}; the layer has {width} channels")
            _keep_channels(producer, consumer, torch.arange(count))


def export_fp32(model: nn.Module, path: Path, imgsz: int) -> int:
    """Dense float graph with Conv+BN fused (what every engine takes), without dead channels (the
    count is returned, see ``drop_dead_channels``)."""
    model = copy.deepcopy(model).float().eval()
    dropped = 0
    if hasattr(model, "fuse"):
        model = model.fuse(verbose=False)
        dropped = drop_dead_channels(model)
    replace_hardswish(model)
    _set_export_mode(model)
    sample = torch.zeros(1, 3, imgsz, imgsz)
    with torch.no_grad():
        torch.onnx.export(RawHead(model), (sample,), str(path), opset_version=ONNX_OPSET,
                          input_names=["images"], output_names=["output0"], dynamo=False,
                          do_constant_folding=True)
    return dropped


def export_quantized(model: nn.Module, out_dir: Path, imgsz: int, *, deepsparse_name: str,
                     qdq_name: str) -> None:
    """Both integer forms of a QAT/PTQ model: DeepSparse's converted graph and a QDQ graph."""
    shims.apply()
    from sparseml.pytorch.utils import ModuleExporter

    model = copy.deepcopy(model).float().eval()
    disable_observers(model)  # the exporter's sample forward must not move the scales
    replace_hardswish(model)
    _set_export_mode(model)
    wrapped = RawHead(model).eval()
    sample = torch.zeros(1, 3, imgsz, imgsz)
    exporter = ModuleExporter(wrapped, output_dir=str(out_dir))
    with shims.torchscript_onnx_export():
        exporter.export_onnx(sample, name=deepsparse_name, convert_qat=True, opset=ONNX_OPSET,
                             input_names=["images"], output_names=["output0"])
        exporter.export_onnx(sample, name=qdq_name, convert_qat=False, opset=ONNX_OPSET,
                             input_names=["images"], output_names=["output0"])
    for name in (deepsparse_name, qdq_name):
        _make_batch_static(out_dir / name)


def _make_batch_static(path: Path) -> None:
    """sparseml marks the batch dimension dynamic; batch-1 engines compile faster with it fixed."""
    import onnx

    model = onnx.load(str(path))
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    onnx.save(model, str(path))


def double_quantizations(onnx_model) -> list[tuple[str, str]]:
    """(first, second) QuantizeLinear names of each Q -> DQ -> Q chain in an ONNX graph.

    Such a chain quantizes one tensor twice; ONNX Runtime's DoubleQDQPairsRemover (on by default)
    merges it into one quantization, so ORT then computes a different function from PyTorch,
    OpenVINO and DeepSparse. Measured on v5n_hardswish_pq while Hardswish still had its own QAT
    observer: scores up to 0.12 apart. The builder refuses exports that contain one.
    """
    producer = {out: node for node in onnx_model.graph.node for out in node.output}
    chains = []
    for node in onnx_model.graph.node:
        if node.op_type != "QuantizeLinear":
            continue
        dq = producer.get(node.input[0])
        first = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if first is not None and first.op_type == "QuantizeLinear":
            chains.append((first.name, node.name))
    return chains


def unobserved_quantizers(model: nn.Module) -> list[str]:
    """Fake-quant modules whose observer never saw data (scale left at its initial value).

    A recipe that disables the observers before any batch ran through them (e.g.
    ``disable_quantization_observer_epoch`` <= ``quantization_start_epoch``) yields such a model; its
    integer export is meaningless and crashed DeepSparse's compiler (fold_elementwise.cpp:47).
    """
    names = []
    for name, module in model.named_modules():
        observer = getattr(module, "activation_post_process", None)
        min_val = getattr(observer, "min_val", None)
        if type(module).__name__ == "FakeQuantize" and min_val is not None and min_val.numel() == 1:
            if not torch.isfinite(min_val).item():
                names.append(name)
    return names


def sparsity_report(model: nn.Module) -> dict:
    """Fraction of exact zeros, overall (prunable convs) and per 4-D weight."""
    per_layer = {}
    zeros = total = 0
    for name, param in model.named_parameters():
        if param.dim() != 4:
            continue
        name = canonical_param_name(name)
        n_zero = int((param == 0).sum())
        per_layer[name] = round(n_zero / param.numel(), 4)
        zeros += n_zero
        total += param.numel()
    return {"overall": round(zeros / max(total, 1), 4), "per_layer": per_layer}


def canonical_param_name(name: str) -> str:
    """A weight's name as in the float model, whatever QAT wrapping or Conv+BN fusing did to it.

    QuantWrapper adds ``.module``; fusing Conv+BN outside the quantized submodules turns ``conv`` into
    a ConvBn2d Sequential whose conv is ``conv.0``.
    """
    return name.replace(".module.", ".").replace(".conv.0.weight", ".conv.weight")


def parameter_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
