"""A ladder that starts from the user's model (``--weights``, ``--source-weights``): which rungs apply,
how the repository's recipes move to another network's layout, and the keys derived from a checkpoint.

The builds from a real ``yolo train`` checkpoint are in ``tests/test_weights_build.py``.
"""

from __future__ import annotations

import re

import pytest
import yaml

from yolobench import catalogue, paths, recipes
from yolobench.errors import UserError
from yolobench.recipes import RecipeLoader

RECIPES = ("pruned.yaml", "pruned_quant.yaml", "qat.yaml", "oneshot.yaml", "transfer.yaml", "source_pq.yaml")
# Detect's index in each family ultralytics 8.4 trains (its own YAML files)
HEADS = {"yolov5nu": 24, "yolov8n": 22, "yolo11n": 23}


@pytest.mark.parametrize("family", sorted(HEADS))
def test_head_index_of_each_family(family):
    from yolobench.modelio import model_config

    assert recipes.head_index(model_config(family)) == HEADS[family]


def test_head_index_refuses_a_network_without_detect():
    cfg = {"backbone": [[-1, 1, "Conv", [16, 3, 2]]], "head": [[-1, 1, "Classify", ["nc"]]]}
    with pytest.raises(UserError, match="not Detect"):
        recipes.head_index(cfg)


@pytest.mark.parametrize("recipe", RECIPES)
def test_yolov5u_layout_is_left_as_written(recipe):
    text = (paths.repo_root() / "recipes" / recipe).read_text()
    assert recipes.adapt_to_network(text, 24) == text


def _pruned_params(text: str) -> list[str]:
    doc = yaml.load(text, Loader=RecipeLoader)
    return [p[3:] for mod in doc.get("pruning_modifiers", []) for p in mod.get("params", [])]


def _submodules(text: str) -> list[str]:
    doc = yaml.load(text, Loader=RecipeLoader)
    return [s for mod in doc.get("quantization_modifiers", []) for s in mod.get("submodules", [])]


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("head", [22, 23])
def test_moved_recipe_selects_the_same_kinds_of_layers(recipe, head):
    """Pruned: every conv of model.1 .. model.<head-1> and the head's 3x3 blocks, never model.0 nor the
    head's last 1x1 convs; quantized: model.0 .. model.<head-1> and the same head blocks as on yolov5u."""
    text = (paths.repo_root() / "recipes" / recipe).read_text()
    moved = recipes.adapt_to_network(text, head, recipe)
    for pattern in _pruned_params(moved):
        regex = re.compile(pattern)
        body = [i for i in range(0, head + 2) if regex.match(f"model.{i}.cv1.conv.weight")]
        if body:
            assert body == list(range(1, head)), pattern
        else:
            assert regex.match(f"model.{head}.cv2.0.1.conv.weight") and regex.match(f"model.{head}.cv3.2.0.conv.weight")
            assert not regex.match(f"model.{head}.cv3.2.2.weight") and not regex.match("model.24.cv2.0.0.conv.weight")
    original = _submodules(text)
    if original:
        moved_subs = _submodules(moved)
        assert moved_subs[:head] == [f"model.{i}" for i in range(head)]
        assert moved_subs[head:] == [s.replace("model.24.", f"model.{head}.") for s in original[24:]]
    # the schedule is untouched
    strip = lambda t: {k: v for k, v in yaml.load(t, Loader=RecipeLoader).items() if not k.endswith("modifiers")}  # noqa: E731
    assert strip(moved) == strip(text)


def test_a_recipe_in_another_form_is_refused_not_silently_ignored():
    text = "quantization_modifiers:\n  - !QuantizationModifier\n    submodules: [model.1, model.2]\n"
    with pytest.raises(UserError, match="model.0 .. model.23"):
        recipes.adapt_to_network(text, 22, "odd.yaml")


def test_moved_recipes_load_in_sparseml():
    from yolobench import shims

    shims.apply()
    from sparseml.pytorch.optim import ScheduledModifierManager

    for recipe in RECIPES:
        text = recipes.adapt_to_network((paths.repo_root() / "recipes" / recipe).read_text(), 22, recipe)
        ScheduledModifierManager.from_yaml(text)


# --- which rungs a ladder from the user's model has -----------------------------------------------------
def test_catalogue_alone_skips_nothing():
    assert all(catalogue.skip_reason(n) is None for n in catalogue.VARIANT_NAMES)


def test_weights_keep_the_dense_family_and_skip_the_rest_with_a_reason():
    applies = [n for n in catalogue.VARIANT_NAMES if catalogue.skip_reason(n, weights=True) is None]
    assert applies == ["dense", "oneshot", "pruned", "pruned_quant", "thin", "thin_pq"]
    assert "--source-weights" in catalogue.skip_reason("transfer", weights=True)
    assert "recipes/v5n_hardswish.model.yaml" in catalogue.skip_reason("v5n_hardswish_pq", weights=True)
    assert "without --weights" in catalogue.skip_reason("v5n_hardswish_pq", weights=True)


def test_source_weights_alone_add_transfer_and_keep_the_catalogue():
    assert all(catalogue.skip_reason(n, source_weights=True) is None for n in catalogue.VARIANT_NAMES)
    both = [n for n in catalogue.VARIANT_NAMES if catalogue.skip_reason(n, weights=True, source_weights=True) is None]
    assert both == ["dense", "oneshot", "pruned", "pruned_quant", "source_pq", "transfer", "thin", "thin_pq"]


@pytest.mark.parametrize("family, skipped", [("yolov5su", False), ("yolov5nu", False), ("yolov8n", True)])
def test_thin_rungs_need_the_layers_their_recipe_names(family, skipped, tmp_path):
    """recipes/thin.yaml names yolov5u's single-consumer convolutions one by one (SparseML groups a filter
    with its BatchNorm only by name): a --weights ladder of another network skips thin and thin_pq with
    the reason, and keeps every rung whose recipe selects layers by pattern."""
    from yolobench import builder, modelio

    weights = tmp_path / "weights.pt"
    cfg = modelio.model_config(family)
    modelio.save_weights(weights, modelio.build_model(cfg, 3), cfg=cfg, nc=3, names={0: "a", 1: "b", 2: "c"},
                         recipe_text=None, recipe_variables=None)
    for name in ("thin", "thin_pq"):
        reason = builder.skip_reason(name, weights=weights)
        assert (reason is not None) == skipped, reason
        if skipped:
            assert "thin.yaml" in reason and "model.6.m.2.cv1" in reason
    assert builder.skip_reason("pruned_quant", weights=weights) is None
