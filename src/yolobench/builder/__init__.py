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

The package, one idea per module: ``resolving`` (which variant, recipe, data and key to build,
including a ladder from the user's checkpoint), ``models`` (training, calibration or the user's
checkpoint: the rung's model), ``artifact`` (saving, exporting, checking and measuring one artifact,
its ``meta.json``); ``build`` here walks the ladder through the store. Every public name is importable
from ``yolobench.builder`` itself.
"""

from __future__ import annotations

from pathlib import Path

from yolobench import catalogue, offline
# One artifact, built: ``build`` calls ``_build_one`` through this module (a test replaces it here).
from yolobench.builder.artifact import _build_one, _prunable_sparsity, _pruned_layer, measure_accuracy  # noqa: F401
from yolobench.builder.models import Progress
from yolobench.builder.resolving import (BUILDER_VERSION, DATASET_SEED, Resolved, builtin_settings,  # noqa: F401
                                         dataset_for, eval_sets, library_versions, resolve, skip_reason,
                                         train_args, variant_key)
# Recipes and the schedule scale live in yolobench.recipes; these names stay importable from here.
from yolobench.recipes import (EPOCH_SCALE_ENV, RECIPES_ENV, RecipeLoader, adapt_to_network,  # noqa: F401
                               epoch_scale, head_index, is_trial, load_recipe, recipe_path, scaled_epochs,
                               validate_recipe)
from yolobench.store import Artifact, Store

offline.apply()


def build(name: str, profile: str = "smoke", data: str | Path | None = None, *, store: Store | None = None,
          progress: Progress | None = None, weights=None, source_weights=None, _cache: dict | None = None) -> Artifact:
    """The variant's artifact, building it (and its parents) if needed. ``_cache``: resolved records
    shared with earlier calls (``resolve``), so a recipe or dataset is read and checked once.
    ``weights`` / ``source_weights``: the user's checkpoints the ladder starts from (see ``resolve``)."""
    store = store or Store()
    say = progress or (lambda message: None)
    cache = {} if _cache is None else _cache
    built: dict[str, Artifact] = {}
    target = resolve(name, profile, data, weights=weights, source_weights=source_weights, _cache=cache)
    for resolved in build_order(target):
        step, key = resolved.name, resolved.key
        found = store.get(step, key)
        if found is not None:
            built[step] = found
            continue
        parent = built[resolved.parent.name] if resolved.parent is not None else None
        # a teacher is one more dependency, built (or found) before the variant that learns from it
        extra = {"teacher": built[resolved.teacher.name]} if resolved.teacher is not None else {}
        say(f"[{step}] building (key {key})")
        artifact = store.build(step, key, lambda work, out, resolved=resolved, parent=parent, extra=extra:
                               _build_one(resolved, data, parent, work, out, say, **extra))
        built[step] = artifact
        say(f"[{step}] done in {artifact.meta.get('build_seconds', 0):.0f} s: "
            f"mAP@0.5 {format_map(artifact.meta['metrics'].get('map50'))}, sparsity "
            f"{artifact.meta['sparsity']['overall']:.3f}")
    return built[name]


def build_order(resolved: Resolved) -> list[Resolved]:
    """The records ``resolved`` needs built, each before what depends on it and each once: its parents,
    root first, and before each rung that learns from a teacher that teacher's own chain."""
    order: list[Resolved] = []

    def visit(record: Resolved) -> None:
        if any(r.name == record.name for r in order):
            return
        for dependency in (record.parent, record.teacher):
            if dependency is not None:
                visit(dependency)
        order.append(record)

    visit(resolved)
    return order


def format_map(value) -> str:
    """mAP for a progress line or table: '-' where it was not measured (a given model's own data unknown)."""
    return "-" if value is None else f"{value:.3f}"
