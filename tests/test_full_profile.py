"""The `full` profile's sizing rules, the epoch scale and the per-size validation sets (no training)."""

from __future__ import annotations

import pytest

from yolobench import builder, catalogue
from yolobench.catalogue import Profile
from yolobench.errors import UserError

# Train small, run big: a 2x gap between training and running size kept the accuracy (smoke dense
# trained at 160: mAP@0.5 0.744 at 160, 0.740 run at 320); a 4x gap did not (0.293 at 640).
MAX_RUN_TO_TRAIN_RATIO = 2.0


def test_full_runs_at_the_blogs_sizes_within_twice_its_training_size():
    full = catalogue.get_profile("full")
    assert set(full.export_imgsz) == {640, 416}
    assert max(full.export_imgsz) / full.train_imgsz <= MAX_RUN_TO_TRAIN_RATIO
    # every variant's full schedule is written down (none falls back to a recipe file's default by accident)
    for spec in catalogue.CATALOGUE.values():
        if spec.kind == catalogue.TRAIN:
            assert "epochs" in spec.args_for("full") or "num_epochs" in spec.variables_for("full"), spec.name


def test_the_epoch_scale_lengthens_every_schedule_and_is_part_of_the_key(tiny_home, monkeypatch):
    monkeypatch.delenv(builder.EPOCH_SCALE_ENV, raising=False)
    dense, pq = catalogue.get_variant("dense"), catalogue.get_variant("thin_pq")
    base_key = builder.variant_key("thin_pq", "smoke", None)
    base_vars = builder.load_recipe(pq, "smoke")[1]
    base_epochs = builder.train_args(dense, "smoke")["epochs"]
    monkeypatch.setenv(builder.EPOCH_SCALE_ENV, "2")
    assert builder.train_args(dense, "smoke")["epochs"] == 2 * base_epochs
    scaled = builder.load_recipe(pq, "smoke")[1]
    for name in ("num_epochs", "pruning_end_epoch", "quantization_start_epoch"):
        assert scaled[name] == 2 * base_vars[name], name
    assert scaled["pruning_start_epoch"] == 0  # "start at once" stays at once
    assert "final_sparsity" not in scaled and "update_frequency" not in scaled  # not epoch counts: untouched
    assert builder.variant_key("thin_pq", "smoke", None) != base_key


@pytest.mark.parametrize("value", ["0", "-1", "fast", "nan"])
def test_a_bad_epoch_scale_names_the_variable(monkeypatch, value):
    monkeypatch.setenv(builder.EPOCH_SCALE_ENV, value)
    with pytest.raises(UserError, match=f"{builder.EPOCH_SCALE_ENV}="):
        builder.epoch_scale()


def test_validation_images_are_rendered_at_each_export_size(tiny_home):
    import cv2

    from yolobench.evaluate import validation_set

    tiny = catalogue.get_profile("tiny")
    two_sizes = Profile(name="tiny", description="", train_imgsz=64, export_imgsz=(96, 64), dataset=tiny.dataset,
                        batch=tiny.batch, trainer=tiny.trainer)
    sets = builder.eval_sets(catalogue.get_variant("dense"), two_sizes, None)
    assert sets[64] == builder.dataset_for(catalogue.get_variant("dense"), two_sizes, None)
    for imgsz, data_yaml in sets.items():
        images, labels, _ = validation_set(data_yaml)
        assert len(images) == tiny.dataset["val"]
        assert cv2.imread(str(images[0])).shape[:2] == (imgsz, imgsz)


def test_full_trains_the_transfer_origin_on_the_broad_domain_whatever_the_users_data(monkeypatch, tmp_path):
    from yolobench import data

    calls = []
    monkeypatch.setattr(data, "builtin_dataset", lambda domain, **kw: calls.append((domain, kw)) or
                        tmp_path / domain / str(kw["imgsz"]) / "data.yaml")
    full, smoke = catalogue.get_profile("full"), catalogue.get_profile("smoke")
    source, dense = catalogue.get_variant("source_pq"), catalogue.get_variant("dense")
    user = tmp_path / "mine" / "data.yaml"
    # source_pq: the same broad set with or without the user's data (built once per machine)
    assert builder.dataset_for(source, full, user) == builder.dataset_for(source, full, None)
    assert calls[-1] == ("broad", {"seed": builder.DATASET_SEED, "train": 640, "val": 96, "imgsz": 320})
    assert set(builder.eval_sets(source, full, user)) == {640, 416}
    assert {c[0] for c in calls} == {"broad"}
    # smoke keeps its small 3-class source; target variants take the user's data
    builder.dataset_for(source, smoke, None)
    assert calls[-1][0] == "source" and calls[-1][1]["train"] == smoke.dataset["train"]
    assert builder.dataset_for(dense, full, user) == user.resolve()


