"""Knowledge distillation (yolobench.distill): the teacher term, its place in the artifact key and in the
build order, and a tiny training run that learns from a teacher, stopped after an epoch and resumed.

The catalogue has no variant with a teacher yet; the tests add a temporary one (``_with_variant``).
The catalogue's own keys staying as they were is tests/test_full_profile.py's pin of every variant.
"""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest
import torch

from yolobench import builder, catalogue, training
from yolobench.catalogue import VariantSpec
from yolobench.distill import LOSS_NAME, Distiller, distillation_term, head_outputs
from yolobench.errors import UserError
from yolobench.store import Store

PROFILE = "tiny"
IMGSZ = 64  # three scales of 8x8, 4x4, 2x2 positions: 84 per image


def _network(nc: int = 3, seed: int = 0) -> torch.nn.Module:
    """A yolov5n (the smallest head of the family) in eval mode, with BatchNorm statistics and scales
    that are not the identity, so that its outputs depend on every layer."""
    from yolobench import modelio

    torch.manual_seed(seed)
    model = modelio.build_model(modelio.model_config("yolov5nu"), nc)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))


def _perturbed(model: torch.nn.Module, scale: float = 0.05) -> torch.nn.Module:
    other = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for param in other.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * scale)
    return other


# --- the term ------------------------------------------------------------------------------------------
def test_the_term_is_zero_for_a_copy_of_the_teacher_and_positive_for_another_student(images):
    teacher = _network()
    with torch.no_grad():
        target = head_outputs(teacher(images))
        same = distillation_term(head_outputs(copy.deepcopy(teacher)(images)), target)
        other = distillation_term(head_outputs(_perturbed(teacher)(images)), target)
    assert same.item() == 0.0
    assert other.item() > 1e-4
    assert other.dtype == torch.float32


def test_only_the_student_gets_gradients(images):
    teacher = _network()
    student = _perturbed(teacher).train()
    distiller = Distiller(copy.deepcopy(teacher), {"weight": 0.5, "temperature": 2.0})
    term = distiller.term(head_outputs(student(images)), distiller.teacher_outputs(images))
    term.backward()
    grads = [p.grad for p in student.parameters() if p.requires_grad]  # (the head's fixed DFL bins do not)
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None and not p.requires_grad for p in distiller.teacher.parameters())
    assert not distiller.teacher.training
    # the teacher's weights are what they were: nothing moved it
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, distiller.teacher.state_dict()[name]), name


def test_the_term_scales_with_the_weight_and_runs_in_float32_from_bfloat16_outputs(images):
    teacher = _network()
    student = _perturbed(teacher)
    with torch.no_grad():
        s, t = head_outputs(student(images)), head_outputs(teacher(images))
    one = Distiller(teacher, {"weight": 1.0}).term(s, t)
    assert Distiller(teacher, {"weight": 0.25}).term(s, t).item() == pytest.approx(0.25 * one.item(), rel=1e-6)
    low = {k: v.to(torch.bfloat16) for k, v in s.items() if k != "feats"}
    assert distillation_term(low, t).dtype == torch.float32


def _head(scores: list[float], boxes: torch.Tensor) -> dict:
    """Head outputs of one image, one class, len(scores) positions; ``boxes``: [4 * bins, positions]."""
    return {"scores": torch.tensor([[scores]]), "boxes": boxes.unsqueeze(0)}


def test_positions_count_by_the_teachers_confidence_that_something_is_there():
    """The same disagreement about a box costs far more where the teacher sees an object (class
    probability 0.98) than where it sees background (0.0025): background does not outvote objects."""
    bins = 16
    teacher_boxes = torch.zeros(4 * bins, 2)
    teacher_boxes[3::bins] = 4.0  # every side peaked at bin 3, at both positions
    teacher = _head([4.0, -6.0], teacher_boxes)
    at_object, at_background = teacher_boxes.clone(), teacher_boxes.clone()
    at_object[7::bins, 0] = 4.0  # a second peak at bin 7: the same disagreement, at one position or the other
    at_background[7::bins, 1] = 4.0
    on_object = distillation_term(_head([4.0, -6.0], at_object), teacher).item()
    on_background = distillation_term(_head([4.0, -6.0], at_background), teacher).item()
    assert on_background > 0 and on_object > 100 * on_background


