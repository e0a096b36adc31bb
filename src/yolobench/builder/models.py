"""Where a rung's model comes from: trained (``training.RecipeTrainer``: ultralytics' trainer and the
SparseML recipe), calibrated (``oneshot``: the recipe's QuantizationModifier, no gradient step), or the
user's checkpoint, as given or fine-tuned. Must not: export the model or write outside the work folder
it is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import yaml

from yolobench import catalogue
from yolobench.builder.resolving import Resolved, train_args
from yolobench.catalogue import ONESHOT, Profile
from yolobench.errors import UserError
from yolobench.recipes import RecipeLoader
from yolobench.store import WEIGHTS_NAME

Progress = Callable[[str], None]


def _from_checkpoint(resolved: Resolved, data_yaml: Path, work: Path, say: Progress):
    """The user's checkpoint as this rung's model: as given, or fine-tuned on the target data for the
    profile's ``catalogue.WEIGHTS_EPOCHS`` (never for a quantized source model: transfer does that)."""
    from yolobench.checkpoints import model_from

    given = resolved.given
    say(f"[{resolved.name}] from {given.path.name} ({given.family}, {given.nc} classes, sha256 {given.sha256[:12]})")
    if resolved.given_epochs <= 0 or given.quantized:
        return model_from(given).eval(), {"given": "as given, no training"}, dict(given.widths)
    finetune = catalogue.VariantSpec(name=resolved.name, description="", model=given.family,
                                     train_args=catalogue._ro({resolved.profile.name: {
                                         **catalogue.WEIGHTS_FINETUNE_ARGS, "epochs": resolved.given_epochs}}))
    return _train(finetune, resolved.profile, None, given.cfg, None, {}, data_yaml, work, say,
                  init_state=given.state_dict, widths=given.widths)


def _structure_recipe(spec, parent, recipe_text, variables):
    """Recipe whose structure rebuilds this variant's model on load."""
    if parent is not None and parent.quantized and spec.kind != ONESHOT and not _has_quant(recipe_text):
        return parent.meta["recipe"]["text"], parent.meta["recipe"]["variables"]
    return recipe_text, variables


def _has_quant(recipe_text: str | None) -> bool:
    return bool(recipe_text) and "QuantizationModifier" in recipe_text


def _thinned_parent(spec, parent, say) -> tuple[dict, dict]:
    """(state_dict, widths) of the parent's network without the channels its structured pruning zeroed
    (``VariantSpec.thin``): the child trains, prunes and quantizes the thinner network."""
    from yolobench import modelio

    model, blob = modelio.load_weights_model(parent.path / WEIGHTS_NAME)
    if blob.get("recipe") and _has_quant(blob["recipe"]):
        raise UserError(f"{spec.name}: thins its parent {parent.name}, which is quantized; thinning needs a float "
                        "parent (a structured-pruning rung)")
    widths = dict(blob.get("widths") or {})
    before = modelio.parameter_count(model)
    new = modelio.thin_model(model)
    widths.update(new)
    say(f"[{spec.name}] {parent.name} thinned: {len(new)} layers narrower, parameters "
        f"{before:,} -> {modelio.parameter_count(model):,}")
    return model.state_dict(), widths


def _teacher_model(spec, teacher, say):
    """The teacher artifact's network (``VariantSpec.teacher``): float, eval mode, frozen; Conv+BN fused
    where it is not fake-quantized (it only runs forward, and a fused one runs faster)."""
    from yolobench import modelio

    model, blob = modelio.load_weights_model(teacher.path / WEIGHTS_NAME)
    modelio.disable_observers(model)  # a fake-quantized teacher's scales stay as it was trained
    if not _has_quant(blob.get("recipe")):
        model = model.fuse(verbose=False)
    model = model.float().eval().requires_grad_(False)
    say(f"[{spec.name}] learning from {teacher.name} ({teacher.key}, {modelio.parameter_count(model):,} parameters)")
    return model


