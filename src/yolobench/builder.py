"""Build a catalogue variant into the artifact store: train (or calibrate), measure, export.

``build(name, profile, data)`` builds the variant's parents first (each cached), then the variant:

- ``train`` variants run ``training.RecipeTrainer`` (ultralytics' trainer + the SparseML recipe);
- ``oneshot`` variants apply the recipe's QuantizationModifier to the parent and calibrate it on
  training images only, no gradient step.

Then every export form the engines need is written (``store.FORMS``), and ``meta.json`` records what
the artifact is: recipe (text, hash, variables), parent, dataset hash, profile, library versions,
measured sparsity (overall and per layer), parameter count, file sizes, mAP@0.5 and mAP@0.5:0.95 on
the validation split, build time.

An interrupted training resumes from its last completed epoch (checkpoints live in the store's work
directory for the artifact's key). Must not: write anywhere but the store's work and output folders.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from yolobench import catalogue, offline, paths
from yolobench.catalogue import ONESHOT, Profile, VariantSpec
from yolobench.errors import UserError
# Recipes and the schedule scale live in yolobench.recipes; these names stay importable from here.
from yolobench.recipes import (EPOCH_SCALE_ENV, RECIPES_ENV, RecipeLoader, adapt_to_network,  # noqa: F401
                               epoch_scale, head_index, is_trial, load_recipe, recipe_path, scaled_epochs,
                               validate_recipe)
from yolobench.store import (FORM_DEEPSPARSE, FORM_FP32, FORM_QDQ, MODEL_CFG_NAME, RECIPE_NAME,
                             WEIGHTS_NAME, Artifact, Store, content_key, onnx_filename)

offline.apply()

BUILDER_VERSION = 2  # bump when a change here changes what an artifact contains
DATASET_SEED = 0
Progress = Callable[[str], None]

def train_args(spec: VariantSpec, profile: str) -> dict:
    """The variant's trainer arguments for the profile, epochs scaled by :func:`epoch_scale`."""
    args = spec.args_for(profile)
    if "epochs" in args:
        args["epochs"] = scaled_epochs(args["epochs"], epoch_scale())
    return args


# --- inputs -------------------------------------------------------------------------------------------
def builtin_settings(spec: VariantSpec, profile: Profile) -> tuple[str, dict]:
    """(generator domain, builtin_dataset() arguments) of the built-in data a variant trains on."""
    if spec.domain == "source" and profile.name in catalogue.SOURCE_DATASETS:
        settings = dict(catalogue.SOURCE_DATASETS[profile.name])
        return settings.pop("domain"), settings
    return spec.domain, dict(profile.dataset)


def dataset_for(spec: VariantSpec, profile: Profile, data: str | Path | None) -> Path:
    """data.yaml the variant trains on: the user's (target domain) or the built-in one."""
    if spec.domain == "target" and data is not None:
        return Path(data).expanduser().resolve()
    from yolobench.data import builtin_dataset

    domain, settings = builtin_settings(spec, profile)
    return builtin_dataset(domain, seed=DATASET_SEED, **settings)


def eval_sets(spec: VariantSpec, profile: Profile, data: str | Path | None) -> dict[int, Path]:
    """data.yaml whose validation split judges the variant at each export size.

    The built-in data is rendered at every export size (each image drawn from the same per-index random
    stream, so mostly the same scenes; pixel-level placement checks can differ by size), because a user runs the model on images of that size; a model
    trained at 320 px and judged on 320-px images letterboxed up to 640 would hide what 640-px detail
    does to it. A user's dataset is judged as it is, letterboxed to each size.
    """
    train_set = dataset_for(spec, profile, data)
    if spec.domain == "target" and data is not None:
        return {imgsz: train_set for imgsz in profile.export_imgsz}
    from yolobench.data import builtin_dataset

    domain, settings = builtin_settings(spec, profile)
    sets = {}
    for imgsz in profile.export_imgsz:
        if imgsz == settings["imgsz"]:
            sets[imgsz] = train_set
        else:  # one training image is the smallest set the generator makes; only the validation split is read
            sets[imgsz] = builtin_dataset(domain, seed=DATASET_SEED, train=1, val=settings["val"], imgsz=imgsz)
    return sets