def test_a_head_that_does_not_match_the_teachers_is_one_line_naming_both_shapes(images):
    teacher, student = _network(nc=3), _network(nc=2)
    with torch.no_grad():
        s, t = head_outputs(student(images)), head_outputs(teacher(images))
    with pytest.raises(UserError) as caught:
        distillation_term(s, t)
    message = str(caught.value)
    assert "\n" not in message
    assert "student's head outputs (boxes [2, 64, 84], scores [2, 2, 84])" in message
    assert "teacher's (boxes [2, 64, 84], scores [2, 3, 84])" in message


# --- the catalogue, the key and the build order ---------------------------------------------------------
@pytest.fixture
def with_variant(monkeypatch):
    """Add (or replace) catalogue entries for one test."""

    def add(spec: VariantSpec) -> VariantSpec:
        monkeypatch.setitem(catalogue.CATALOGUE, spec.name, spec)
        return spec

    return add


def _student(**changes) -> VariantSpec:
    """`pruned` (a parent, a recipe, two tiny epochs) as a new variant that learns from ``dense``."""
    fields = {"name": "pruned_distilled", "teacher": "dense", **changes}
    return dataclasses.replace(catalogue.get_variant("pruned"), **fields)


def _key(name: str) -> str:
    return builder.variant_key(name, PROFILE, None, _cache={})


def test_a_teacher_and_its_settings_are_part_of_the_students_key(tiny_home, with_variant, monkeypatch):
    monkeypatch.delenv(builder.EPOCH_SCALE_ENV, raising=False)
    pruned = _key("pruned")
    with_variant(_student())
    with_defaults = _key("pruned_distilled")
    assert with_defaults != pruned
    # the settings are keyed as they apply: spelled-out defaults are the same model, another weight is not
    with_variant(_student(distill=catalogue._ro({PROFILE: dict(catalogue.DISTILL_DEFAULTS)})))
    assert _key("pruned_distilled") == with_defaults
    with_variant(_student(distill=catalogue._ro({PROFILE: {"weight": 0.5}})))
    assert _key("pruned_distilled") not in (with_defaults, pruned)
    with_variant(_student(distill=catalogue._ro({"smoke": {"weight": 0.5}})))  # another profile's: no change
    assert _key("pruned_distilled") == with_defaults


def test_the_students_key_follows_its_teachers_key(tiny_home, with_variant, monkeypatch):
    """A teacher that is not the parent: retraining it (other epochs) changes the student's key, not the
    key of its sibling without a teacher."""
    monkeypatch.delenv(builder.EPOCH_SCALE_ENV, raising=False)
    with_variant(_student(teacher="v5n_hardswish"))
    before = {name: _key(name) for name in ("v5n_hardswish", "pruned", "pruned_distilled")}
    teacher = catalogue.get_variant("v5n_hardswish")
    with_variant(dataclasses.replace(teacher, train_args=catalogue._ro({PROFILE: {"epochs": 2}})))
    after = {name: _key(name) for name in before}
    assert after["v5n_hardswish"] != before["v5n_hardswish"]
    assert after["pruned_distilled"] != before["pruned_distilled"]
    assert after["pruned"] == before["pruned"]


def test_a_teacher_is_built_before_its_student(tiny_home, with_variant):
    with_variant(_student(teacher="v5n_hardswish"))
    order = builder.build_order(builder.resolve("pruned_distilled", PROFILE, None))
    assert [r.name for r in order] == ["dense", "v5n_hardswish", "pruned_distilled"]
    with_variant(_student())  # the teacher is the parent too: built once
    order = builder.build_order(builder.resolve("pruned_distilled", PROFILE, None))
    assert [r.name for r in order] == ["dense", "pruned_distilled"]


