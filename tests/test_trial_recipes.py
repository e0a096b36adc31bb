"""Trial recipes (YOLOBENCH_RECIPES): a folder of recipe files that replace the repository's by name,
taken as written, hashed into the key, so a trial never replaces the catalogue's artifact."""

from __future__ import annotations

import pytest

from yolobench import builder, catalogue, paths, recipes
from yolobench.errors import UserError


def _trial_folder(tmp_path, text: str):
    folder = tmp_path / "trial"
    folder.mkdir()
    (folder / "pruned_quant.yaml").write_text(text)
    return folder


def _repo_recipe() -> str:
    return (paths.repo_root() / "recipes" / "pruned_quant.yaml").read_text()


def test_a_trial_recipe_gets_its_own_key_and_is_taken_as_written(tiny_home, tmp_path, monkeypatch):
    monkeypatch.delenv(builder.RECIPES_ENV, raising=False)
    spec = catalogue.get_variant("v5n_hardswish_pq")
    base = {name: builder.variant_key(name, "tiny", None) for name in ("dense", "v5n_hardswish_pq", "pruned")}
    assert builder.load_recipe(spec, "tiny")[1]  # the catalogue overrides tiny's schedule

    trial = _repo_recipe().replace("final_sparsity: 0.75", "final_sparsity: 0.9")
    assert trial != _repo_recipe()
    folder = _trial_folder(tmp_path, trial)
    monkeypatch.setenv(builder.RECIPES_ENV, str(folder))
    text, variables = builder.load_recipe(spec, "tiny")
    assert text == trial and variables == {}  # no catalogue override: the trial's 0.9 is what trains
    assert recipes.recipe_variable(text, variables, "final_sparsity") == 0.9
    assert builder.recipe_path(spec) == folder / "pruned_quant.yaml" and builder.is_trial(builder.recipe_path(spec))
    assert builder.variant_key("v5n_hardswish_pq", "tiny", None) != base["v5n_hardswish_pq"]
    # variants whose recipe the folder does not hold, and their parents, keep their keys
    assert builder.variant_key("dense", "tiny", None) == base["dense"]
    assert builder.variant_key("pruned", "tiny", None) == base["pruned"]
    assert not builder.is_trial(builder.recipe_path(catalogue.get_variant("pruned")))


def test_a_trial_folder_that_is_not_there_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(builder.RECIPES_ENV, str(tmp_path / "missing"))
    with pytest.raises(UserError, match=f"{builder.RECIPES_ENV}=.*is not a folder"):
        builder.recipe_path(catalogue.get_variant("v5n_hardswish_pq"))


def test_a_malformed_trial_recipe_names_the_trial_file(monkeypatch, tmp_path):
    folder = _trial_folder(tmp_path, "version: 1.1.0\nmodifiers: [\n")
    monkeypatch.setenv(builder.RECIPES_ENV, str(folder))
    with pytest.raises(UserError, match=r"trial/pruned_quant\.yaml:\d+: not valid YAML"):
        builder.load_recipe(catalogue.get_variant("v5n_hardswish_pq"), "tiny")
