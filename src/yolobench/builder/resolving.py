"""Resolving a variant once: the catalogue entry, recipe, data and parent that decide its content, and
the content key all of it makes (``resolve``, ``variant_key``); what the key and the build both use.

A ladder that starts from the user's model (``--weights``, ``--source-weights``) is resolved here too:
the checkpoint is read and checked once per command, and its rung is keyed by the file's digest.
Must not: train, export or touch the store (the one thing it may write is a built-in dataset, rendered
the first time a variant needs it).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from yolobench import catalogue, paths
from yolobench.catalogue import Profile, VariantSpec
from yolobench.errors import UserError
from yolobench.recipes import (RecipeLoader, adapt_to_network, epoch_scale, head_index, load_recipe, recipe_path,
                               scaled_epochs)
from yolobench.store import content_key

BUILDER_VERSION = 2  # bump when a change in the builder changes what an artifact contains
# VariantSpec fields added after artifacts were built: part of the key only when set, so every variant
# that does not use them keeps the key (and the store entry) it had. `distill` (per-profile settings) is
# never keyed as written: a variant with a teacher keys the teacher's key and its profile's settings.
_KEYED_WHEN_SET = ("thin", "teacher")
_NOT_KEYED = ("description", "train_args", "recipe_variables", "distill")
DATASET_SEED = 0


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
    # Knowledge distillation (VariantSpec.teacher): the teacher's record and this profile's settings.
    teacher: "Resolved | None" = None
    distill: dict | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def skip_reason(name: str, *, weights=None, source_weights=None) -> str | None:
    """Why ``name`` is not built on a ladder that starts from the user's model (None: it is): the
    catalogue's reasons, a recipe on its way that names layers the user's network lacks, or a teacher
    (of it or of a rung on its way) that is not built for one of these reasons."""
    reason = _own_skip_reason(name, weights=weights, source_weights=source_weights)
    if reason:
        return reason
    for rung in catalogue.ancestry(name):
        teacher = catalogue.get_variant(rung).teacher
        if teacher is not None and teacher not in catalogue.ancestry(name):  # a cycle is resolve's to report
            reason = _own_skip_reason(teacher, weights=weights, source_weights=source_weights)
            if reason:
                return f"its teacher {teacher} is not built here: {reason}"
    return None


def _own_skip_reason(name: str, *, weights=None, source_weights=None) -> str | None:
    reason = catalogue.skip_reason(name, weights=weights is not None, source_weights=source_weights is not None)
    if reason or weights is None or catalogue.ancestry(name)[0] != catalogue.WEIGHTS_ROOT:
        return reason
    for rung in catalogue.ancestry(name):
        spec = catalogue.get_variant(rung)
        if spec.recipe:
            missing = _named_layers_missing(str(recipe_path(spec)), str(Path(weights).expanduser()))
            if missing:
                return (f"{spec.recipe} prunes yolov5u's layers by name (e.g. {missing[0]}), which the network of "
                        f"--weights lacks; {rung} is built from yolov5su/yolov5nu checkpoints only")
    return None


@functools.lru_cache(maxsize=32)
def _named_layers_missing(recipe_file: str, weights_file: str) -> tuple[str, ...]:
    """Parameters a recipe names one by one (not by pattern) that the checkpoint's network does not have,
    after moving the recipe to that network's Detect index; () when it names none or all exist. An
    unreadable checkpoint is () here: resolving it reports that in one line."""
    text = Path(recipe_file).read_text()
    if "StructuredPruningModifier" not in text:
        return ()
    from yolobench.checkpoints import load_checkpoint

    try:
        ckpt = load_checkpoint(weights_file)
    except (UserError, OSError):
        return ()
    doc = yaml.load(adapt_to_network(text, head_index(ckpt.cfg), recipe_file), Loader=RecipeLoader)
    named = [p for group in (doc or {}).values() if isinstance(group, list)
             for modifier in group if isinstance(modifier, dict) for p in modifier.get("params", [])
             if isinstance(p, str) and not p.startswith("re:")]
    from yolobench import modelio

    have = set(modelio.build_model(ckpt.cfg, ckpt.nc).state_dict())
    return tuple(p for p in named if p not in have)


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
    distill = catalogue.distill_settings(spec, profile)
    teacher = _resolve_teacher(spec, profile, data, weights, source_weights, cache)
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
                 if k not in _NOT_KEYED and not (k in _KEYED_WHEN_SET and not v)},
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
    if teacher is not None:  # absent without one, so the variants that do not distill keep their keys
        parts["teacher"] = {"key": teacher.key, "distill": distill}
    cache[name] = Resolved(spec=spec, profile=prof, recipe_text=recipe_text, variables=variables,
                           data_yaml=data_yaml, dataset_hash=dataset_hash, parent=parent, key=content_key(parts),
                           network=network, root_weights=root_weights, teacher=teacher,
                           distill=distill or None)
    return cache[name]


def _resolve_teacher(spec: VariantSpec, profile: str, data, weights, source_weights, cache: dict):
    """The teacher's record (resolved like a parent, through the same cache), or None without one. A
    teacher that is the variant itself or learns from it in turn would never finish building: refused."""
    if spec.teacher is None:
        return None
    catalogue.get_variant(spec.teacher)  # an unknown name: one line listing the catalogue
    resolving = cache.setdefault(("distilling",), [])
    if spec.teacher == spec.name or spec.teacher in resolving or spec.name in catalogue.ancestry(spec.teacher):
        raise UserError(f"variant {spec.name!r}: teacher {spec.teacher!r} depends on {spec.name!r} itself "
                        "(a cycle); pick a teacher that is built without it (e.g. 'dense')")
    resolving.append(spec.name)
    try:
        return resolve(spec.teacher, profile, data, weights=weights, source_weights=source_weights, _cache=cache)
    finally:
        resolving.remove(spec.name)


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