@pytest.mark.parametrize("changes, match", [
    ({"teacher": None, "distill": catalogue._ro({PROFILE: {"weight": 1.0}})}, "has distill settings but no teacher"),
    ({"distill": catalogue._ro({PROFILE: {"alpha": 1.0}})}, "unknown distill setting 'alpha'.*use weight, temperature"),
    ({"distill": catalogue._ro({PROFILE: {"temperature": 0}})}, "distill temperature=0 .*a number above 0"),
    ({"distill": catalogue._ro({PROFILE: {"weight": "high"}})}, "distill weight='high' .*a number at least 0"),
    ({"teacher": "pruned_distilled"}, "depends on 'pruned_distilled' itself"),
    ({"teacher": "nope"}, "unknown variant 'nope'"),
    ({"kind": catalogue.ONESHOT}, "a teacher needs training"),
])
def test_bad_distillation_settings_are_one_line_errors(tiny_home, with_variant, changes, match):
    with_variant(_student(**changes))
    with pytest.raises(UserError, match=match):
        _key("pruned_distilled")


def test_a_teacher_that_learns_from_its_student_is_a_cycle(tiny_home, with_variant):
    with_variant(_student(teacher="v5n_hardswish"))
    with_variant(dataclasses.replace(catalogue.get_variant("v5n_hardswish"), teacher="pruned_distilled"))
    with pytest.raises(UserError, match="a cycle"):
        _key("pruned_distilled")


# --- training with a teacher ---------------------------------------------------------------------------
@pytest.mark.slow
def test_a_tiny_training_with_a_teacher_reports_its_term_and_resumes(tiny_home, with_variant, monkeypatch):
    """`pruned` (tiny: 2 epochs) learning from `dense`: every epoch's loss items carry the teacher term
    (progress line, results.csv, validation losses); stopped after epoch 1 it resumes at epoch 2 from
    its checkpoint, which holds no teacher; the artifact records its teacher and reloads strictly."""
    monkeypatch.delenv(builder.EPOCH_SCALE_ENV, raising=False)
    store = Store(tiny_home / "store")
    with_variant(_student(distill=catalogue._ro({PROFILE: {"weight": 0.5}})))
    key = _key("pruned_distilled")
    dense = builder.build("dense", PROFILE, store=store)

    seen: list[dict] = []  # each epoch's trainer state, as ultralytics left it
    on_fit_epoch_end = training.RecipeTrainer._on_fit_epoch_end

    def record(trainer):
        seen.append({"loss_names": trainer.loss_names, "metrics": dict(trainer.metrics),
                     "state_keys": set(trainer.model.state_dict()),
                     "csv": trainer.csv.read_text().splitlines()[0].split(",")})
        on_fit_epoch_end(trainer)

    monkeypatch.setattr(training.RecipeTrainer, "_on_fit_epoch_end", record)

    first: list[str] = []

    def stop_after_first_epoch(message: str) -> None:
        if "epoch 1/" in message:
            first.append(message)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        builder.build("pruned_distilled", PROFILE, store=store, progress=stop_after_first_epoch)
    assert store.state("pruned_distilled", key) == "partial"
    resumed: list[str] = []
    artifact = builder.build("pruned_distilled", PROFILE, store=store, progress=resumed.append)

    epochs = [m for m in resumed if "] epoch " in m]
    assert epochs and epochs[0].startswith("[pruned_distilled] epoch 2/2"), epochs
    for line in first + epochs:
        value = re.search(rf"{LOSS_NAME} (\S+)", line)
        assert value and float(value.group(1)) > 0, line
    assert [s["loss_names"] for s in seen] == [("box_loss", "cls_loss", "dfl_loss", LOSS_NAME)] * 2
    assert f"train/{LOSS_NAME}" in seen[-1]["csv"] and f"val/{LOSS_NAME}" in seen[-1]["csv"]
    assert seen[-1]["metrics"][f"val/{LOSS_NAME}"] > 0  # the last epoch is validated, with the teacher
    assert seen[0]["state_keys"] == seen[1]["state_keys"]
    assert not any("distiller" in k or "teacher" in k for k in seen[0]["state_keys"])
    assert artifact.meta["teacher"] == {"variant": "dense", "key": dense.key,
                                        "distill": {"weight": 0.5, "temperature": 2.0}}
    assert artifact.meta["parent"]["key"] == dense.key
    artifact.load_torch()  # weights.pt reloads strictly into the plain network