def _train(spec, profile, parent, cfg, recipe_text, variables, data_yaml, work, say, *, init_state=None,
           widths=None, teacher=None, distill=None):
    """(model, metrics, widths): the trained model, the trainer's last validation, and the channel counts
    of its network where it is thinner than its model YAML (``modelio.thin_model``). ``teacher``: a built
    artifact the model also learns from (``yolobench.distill``), with ``distill`` settings."""
    import torch

    from yolobench.training import RecipeTrainer

    parent_recipe = None
    widths = dict(widths or {})
    if parent is not None and spec.thin:  # a float parent, loaded once and thinned
        init_state, widths = _thinned_parent(spec, parent, say)
    elif parent is not None:
        blob = torch.load(parent.path / WEIGHTS_NAME, map_location="cpu", weights_only=True)
        init_state = blob["state_dict"]
        widths = dict(blob.get("widths") or {})
        if blob.get("recipe") and _has_quant(blob["recipe"]):
            parent_recipe = (blob["recipe"], blob.get("recipe_variables") or {})
    args = dict(profile.trainer)
    args.update(train_args(spec, profile.name))
    overrides = dict(
        data=str(data_yaml), imgsz=profile.train_imgsz, batch=profile.batch, workers=0,
        device=_device(), project=str(work), name="train", exist_ok=True, verbose=False, seed=0,
        deterministic=True, amp=False, plots=False, save=True, pretrained=False,
    )
    overrides.update(args)
    overrides.setdefault("epochs", 1)
    total = overrides["epochs"]

    def on_epoch(state):
        m, losses = state["metrics"], state.get("losses") or {}
        say(f"[{spec.name}] epoch {state['epoch']}/{state['epochs']}"
            + (f" mAP@0.5 {m['metrics/mAP50(B)']:.3f}" if m.get("metrics/mAP50(B)") else "")
            # the teacher term's mean over the epoch, beside the detection loss it is added to
            + "".join(f" {k.split('/')[-1]} {v:.4f}" for k, v in losses.items() if teacher is not None))

    trainer = RecipeTrainer(overrides, model_cfg=cfg, init_state=init_state, widths=widths, recipe_text=recipe_text,
                            recipe_variables=variables, parent_recipe=parent_recipe,
                            checkpoint_dir=work / "checkpoint", progress=on_epoch,
                            teacher=_teacher_model(spec, teacher, say) if teacher is not None else None,
                            distill=distill)
    say(f"[{spec.name}] training {trainer.epochs if recipe_text else total} epochs at "
        f"{profile.train_imgsz} px on {data_yaml}")
    trainer.train()
    trainer.finish()
    model = trainer.final_model().eval()
    metrics = {"trainer": _metrics_from(trainer.metrics)}
    del trainer
    return model, metrics, widths


def _metrics_from(metrics: dict | None) -> dict:
    metrics = metrics or {}
    return {"map50": float(metrics.get("metrics/mAP50(B)", 0.0)),
            "map50_95": float(metrics.get("metrics/mAP50-95(B)", 0.0)),
            "precision": float(metrics.get("metrics/precision(B)", 0.0)),
            "recall": float(metrics.get("metrics/recall(B)", 0.0)),
            "source": "ultralytics DetectionValidator during training, final epoch"}


def _device() -> str:
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def _oneshot(spec, profile, parent, recipe_text, variables, data_yaml, work, say):
    """Post-training quantization: recipe structure, calibration on training images, validation."""
    import torch

    from yolobench import modelio, shims

    shims.apply()
    from sparseml.pytorch.optim import ScheduledModifierManager

    model, blob = modelio.load_weights_model(parent.path / WEIGHTS_NAME)
    manager = ScheduledModifierManager.from_yaml(recipe_text, recipe_variables=variables)
    doc = yaml.load(recipe_text, Loader=RecipeLoader)
    batches = int(variables.get("num_calibration_batches", doc.get("num_calibration_batches", 16)))
    # Structure in train() so Conv+BN fuse for QAT exactly as in pruned_quant;
    # calibrate in eval(): observers record in any mode, BN statistics must not move.
    model.train()
    manager.apply_structure(model, epoch=float("inf"))
    model.eval()
    say(f"[{spec.name}] calibrating on {batches} batches of training images")
    loader = _calibration_batches(data_yaml, profile, batches)
    with torch.no_grad():
        for images in loader:
            model(images)
    modelio.disable_observers(model)  # freeze scales before anything else runs the model
    return model, {}, dict(blob.get("widths") or {})  # a thinned parent's network, calibrated as it is


def _calibration_batches(data_yaml: Path, profile: Profile, batches: int):
    """Letterboxed training images as float tensors, batch by batch (no augmentation)."""
    import numpy as np
    import torch

    from yolobench.data import check_dataset
    from yolobench.processing import letterbox

    info = check_dataset(data_yaml, decode_images=False)
    files = sorted(p for d in info.train_dirs for p in d.rglob("*")
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
    import cv2

    batch: list = []
    count = 0
    for path in files:
        image = cv2.imread(str(path))
        array, _ = letterbox(image, profile.train_imgsz)
        batch.append(array)
        if len(batch) == profile.batch:
            yield torch.from_numpy(np.stack(batch))
            batch, count = [], count + 1
            if count >= batches:
                return
    if batch:
        yield torch.from_numpy(np.stack(batch))