def test_a_parent_with_other_classes_gives_all_but_its_class_outputs():
    torch = pytest.importorskip("torch")
    from yolobench.training import class_head_adapted

    parent = {"model.0.conv.weight": torch.ones(4, 3, 3, 3), "model.24.cv3.0.2.weight": torch.ones(14, 8, 1, 1),
              "model.24.cv3.0.2.bias": torch.ones(14), "model.24.cv2.0.2.bias": torch.ones(64)}
    own = {"model.0.conv.weight": torch.zeros(4, 3, 3, 3), "model.24.cv3.0.2.weight": torch.zeros(3, 8, 1, 1),
           "model.24.cv3.0.2.bias": torch.zeros(3), "model.24.cv2.0.2.bias": torch.zeros(64)}
    out = class_head_adapted(parent, own)
    assert out["model.0.conv.weight"].sum() == 4 * 27 and out["model.24.cv2.0.2.bias"].sum() == 64  # kept
    assert out["model.24.cv3.0.2.weight"].shape == (3, 8, 1, 1) and out["model.24.cv3.0.2.bias"].sum() == 0  # fresh
    own["model.0.conv.weight"] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(ValueError, match=r"model\.0\.conv\.weight is \(4, 3, 3, 3\) in the parent"):
        class_head_adapted(parent, own)


# Artifact keys of the tiny profile, as `yolobench build --list --profile tiny` printed them on
# 2026-12-02: a refactor must not change them (a changed key rebuilds every store). Change a pin only
# with the change that means to rebuild (a recipe, the data, a pinned library), and say so.
# 2026-12-03: pruned_quant and v5n_hardswish_pq re-pinned: recipes/pruned_quant.yaml quantizes the
# Detect head's 3x3 blocks (was 1d27cfea66f95a24 and 190510f2b03a43dd).
# 2026-12-04: every catalogue variant pinned, as main's code at 710bc1a computed them
# (`builder.variant_key(name, "tiny", None)` for each name, YOLOBENCH_EPOCH_SCALE unset), before
# VariantSpec gained `teacher` and `distill`: fields added later must leave these keys as they are. A
# new variant adds its own key here; a change of the builder or a recipe legitimately changes keys.
# 2026-12-04 (later): thin, thin_pq, v5n_thin and v5n_thin_pq learn from a teacher (dense, v5n_hardswish),
# which keys them anew (were edaaedbf33cfca84, 277137516de8f01e, a2db9714ed82a1d2, b96aa50225a09732).
# 2026-12-04 (session 15): pruned_quant is pruned + QAT (recipes/qat.yaml), and recipes/pruned_quant.yaml's header says
# who uses it now, which keys its three users anew (pruned_quant, thin_pq, v5n_hardswish_pq, v5n_thin_pq
# were fba2df4a88234264, d0edec5ecf413ea8, f726990fa388e9f6, b3f2d5c914b6a0ce).
PINNED_TINY_KEYS = {"dense": "a5c800e4d5205519", "oneshot": "a33175194a3b930b", "pruned": "278eaae731488cb2",
                    "pruned_quant": "40a003eeb5d3de09", "source_pq": "374a3e27fe9f9ec4",
                    "transfer": "f92ab925c8b25f2d", "thin": "98a5aa3cd66ae1df", "thin_pq": "6e3ed2e94044d84a",
                    "v5n_hardswish": "e2d3ec8515433b95", "v5n_hardswish_oneshot": "2c61ea15ee3ebb64",
                    "v5n_hardswish_pq": "f6b1496448c442a0", "v5n_thin": "f61b25a31e00706f",
                    "v5n_thin_pq": "ecdc9a0193e50e68"}


def test_artifact_keys_are_pinned(tiny_home, monkeypatch):
    monkeypatch.delenv(builder.EPOCH_SCALE_ENV, raising=False)
    cache: dict = {}
    assert {name: builder.variant_key(name, "tiny", None, _cache=cache) for name in catalogue.VARIANT_NAMES} \
        == PINNED_TINY_KEYS


def test_build_list_as_json(tiny_home, tmp_path, capsys, monkeypatch):
    import json

    from yolobench import cli

    monkeypatch.delenv(builder.EPOCH_SCALE_ENV, raising=False)
    assert cli.main(["build", "--list", "--profile", "tiny", "--json", "--store", str(tmp_path / "empty")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in rows] == list(catalogue.VARIANT_NAMES)
    assert {r["state"] for r in rows} == {"missing"} and rows[0]["key"] == PINNED_TINY_KEYS["dense"]
