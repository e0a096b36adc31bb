"""SparseML recipes as the build reads them: the file of a variant, the profile's variable overrides,
the one-option schedule scale, validation with a one-line error, and a YAML loader for their tags.

Must not: import torch or SparseML at module import (listing variants and keys stays cheap);
``validate_recipe`` imports SparseML when it runs.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import yaml

from yolobench import paths
from yolobench.catalogue import VariantSpec
from yolobench.errors import UserError

# One option lengthens every schedule (a GPU, more cores): epochs of from-scratch training and every
# epoch variable of a recipe are multiplied by it, so a variant's phases keep their proportions.
EPOCH_SCALE_ENV = "YOLOBENCH_EPOCH_SCALE"
# Trying a recipe without editing the catalogue: a folder of recipe files that replace the repository's
# by file name (e.g. DIR/pruned_quant.yaml for every variant built from pruned_quant.yaml). A recipe
# from there is taken as written: the catalogue's per-profile variable overrides are NOT applied (the
# trial file states its own schedule and sparsities), the epoch scale still is. Its text is hashed into
# the artifact key like any recipe, so a trial never replaces the catalogue's artifact in the store, and
# every command run with the same setting (build, bench, profile, parity) sees the trial variant.
RECIPES_ENV = "YOLOBENCH_RECIPES"
_EPOCH_VARIABLE = re.compile(r"^(?:num_epochs|qat_epochs|\w+_epoch)$")


def epoch_scale() -> float:
    """The schedule multiplier from ``YOLOBENCH_EPOCH_SCALE`` (default 1: the catalogue's schedules)."""
    text = os.environ.get(EPOCH_SCALE_ENV, "").strip()
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"{EPOCH_SCALE_ENV}={text!r}: give a positive number (2 doubles every training "
                        "schedule; 1 or unset keeps the catalogue's)")
    return value


def scaled_epochs(value, scale: float):
    if scale == 1.0 or value <= 0:  # epoch 0 (start at once) stays 0
        return value
    return max(1, int(round(value * scale)))


def trial_recipes() -> Path | None:
    """The folder named by ``YOLOBENCH_RECIPES`` (None when unset)."""
    text = os.environ.get(RECIPES_ENV, "").strip()
    if not text:
        return None
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise UserError(f"{RECIPES_ENV}={text!r} is not a folder: point it at a folder of recipe files named "
                        f"like those in recipes/ (e.g. pruned_quant.yaml), or unset it")
    return folder


def recipe_path(spec: VariantSpec) -> Path | None:
    """The variant's recipe file: the trial folder's copy if it has one, else the repository's."""
    if not spec.recipe:
        return None
    folder = trial_recipes()
    if folder is not None and (folder / spec.recipe).is_file():
        return folder / spec.recipe
    return paths.repo_root() / "recipes" / spec.recipe


def is_trial(path: Path | None) -> bool:
    return path is not None and path.parent.resolve() != (paths.repo_root() / "recipes").resolve()


def load_recipe(spec: VariantSpec, profile: str) -> tuple[str | None, dict]:
    """Recipe text and the profile's variable overrides, checked so a malformed recipe fails early."""
    path = recipe_path(spec)
    if path is None:
        return None, {}
    try:
        text = path.read_text()
    except OSError as err:
        raise UserError(f"recipe {path} for variant {spec.name!r} cannot be read ({err.strerror}); "
                        f"restore it from git") from None
    # a trial recipe is taken as written; the catalogue's overrides belong to the repository's recipes
    variables = {} if is_trial(path) else spec.variables_for(profile)
    scale = epoch_scale()
    if scale != 1.0:
        doc = yaml.load(text, Loader=RecipeLoader)
        for name, value in (doc.items() if isinstance(doc, dict) else ()):
            value = variables.get(name, value)
            if _EPOCH_VARIABLE.match(str(name)) and isinstance(value, (int, float)) and not isinstance(value, bool):
                variables[name] = scaled_epochs(value, scale)
    validate_recipe(path, text, variables)
    return text, variables


def validate_recipe(path: Path, text: str, variables: dict) -> None:
    """One-line UserError naming the file and the bad field for a malformed recipe."""
    try:
        doc = yaml.load(text, Loader=RecipeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)}); fix the recipe") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path}: a recipe must be a YAML mapping of variables and modifier lists")
    for key in variables:
        if key not in doc:
            raise UserError(f"{path}: the profile overrides variable {key!r}, which the recipe does not "
                            f"define; add it to the recipe or remove the override")
    from yolobench import shims

    shims.apply()
    from sparseml.pytorch.optim import ScheduledModifierManager

    try:
        ScheduledModifierManager.from_yaml(text, recipe_variables=variables)
    except Exception as err:  # sparseml raises ValueError/TypeError/KeyError/… for a bad field
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: invalid recipe field: {message}; see the SparseML modifier docs "
                        f"for the accepted fields") from None