def library_versions() -> dict:
    import importlib.metadata as md

    out = {}
    for dist in ("torch", "ultralytics", "sparseml", "onnx", "numpy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out


# --- resolving a variant once: what its key and its build both use ----------------------------------
@dataclass(frozen=True)
class Resolved:
    """A variant under a profile and dataset, resolved once: catalogue entry, profile, recipe (read and
    validated), the data it trains on (hashed), its parent's record, and the key all of it makes."""

    spec: VariantSpec
    profile: Profile
    recipe_text: str | None
    variables: dict
    data_yaml: Path
    dataset_hash: str
    parent: "Resolved | None"
    key: str
    # A ladder that starts from the user's model: the checkpoint this rung IS (``dense`` from --weights,
    # ``source_pq`` from --source-weights), and the network every rung below it has (its model YAML).
    given: "Any | None" = None  # yolobench.checkpoints.Checkpoint
    network: dict | None = None
    root_weights: dict | None = None  # {"path", "sha256", "kind", "family"} of that checkpoint
    given_epochs: int = 0

    @property
    def name(self) -> str:
        return self.spec.name


def skip_reason(name: str, *, weights=None, source_weights=None) -> str | None:
    """Why ``name`` is not built on a ladder that starts from the user's model (None: it is)."""
    return catalogue.skip_reason(name, weights=weights is not None, source_weights=source_weights is not None)


def _checkpoint(path, option: str, cache: dict):
    """The user's checkpoint, read (and checked) once per command."""
    from yolobench.checkpoints import load_checkpoint

    slot = ("checkpoint", option, str(path))
    if slot not in cache:
        if not Path(path).expanduser().exists():
            raise UserError(f"{option} {path}: no such file; pass the path of a checkpoint (best.pt from "
                            "`yolo train`, or a yolobench artifact's weights.pt)")
        cache[slot] = load_checkpoint(path)
    return cache[slot]


def _given(spec: VariantSpec, prof: Profile, weights, source_weights, data_yaml: Path, cache: dict):
    """(checkpoint, fine-tune epochs) when this rung is the user's model itself, else (None, 0)."""
    if spec.name == catalogue.WEIGHTS_ROOT and weights is not None:
        from yolobench.checkpoints import check_names

        ckpt = _checkpoint(weights, "--weights", cache)
        if ckpt.quantized:
            raise UserError(f"--weights {ckpt.path}: is a quantized model; the ladder starts from a float one "
                            "(pass a pruned+quantized model as --source-weights)")
        from yolobench.data import check_dataset

        check_names(ckpt, check_dataset(data_yaml, decode_images=False).names, str(data_yaml))
        return ckpt, int(catalogue.WEIGHTS_EPOCHS.get(prof.name, 0))
    if spec.name == catalogue.SOURCE_WEIGHTS_ROOT and source_weights is not None:
        ckpt = _checkpoint(source_weights, "--source-weights", cache)
        if not ckpt.quantized:
            raise UserError(f"--source-weights {ckpt.path}: is not pruned+quantized (it carries no quantization "
                            "recipe); sparse transfer starts from a model yolobench's pruned_quant (or source_pq) "
                            "rung wrote: pass that artifact's weights.pt")
        return ckpt, 0
    return None, 0


def resolve(name: str, profile: str, data: str | Path | None, *, weights=None, source_weights=None,
            _cache: dict | None = None) -> Resolved:
    """The variant's :class:`Resolved` record (parents first, each resolved once per ``_cache``).

    ``weights`` / ``source_weights``: the user's checkpoints the ladder starts from (``dense`` /
    ``source_pq`` become them; the rungs below derive from their network). A rung that does not apply
    (``skip_reason``) is a UserError here: callers skip it first."""
    cache = {} if _cache is None else _cache
    if name in cache:
        return cache[name]
    reason = skip_reason(name, weights=weights, source_weights=source_weights)
    if reason:
        raise UserError(f"{name}: {reason}")
    spec = catalogue.get_variant(name)
    prof = catalogue.get_profile(profile)
    recipe_text, variables = load_recipe(spec, profile)
    if spec.name == catalogue.SOURCE_WEIGHTS_ROOT and source_weights is not None:
        data_yaml = dataset_for(catalogue.get_variant(catalogue.WEIGHTS_ROOT), prof, data)  # judged on the target
    else:
        data_yaml = dataset_for(spec, prof, data)
    given, given_epochs = _given(spec, prof, weights, source_weights, data_yaml, cache)
    from yolobench.data import check_dataset

    dataset_hash = check_dataset(data_yaml, decode_images=False).content_hash
    parent = (resolve(spec.parent, profile, data, weights=weights, source_weights=source_weights, _cache=cache)
              if spec.parent else None)
    if given is not None:
        return _resolve_given(spec, prof, given, given_epochs, data_yaml, dataset_hash, cache)
    network = parent.network if parent is not None else None
    if network is not None and recipe_text:
        recipe_text = adapt_to_network(recipe_text, head_index(network), str(recipe_path(spec)))
    model_ref = spec.model
    model_text = (paths.repo_root() / model_ref).read_text() if model_ref.endswith(".yaml") else model_ref
    if network is not None:
        model_text = yaml.safe_dump(network, sort_keys=True)
    parts = {
        "builder": BUILDER_VERSION,
        "spec": {k: v for k, v in _plain(spec).items()
                 if k not in ("description", "train_args", "recipe_variables")},
        "train_args": train_args(spec, profile),
        "recipe": hashlib.sha256(recipe_text.encode()).hexdigest() if recipe_text else None,
        "recipe_variables": variables,
        "model": model_text,
        "parent": parent.key if parent else None,
        "dataset": dataset_hash,
        "profile": {k: v for k, v in _plain(prof).items() if k != "description"},
        "versions": library_versions(),
    }
    if epoch_scale() != 1.0:  # absent at 1, so the catalogue's own artifacts keep their keys
        parts["epoch_scale"] = epoch_scale()
    if spec.quantized and "Hardswish" in model_text:
        from yolobench.modelio import HARDSWISH_EXPORT_REVISION

        parts["hardswish_export"] = HARDSWISH_EXPORT_REVISION
    root_weights = parent.root_weights if parent is not None else None
    if root_weights is not None:  # absent for the catalogue's own ladder, so its keys stay as they were
        parts["weights"] = root_weights["sha256"]
    cache[name] = Resolved(spec=spec, profile=prof, recipe_text=recipe_text, variables=variables,
                           data_yaml=data_yaml, dataset_hash=dataset_hash, parent=parent, key=content_key(parts),
                           network=network, root_weights=root_weights)
    return cache[name]


def _resolve_given(spec, prof, given, epochs, data_yaml, dataset_hash, cache) -> Resolved:
    """The rung that is the user's checkpoint: keyed by the file's digest, the data it is judged (and
    fine-tuned) on, the fine-tune epochs and the libraries that export and measure it."""
    parts = {
        "builder": BUILDER_VERSION,
        "given": {"variant": spec.name, "weights": given.sha256, "epochs": epochs,
                  "finetune": dict(catalogue.WEIGHTS_FINETUNE_ARGS) if epochs else None},
        "dataset": dataset_hash,
        "profile": {k: v for k, v in _plain(prof).items() if k != "description"},
        "versions": library_versions(),
    }
    root = {"path": str(given.path), "sha256": given.sha256, "kind": given.kind, "family": given.family}
    cache[spec.name] = Resolved(spec=spec, profile=prof, recipe_text=given.recipe, variables=dict(given.recipe_variables),
                                data_yaml=data_yaml, dataset_hash=dataset_hash, parent=None, key=content_key(parts),
                                given=given, network=given.cfg, root_weights=root, given_epochs=epochs)
    return cache[spec.name]


def variant_key(name: str, profile: str, data: str | Path | None, *, weights=None, source_weights=None,
                _cache: dict | None = None) -> str:
    """Content key of a variant: changes whenever anything that decides its content changes."""
    return resolve(name, profile, data, weights=weights, source_weights=source_weights, _cache=_cache).key


def _plain(value):
    """Dataclasses and read-only mappings as plain JSON-able data (for keys)."""
    if hasattr(value, "__dataclass_fields__"):
        return {f: _plain(getattr(value, f)) for f in value.__dataclass_fields__}
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --- building ----------------------------------------------------------------------------------------
def build(name: str, profile: str = "smoke", data: str | Path | None = None, *, store: Store | None = None,
          progress: Progress | None = None, weights=None, source_weights=None, _cache: dict | None = None) -> Artifact:
    """The variant's artifact, building it (and its parents) if needed. ``_cache``: resolved records
    shared with earlier calls (``resolve``), so a recipe or dataset is read and checked once.
    ``weights`` / ``source_weights``: the user's checkpoints the ladder starts from (see ``resolve``)."""
    store = store or Store()
    say = progress or (lambda message: None)
    cache = {} if _cache is None else _cache
    artifact = None
    for step in catalogue.ancestry(name):
        resolved = resolve(step, profile, data, weights=weights, source_weights=source_weights, _cache=cache)
        key = resolved.key
        found = store.get(step, key)
        if found is not None:
            artifact = found
            continue
        parent = artifact
        say(f"[{step}] building (key {key})")
        artifact = store.build(step, key, lambda work, out, resolved=resolved, parent=parent:
                               _build_one(resolved, data, parent, work, out, say))
        say(f"[{step}] done in {artifact.meta.get('build_seconds', 0):.0f} s: "
            f"mAP@0.5 {format_map(artifact.meta['metrics'].get('map50'))}, sparsity "
            f"{artifact.meta['sparsity']['overall']:.3f}")
    return artifact


def format_map(value) -> str:
    """mAP for a progress line or table: '-' where it was not measured (a given model's own data unknown)."""
    return "-" if value is None else f"{value:.3f}"


def _build_one(resolved: Resolved, data, parent: Artifact | None, work: Path, out: Path, say: Progress) -> dict:
    import torch

    from yolobench import modelio

    started = time.time()
    name, key, spec, profile = resolved.name, resolved.key, resolved.spec, resolved.profile
    profile_name = profile.name
    recipe_text, variables, data_yaml = resolved.recipe_text, dict(resolved.variables), resolved.data_yaml
    from yolobench.data import check_dataset

    info = check_dataset(data_yaml)
    names = {int(k): v for k, v in info.names.items()}
    cfg = resolved.network if resolved.network is not None else modelio.model_config(spec.model)
    torch.manual_seed(0)

    if resolved.given is not None:
        model, metrics = _from_checkpoint(resolved, data_yaml, work, say)
        names = dict(resolved.given.names)
        saved_recipe, saved_vars = resolved.given.recipe, dict(resolved.given.recipe_variables)
    elif spec.kind == ONESHOT:
        model, metrics = _oneshot(spec, profile, parent, recipe_text, variables, data_yaml, work, say)
        saved_recipe, saved_vars = recipe_text, variables
    else:
        model, metrics = _train(spec, profile, parent, cfg, recipe_text, variables, data_yaml, work, say)
        # a transfer child inherits its parent's QAT structure: both recipes rebuild it on load
        saved_recipe, saved_vars = _structure_recipe(spec, parent, recipe_text, variables)

    if spec.quantized:
        unobserved = modelio.unobserved_quantizers(model)
        if unobserved:
            raise UserError(f"{recipe_path(spec)}: {len(unobserved)} quantization observers (e.g. "
                            f"{unobserved[0]}) never saw data under profile {profile_name!r}; start "
                            f"disabling observers at least one epoch after quantization starts")
    modelio.save_weights(out / WEIGHTS_NAME, model, cfg=cfg, nc=len(names), names=names,
                         recipe_text=saved_recipe, recipe_variables=saved_vars)
    (out / MODEL_CFG_NAME).write_text(yaml.safe_dump(cfg, sort_keys=False))
    if recipe_text:
        (out / RECIPE_NAME).write_text(recipe_text)

    forms = []
    for imgsz in profile.export_imgsz:
        say(f"[{name}] exporting ONNX at {imgsz} px")
        if spec.quantized:
            modelio.export_quantized(model, out, imgsz, deepsparse_name=onnx_filename(FORM_DEEPSPARSE, imgsz),
                                     qdq_name=onnx_filename(FORM_QDQ, imgsz))
            forms = [FORM_DEEPSPARSE, FORM_QDQ]
        else:
            dropped = modelio.export_fp32(model, out / onnx_filename(FORM_FP32, imgsz), imgsz)
            if dropped:
                say(f"[{name}] {dropped} channels pruned whole (zero for every input) left out of the graph")
            forms = [FORM_FP32]
    _check_onnx(out)
    deepsparse_support = _deepsparse_compiles(out, forms, profile.export_imgsz)

    eval_data = eval_sets(spec, profile, data) if resolved.given is None else _given_eval_sets(resolved, data)
    by_size = {}
    for imgsz, eval_yaml in eval_data.items():
        say(f"[{name}] measuring mAP at {imgsz} px on {eval_yaml}")
        by_size[str(imgsz)] = measure_accuracy(model, eval_yaml, imgsz)
    if not eval_data:  # a given source model whose classes are not the target's: no labels to judge it by
        by_size = {str(imgsz): {"map50": None, "map50_95": None, "source": _NOT_JUDGED} for imgsz in profile.export_imgsz}
    # `metrics` is the primary export size's (the first); every size's is in `metrics_by_imgsz`
    metrics = {**by_size[str(profile.export_imgsz[0])], **metrics}
    sparsity = modelio.sparsity_report(model)
    head = head_index(cfg)
    target = variables.get(spec.sparsity_target) if spec.sparsity_target else None
    if spec.sparsity_target and target is None and recipe_text:
        target = yaml.load(recipe_text, Loader=RecipeLoader).get(spec.sparsity_target)
    meta = {
        "variant": name,
        "description": spec.description,
        "profile": profile_name,
        "parent": {"variant": parent.name, "key": parent.key} if parent else None,
        "recipe": {"file": spec.recipe, "sha256": hashlib.sha256(recipe_text.encode()).hexdigest(),
                   "variables": variables, "text": recipe_text,
                   # where a trial recipe (YOLOBENCH_RECIPES) came from; absent for the repository's own
                   **({"trial_path": str(recipe_path(spec))} if is_trial(recipe_path(spec)) else {})}
        if recipe_text else None,
        "model": spec.model if resolved.network is None else resolved.root_weights["family"],
        # the user's checkpoint this ladder started from (absent for the catalogue's own models)
        **({"weights": {**resolved.root_weights, "given_epochs": resolved.given_epochs}
            if resolved.given is not None else resolved.root_weights} if resolved.root_weights else {}),
        "dataset": {"data_yaml": str(data_yaml), "hash": info.content_hash, "domain": spec.domain,
                    "generator_domain": None if (spec.domain == "target" and data is not None)
                    else builtin_settings(spec, catalogue.get_profile(profile_name))[0],
                    "names": names, "train_images": info.train_images, "val_images": info.val_images,
                    "eval_data_yaml": {str(k): str(v) for k, v in eval_data.items()}},
        "quantized": spec.quantized,
        "forms": forms,
        "export_imgsz": list(profile.export_imgsz),
        "train_imgsz": profile.train_imgsz,
        "versions": library_versions(),
        "sparsity": {**sparsity, "target": target,
                     "prunable": _prunable_sparsity(sparsity["per_layer"], head) if target is not None else None},
        "parameters": modelio.parameter_count(model),
        "deepsparse_fraction_of_supported_ops": deepsparse_support,
        "metrics": metrics,
        "metrics_by_imgsz": by_size,
        "epoch_scale": epoch_scale(),
        "build_seconds": round(time.time() - started, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    meta["file_sizes"] = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    return meta


def _pruned_layer(head: int):
    """Layers the pruning recipes prune (model.1 .. the layer before Detect: convs; the head's cv2/cv3
    3x3 convs), by canonical name: the "prunable" set whose measured sparsity must match the target."""
    import re

    return re.compile(rf"^model\.(?:(?:{'|'.join(str(i) for i in range(head - 1, 0, -1))})\..*conv|"
                      rf"{head}\.cv[23]\.\d\.[01]\.conv)\.weight$")


def _prunable_sparsity(per_layer: dict, head: int = 24) -> float | None:
    pruned = _pruned_layer(head)
    values = [v for k, v in per_layer.items() if pruned.match(k)]
    return round(sum(values) / len(values), 4) if values else None


_NOT_JUDGED = "not measured: the given model's classes are not the target data's, and its own data is unknown"


def _given_eval_sets(resolved: Resolved, data) -> dict:
    """Where a given checkpoint is judged: the target data (as the dense rung would be), if it has the
    checkpoint's classes; none otherwise (a given sparse source model trained on other classes)."""
    from yolobench.data import check_dataset

    target = catalogue.get_variant(catalogue.WEIGHTS_ROOT)
    sets = eval_sets(target, resolved.profile, data)
    names = {int(k): v for k, v in check_dataset(resolved.data_yaml, decode_images=False).names.items()}
    return sets if names == dict(resolved.given.names) else {}


def _from_checkpoint(resolved: Resolved, data_yaml: Path, work: Path, say: Progress):
    """The user's checkpoint as this rung's model: as given, or fine-tuned on the target data for the
    profile's ``catalogue.WEIGHTS_EPOCHS`` (never for a quantized source model: transfer does that)."""
    from yolobench.checkpoints import model_from

    given = resolved.given
    say(f"[{resolved.name}] from {given.path.name} ({given.family}, {given.nc} classes, sha256 {given.sha256[:12]})")
    if resolved.given_epochs <= 0 or given.quantized:
        return model_from(given).eval(), {"given": "as given, no training"}
    finetune = catalogue.VariantSpec(name=resolved.name, description="", model=given.family,
                                     train_args=catalogue._ro({resolved.profile.name: {
                                         **catalogue.WEIGHTS_FINETUNE_ARGS, "epochs": resolved.given_epochs}}))
    return _train(finetune, resolved.profile, None, given.cfg, None, {}, data_yaml, work, say,
                  init_state=given.state_dict)


def _structure_recipe(spec, parent, recipe_text, variables):
    """Recipe whose structure rebuilds this variant's model on load."""
    if parent is not None and parent.quantized and spec.kind != ONESHOT and not _has_quant(recipe_text):
        return parent.meta["recipe"]["text"], parent.meta["recipe"]["variables"]
    return recipe_text, variables


def _has_quant(recipe_text: str | None) -> bool:
    return bool(recipe_text) and "QuantizationModifier" in recipe_text


def _train(spec, profile, parent, cfg, recipe_text, variables, data_yaml, work, say, *, init_state=None):
    import torch

    from yolobench.training import RecipeTrainer

    parent_recipe = None
    if parent is not None:
        blob = torch.load(parent.path / WEIGHTS_NAME, map_location="cpu", weights_only=True)
        init_state = blob["state_dict"]
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
        m = state["metrics"]
        say(f"[{spec.name}] epoch {state['epoch']}/{state['epochs']}"
            + (f" mAP@0.5 {m['metrics/mAP50(B)']:.3f}" if m.get("metrics/mAP50(B)") else ""))

    trainer = RecipeTrainer(overrides, model_cfg=cfg, init_state=init_state, recipe_text=recipe_text,
                            recipe_variables=variables, parent_recipe=parent_recipe,
                            checkpoint_dir=work / "checkpoint", progress=on_epoch)
    say(f"[{spec.name}] training {trainer.epochs if recipe_text else total} epochs at "
        f"{profile.train_imgsz} px on {data_yaml}")
    trainer.train()
    trainer.finish()
    model = trainer.final_model().eval()
    metrics = {"trainer": _metrics_from(trainer.metrics)}
    del trainer
    return model, metrics


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

    model, _ = modelio.load_weights_model(parent.path / WEIGHTS_NAME)
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
    return model, {}


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


def measure_accuracy(model, data_yaml: Path, imgsz: int) -> dict:
    """mAP of the PyTorch model through yolobench's own evaluation path (same as every engine)."""
    from yolobench.evaluate import evaluate, torch_runner
    from yolobench.modelio import RawHead, disable_observers

    model = model.eval()
    disable_observers(model)
    return evaluate(torch_runner(RawHead(model).eval()), data_yaml, imgsz)


def _check_onnx(out: Path) -> None:
    import onnx

    from yolobench.modelio import double_quantizations

    for path in sorted(out.glob("*.onnx")):
        onnx.checker.check_model(str(path))
        chains = double_quantizations(onnx.load(str(path)))
        if chains:
            raise UserError(
                f"{path.name}: {len(chains)} tensors are quantized twice in a row (first at "
                f"{chains[0][1]}); ONNX Runtime merges such pairs and would disagree with the other "
                "engines. Give the module type producing them `exclude_module_types` in the recipe's "
                "QuantizationModifier (see recipes/pruned_quant.yaml)")


_DEEPSPARSE_PROBE = (
    "import sys\n"
    "from deepsparse import compile_model\n"
    "engine = compile_model(sys.argv[1], batch_size=1, num_cores=1)\n"
    "print('FRACTION', engine.fraction_of_supported_ops)\n"
)


def _deepsparse_compiles(out: Path, forms: list[str], sizes) -> dict | None:
    """Compile each DeepSparse-bound ONNX in a child process; fail the build if DeepSparse crashes.

    DeepSparse aborts the whole process on graphs its compiler rejects (it cannot be caught), so an
    artifact that would crash every later test or benchmark is refused here, with the reason.
    Returns {file: fraction_of_supported_ops}, or None where deepsparse is not installed.
    """
    import importlib.util

    from yolobench import children

    if importlib.util.find_spec("deepsparse") is None:
        return None
    form = FORM_DEEPSPARSE if FORM_DEEPSPARSE in forms else FORM_FP32
    result = {}
    for imgsz in sizes:
        path = out / onnx_filename(form, imgsz)
        proc = children.run([sys.executable, "-c", _DEEPSPARSE_PROBE, str(path)], capture_output=True, timeout=900)
        fraction = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("FRACTION")]
        if proc.returncode != 0 or not fraction:
            detail = next((line for line in (proc.stderr or "").splitlines() if "Assertion" in line
                           or "Error" in line), f"exit status {proc.returncode}")
            raise RuntimeError(f"DeepSparse cannot compile {path.name}: {detail.strip()}")
        result[path.name] = float(fraction[0])
    return result