class RecipeLoader(yaml.SafeLoader):
    """Safe YAML loader that accepts SparseML's ``!ModifierName`` tags (as plain mappings)."""


RecipeLoader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_mapping(node))


def recipe_variable(recipe_text: str | None, variables: dict, name: str):
    """A top-level recipe variable: the profile's override, else the recipe file's value, else None."""
    if name in variables:
        return variables[name]
    data = yaml.load(recipe_text or "", Loader=RecipeLoader) or {}
    return data.get(name) if isinstance(data, dict) else None


# --- One recipe, any YOLOv5u/YOLOv8/YOLO11 detection network -----------------------------------------
# The repository's recipes name layers by position in yolov5u's layout: model.0 is the stem, model.1 ..
# model.23 the backbone and neck, model.24 the Detect head. Every ultralytics detection network has the
# same shape (stem, body, Detect last), only the head's index differs (yolov8: 22, yolo11: 23), so a
# user's network gets the same recipe with the positions moved: the same kinds of layers pruned and
# quantized, the same schedule. Each rewrite is checked to have happened, so a recipe edited into
# another form fails with its name instead of silently pruning nothing.
YOLOV5U_HEAD_INDEX = 24
_BODY_RANGE = r"(?:[1-9]|1[0-9]|2[0-3])"  # model.1 .. model.23, as the recipes write it
_SUBMODULES = re.compile(r"(submodules:\s*)\[([^\]]*)\]", re.S)


def head_index(cfg: dict) -> int:
    """Index of the Detect layer in a model YAML dict (the last layer of every ultralytics detector)."""
    layers = list(cfg.get("backbone") or []) + list(cfg.get("head") or [])
    if not layers or "Detect" not in str(layers[-1][2]):
        raise UserError(f"model {cfg.get('yaml_file', '?')}: its last layer is {layers[-1][2] if layers else 'missing'}, "
                        "not Detect: yolobench builds detection models whose head is ultralytics' Detect")
    return len(layers) - 1


def _body_alternation(head: int) -> str:
    return "(?:" + "|".join(str(i) for i in range(head - 1, 0, -1)) + ")"


def adapt_to_network(text: str, head: int, label: str = "recipe") -> str:
    """``text`` (written for yolov5u, Detect at 24) with its layer positions moved to a network whose
    Detect layer is ``head``; unchanged for head 24. Comment lines are left as written."""
    if head == YOLOV5U_HEAD_INDEX:
        return text
    if head < 2:
        raise UserError(f"{label}: a network whose Detect layer is model.{head} has no body to sparsify")
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.lstrip().startswith("#"):
            line = (line.replace(_BODY_RANGE, _body_alternation(head))
                    .replace(rf"model\.{YOLOV5U_HEAD_INDEX}\.", rf"model\.{head}\.")
                    .replace(f"model.{YOLOV5U_HEAD_INDEX}.", f"model.{head}."))
        lines.append(line)
    adapted = "".join(lines)

    def submodules(match: re.Match) -> str:
        entries = [e.strip() for e in match.group(2).split(",") if e.strip()]
        body = [f"model.{i}" for i in range(YOLOV5U_HEAD_INDEX)]
        if entries[:YOLOV5U_HEAD_INDEX] != body:
            raise UserError(f"{label}: its quantization submodules do not start with model.0 .. model.23, so "
                            "they cannot be moved to another network's layout; list them in that form")
        moved = [f"model.{i}" for i in range(head)] + entries[YOLOV5U_HEAD_INDEX:]
        return match.group(1) + "[" + ", ".join(moved) + "]"

    adapted = _SUBMODULES.sub(submodules, adapted)
    code = "".join(line for line in adapted.splitlines(keepends=True) if not line.lstrip().startswith("#"))
    if _BODY_RANGE in code or f"model.{YOLOV5U_HEAD_INDEX}." in code or rf"model\.{YOLOV5U_HEAD_INDEX}\." in code:
        raise UserError(f"{label}: still names yolov5u's layer positions after moving them to a network with "
                        f"Detect at model.{head}; write its layer patterns as the repository's recipes do")
    return adapted
