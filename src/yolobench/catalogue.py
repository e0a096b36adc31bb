"""The catalogue: every rung of the blog's sparsification ladder, as data.

A newcomer adds a variant by adding a recipe file under ``recipes/`` and one ``VariantSpec`` here;
the builder, the fixtures, the benchmarks and the report pick it up from ``CATALOGUE``.

Profiles decide the sizes: ``smoke`` (CI: small images, few epochs, every variant) and ``full``
(yolov5s/yolov5n exported at 640 and 416, real training lengths). Recipe files carry their own
defaults; a profile overrides only the schedule variables it names (epochs, sparsity), and those
overrides are part of the artifact key and of ``meta.json``.

Must not: import torch, ultralytics or sparseml (the CLI lists the catalogue without them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType

from yolobench.errors import UserError

# Build kinds
TRAIN = "train"  # ultralytics trainer, optionally driven by a recipe
ONESHOT = "oneshot"  # recipe applied with calibration only, no training


@dataclass(frozen=True)
class VariantSpec:
    name: str
    description: str
    model: str  # ultralytics model name ("yolov5su") or a recipes/*.model.yaml override
    parent: str | None = None  # variant whose trained weights this one starts from
    recipe: str | None = None  # file under recipes/
    kind: str = TRAIN
    domain: str = "target"  # built-in dataset configuration: "target" or "source" (transfer learning)
    quantized: bool = False
    sparsity_target: str | None = None  # recipe variable holding the final sparsity, if pruned
    # trainer arguments per profile (merged over the profile's own defaults)
    train_args: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    # recipe variable overrides per profile
    recipe_variables: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    # Start from the parent's network without the channels its structured pruning zeroed
    # (modelio.thin_model): the child trains, prunes and quantizes a thinner network. Left out of the
    # artifact key while False, so the variants without it keep their keys.
    thin: bool = False
    # Knowledge distillation: a variant (e.g. "dense", a float model of the same classes) whose outputs
    # this one also learns from while it trains (yolobench.distill), and per-profile settings over
    # DISTILL_DEFAULTS ({"full": {"weight": 0.5}}). Both are left out of the artifact key while unset; a
    # teacher puts its own key and the profile's settings into the student's.
    teacher: str | None = None
    distill: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def args_for(self, profile: str) -> dict:
        return dict(self.train_args.get(profile, {}))

    def variables_for(self, profile: str) -> dict:
        return dict(self.recipe_variables.get(profile, {}))


# Distillation settings (VariantSpec.distill), each profile's merged over these:
# - weight: the teacher term's factor in the training loss (loss = detection loss + weight x term). The
#   term is a mean per position, normalised as ultralytics normalises its box, cls and dfl items, and
#   zero where the student answers as the teacher does: it grows only as far as pruning and quantization
#   move the student away from a teacher it started from. 1.0 weighs it like one of those items; a
#   starting point, not a tuned value (a variant's profile sets its own).
# - temperature: both networks' class logits and box-bin logits are divided by it before they are
#   compared; above 1 the teacher's "almost" answers (a class at 0.2, a neighbouring box bin) count
#   more. 2.0 is the usual mild softening; the term is multiplied by temperature^2 so that its gradient
#   keeps its size whatever the temperature.
DISTILL_DEFAULTS = MappingProxyType({"weight": 1.0, "temperature": 2.0})


def distill_settings(spec: VariantSpec, profile: str) -> dict:
    """The variant's distillation settings under ``profile`` (DISTILL_DEFAULTS and the profile's own),
    checked; {} for a variant without a teacher."""
    if spec.teacher is None:
        if spec.distill:
            raise UserError(f"variant {spec.name!r}: has distill settings but no teacher; set teacher= to a "
                            "variant name (e.g. 'dense') or remove distill")
        return {}
    if spec.kind != TRAIN:
        raise UserError(f"variant {spec.name!r}: a teacher needs training, and kind={spec.kind!r} does not "
                        f"train; remove teacher= or make it kind={TRAIN!r}")
    given = dict(spec.distill.get(profile, {}))
    unknown = sorted(set(given) - set(DISTILL_DEFAULTS))
    if unknown:
        raise UserError(f"variant {spec.name!r}: unknown distill setting {unknown[0]!r} under profile "
                        f"{profile!r}; use {', '.join(DISTILL_DEFAULTS)}")
    settings = {**DISTILL_DEFAULTS, **given}
    for name, value in settings.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or value < 0 or (name == "temperature" and value == 0):
            raise UserError(f"variant {spec.name!r}: distill {name}={value!r} under profile {profile!r}; "
                            f"give a number {'above' if name == 'temperature' else 'at least'} 0")
        settings[name] = float(value)
    return settings


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    train_imgsz: int
    export_imgsz: tuple[int, ...]
    dataset: MappingProxyType  # builtin_dataset() arguments: train, val, imgsz
    batch: int
    trainer: MappingProxyType  # ultralytics trainer defaults for this profile


def _ro(mapping: dict) -> MappingProxyType:
    return MappingProxyType({k: MappingProxyType(v) if isinstance(v, dict) else v for k, v in mapping.items()})


PROFILES = {
    "smoke": Profile(
        name="smoke",
        description="CI: 160 px, few epochs, every variant; must build cold in < 25 min on 2 cores",
        train_imgsz=160,
        export_imgsz=(160,),
        # 448 images: the optimizer-step count, not the data's difficulty, limited accuracy (192 images
        # x 30 epochs reached mAP@0.5 0.50; yolov5n on 512 images reached 0.67, measured here).
        dataset=MappingProxyType({"train": 448, "val": 48, "imgsz": 160}),
        batch=16,
        # val=False: ultralytics still validates the final epoch, which is the one we keep.
        # amp="bf16": float epochs autocast to bfloat16 on the CPU (shims 4; the loss stays float32,
        # QAT epochs run in float32). A yolov5s epoch at 160 px: 20 s in float32, 13 s in bfloat16; dense
        # x 28 epochs reached mAP@0.5 0.61 in float32 and 0.75 this way (one run each:
        # results/trials/2026-11-28-dense-training-trials.md).
        trainer=MappingProxyType({"val": False, "warmup_epochs": 0, "close_mosaic": 2, "patience": 0,
                                  "amp": "bf16"}),
    ),
    "tiny": Profile(
        name="tiny",
        description="the test suite's: every code path in seconds (64 px, 1-3 epochs); numbers meaningless",
        train_imgsz=64,
        export_imgsz=(64,),
        dataset=MappingProxyType({"train": 32, "val": 8, "imgsz": 64}),
        batch=8,
        trainer=MappingProxyType({"val": False, "warmup_epochs": 0, "close_mosaic": 0, "patience": 0,
                                  "amp": "bf16"}),
    ),
    "full": Profile(
        name="full",
        description="the blog's sizes on a 2-core CPU: trained at 320 px, exported and judged at 640 "
                    "and 416 px; the whole ladder must build cold in <= 150 min on 2 cores",
        # Trained at 320, run at 640: a model's speed at 640 depends on its architecture, sparsity and
        # quantization, not on its training length, and a 2x gap between training and running size kept
        # the accuracy (smoke dense trained at 160: mAP@0.5 0.744 run at 160, 0.740 run at 320 on
        # 320-px images; a 4x gap fell to 0.293). A yolov5s epoch over 448 images at 320 px took 27 s
        # here (bf16, 2 cores) against ~13 s at 160 px, so 320 px fits the 150-minute budget.
        train_imgsz=320,
        export_imgsz=(640, 416),
        # Training images rendered at the training size (no decode of pixels the trainer throws away);
        # accuracy is measured on validation images rendered at each export size (builder.eval_sets).
        dataset=MappingProxyType({"train": 640, "val": 96, "imgsz": 320}),
        batch=16,
        trainer=MappingProxyType({"val": False, "warmup_epochs": 0, "close_mosaic": 3, "patience": 0,
                                  "amp": "bf16"}),
    ),
}

# The built-in data a profile's *source*-domain variants (source_pq) train on, where it is not the
# profile's own `dataset` settings in the 3-class source domain. `full` trains the transfer origin on
# the broad domain: 14 classes in four looks (data/synth.py), twice the target's images, because the
# blog's origin was a model trained on a large, broad dataset (COCO) fine-tuned onto a small one; a
# 3-class source trained for 14 epochs made smoke's `transfer` reach only 56% of dense's mAP@0.5.
# Smoke keeps the small source: CI minutes. The source data never depends on the user's `--data`, so
# source_pq is built once per machine and every target dataset's `transfer` starts from it.
# (A separate table, not a Profile field: a new field would change every variant's artifact key.)
# 640 images, as many as the target's: with 1280 source_pq alone took 2977 s of a 195.7-minute Zen 4
# cold build (150 allowed). With 640 images (and 20 epochs, transfer 6) source_pq took 1322 s and
# transfer reached 89.8% / 92.9% of dense's mAP@0.5 at 640 / 416 px, against 114% / 103% before
# (results/builds/full-2026-12-04-s15-zen4/): the accuracy the budget cost; 640 images alone, with the
# old epochs, had kept 107% / 99.8% (results/trials/2026-12-04-source640-zen4/).
SOURCE_DATASETS = MappingProxyType({
    "full": MappingProxyType({"domain": "broad", "train": 640, "val": 96, "imgsz": 320}),
})

# Learning rates: from scratch the trainer's default schedule; fine-tuning and QAT at a small LR
# (QAT needs it: large steps move weights across quantization bins and the scales cannot follow;
# the one-run prune + QAT rungs fine-tune at _FINETUNE, whose QAT epochs come last at the decayed rate;
# pruned_quant, QAT only, starts at _QAT: the range _FINETUNE has decayed to over those last epochs).
_FINETUNE = {"optimizer": "AdamW", "lr0": 0.0005, "lrf": 0.2, "warmup_epochs": 0}
_QAT = {"optimizer": "AdamW", "lr0": 0.0002, "lrf": 0.5, "warmup_epochs": 0}
_TRANSFER = {"optimizer": "AdamW", "lr0": 0.001, "lrf": 0.1, "warmup_epochs": 0}

# Recipe schedules shared by two rungs each, so that a rung and its thinner counterpart cannot drift apart:
# v5n_hardswish_pq and v5n_thin_pq (full: prune over 5 epochs, recover 2, then 3 QAT epochs, the last
# with frozen scales), thin and v5n_thin (full: prune over 5 epochs, recover 3). thin_pq prunes and
# quantizes the thinned yolov5s on yolov5n's schedule at pruned's 0.8.
# `full` epochs are what the 150-minute cold build on 2 cores leaves: with the structured trial's 6 + 4
# and pruned_quant's former 6 + 3 + 3 the ladder built in 195.7 min on Zen 4; with one pruning and one
# recovery epoch fewer each (and the other cuts below) in 140.5 min, thin_pq at 88.0% / 96.2% of dense's
# mAP@0.5 at 640 / 416 px instead of 92.7% / 97.6%, v5n_thin_pq at 97.4% of v5n_hardswish's at 416 as
# before (results/builds/full-2026-12-04-s15-zen4/).
_V5N_PQ_SCHEDULE = _ro({"tiny": {"num_epochs": 3, "pruning_end_epoch": 1, "quantization_start_epoch": 1,
                                 "final_sparsity": 0.6},
                        "smoke": {"num_epochs": 6, "pruning_end_epoch": 3, "quantization_start_epoch": 4,
                                  "final_sparsity": 0.6},
                        "full": {"num_epochs": 10, "pruning_end_epoch": 5, "quantization_start_epoch": 7,
                                 "final_sparsity": 0.75}})
_PQ_SCHEDULE = _ro({"tiny": {"num_epochs": 3, "pruning_end_epoch": 1, "quantization_start_epoch": 1},
                    "smoke": {"num_epochs": 6, "pruning_end_epoch": 3, "quantization_start_epoch": 4},
                    "full": {**_V5N_PQ_SCHEDULE["full"], "final_sparsity": 0.8}})
_THIN_SCHEDULE = _ro({"tiny": {"num_epochs": 2, "pruning_end_epoch": 1},
                      "smoke": {"num_epochs": 5, "pruning_end_epoch": 3},
                      "full": {"num_epochs": 8, "pruning_end_epoch": 5}})

CATALOGUE: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec(
            name="dense",
            description="yolov5s trained from scratch on the dataset (the blog's 'trained' baseline)",
            model="yolov5su",
            # full: 30 epochs x 40 steps (640 images, batch 16) at 320 px, ~20 min here; smoke reached
            # mAP@0.5 0.75 with 28 epochs x 28 steps at 160 px.
            train_args=_ro({"smoke": {"epochs": 28, "optimizer": "AdamW", "lr0": 0.002},
                            "full": {"epochs": 30, "optimizer": "AdamW", "lr0": 0.002},
                            "tiny": {"epochs": 1}}),
        ),
        VariantSpec(
            name="oneshot",
            description="dense quantized to INT8 with no retraining, calibrated on training images",
            model="yolov5su",
            parent="dense",
            recipe="oneshot.yaml",
            kind=ONESHOT,
            quantized=True,
        ),
        VariantSpec(
            name="pruned",
            description="dense pruned by gradual magnitude pruning while fine-tuning",
            model="yolov5su",
            parent="dense",
            recipe="pruned.yaml",
            sparsity_target="final_sparsity",
            train_args=_ro({"smoke": _FINETUNE, "full": _FINETUNE}),
            recipe_variables=_ro({"tiny": {"num_epochs": 2, "pruning_end_epoch": 1},
                                  "smoke": {"num_epochs": 5, "pruning_end_epoch": 3},
                                  # full: prune over 6 epochs, recover 4 (smoke: 3 + 2 at 0.75 kept dense's mAP)
                                  "full": {"num_epochs": 10, "pruning_end_epoch": 6,
                                           "final_sparsity": 0.8}}),
        ),
        VariantSpec(
            name="pruned_quant",
            description="pruned, then quantization-aware trained (INT8) with its zeros held",
            model="yolov5su",
            parent="pruned",
            recipe="qat.yaml",
            quantized=True,
            # its sparsity target is pruned's: the zeros it holds (builder.artifact)
            train_args=_ro({"smoke": _QAT, "full": _QAT}),
            recipe_variables=_ro({"tiny": {"num_epochs": 2}, "smoke": {"num_epochs": 2},
                                  "full": {"num_epochs": 3}}),
        ),
        VariantSpec(
            name="source_pq",
            description="pruned+quantized yolov5s trained on the *source* dataset (transfer-learning origin)",
            model="yolov5su",
            recipe="source_pq.yaml",
            domain="source",
            quantized=True,
            sparsity_target="final_sparsity",
            train_args=_ro({"smoke": {"optimizer": "AdamW", "lr0": 0.002},
                            "full": {"optimizer": "AdamW", "lr0": 0.002}}),
            recipe_variables=_ro({"tiny": {"num_epochs": 3, "pruning_start_epoch": 0,
                                           "pruning_end_epoch": 1, "quantization_start_epoch": 1},
                                  "smoke": {"num_epochs": 14, "pruning_start_epoch": 7,
                                            "pruning_end_epoch": 10, "quantization_start_epoch": 12},
                                  # full: dense 10 epochs, prune over 5, recover 2, QAT 3 (was 12 + 6 + 3
                                  # + 3: the 150-minute budget, with SOURCE_DATASETS' 640 images)
                                  "full": {"num_epochs": 20, "pruning_start_epoch": 10,
                                           "pruning_end_epoch": 15, "quantization_start_epoch": 17,
                                           "final_sparsity": 0.8}}),
        ),
        VariantSpec(
            name="transfer",
            description="source_pq fine-tuned on the target dataset, sparsity masks held, QAT",
            model="yolov5su",
            parent="source_pq",
            recipe="transfer.yaml",
            quantized=True,
            # A new domain needs a larger step than QAT polishing: at lr 0.0002 x 4 epochs the smoke
            # transfer reached mAP@0.5 0.13 (measured); the classes' appearance is all new.
            train_args=_ro({"smoke": _TRANSFER, "full": _TRANSFER}),
            recipe_variables=_ro({"tiny": {"num_epochs": 3, "qat_epochs": 2},
                                  "smoke": {"num_epochs": 14, "qat_epochs": 3},
                                  # full: 3 float + 3 QAT epochs (was 9 + 3: the 150-minute budget)
                                  "full": {"num_epochs": 6, "qat_epochs": 3}}),
        ),
        VariantSpec(
            name="thin",
            description="dense with half the filters of its single-consumer convolutions pruned whole "
                        "(structured): a thinner network on every engine",
            model="yolov5su",
            parent="dense",
            # Learns from its float teacher's outputs as well as the labels (yolobench.distill): the
            # structured trial kept 93.8% of dense's mAP@0.5 at 640 with plain fine-tuning.
            teacher="dense",
            recipe="thin.yaml",
            train_args=_ro({"smoke": _FINETUNE, "full": _FINETUNE}),
            recipe_variables=_THIN_SCHEDULE,
        ),
        VariantSpec(
            name="thin_pq",
            description="thin with its pruned channels removed from the network, then pruned "
                        "(unstructured) and quantization-aware trained (INT8)",
            model="yolov5su",
            parent="thin",
            teacher="dense",
            thin=True,
            recipe="pruned_quant.yaml",
            quantized=True,
            sparsity_target="final_sparsity",
            train_args=_ro({"smoke": _FINETUNE, "full": _FINETUNE}),
            recipe_variables=_PQ_SCHEDULE,
        ),
        VariantSpec(
            name="v5n_hardswish",
            description="yolov5n with every activation Hardswish, trained dense from scratch",
            model="recipes/v5n_hardswish.model.yaml",
            # full: yolov5n epochs cost about half of yolov5s's; it needs more of them (smoke: 30 epochs
            # reached mAP@0.5 0.55 where yolov5s reached 0.75 in 28).
            train_args=_ro({"smoke": {"epochs": 30, "optimizer": "AdamW", "lr0": 0.003},
                            "full": {"epochs": 40, "optimizer": "AdamW", "lr0": 0.003},
                            "tiny": {"epochs": 3}}),
        ),
        VariantSpec(
            name="v5n_hardswish_oneshot",
            description="v5n_hardswish quantized to INT8 with no retraining (the dense INT8 yolov5n a "
                        "user gets without pruning: what v5n_hardswish_pq must beat)",
            model="recipes/v5n_hardswish.model.yaml",
            parent="v5n_hardswish",
            recipe="oneshot.yaml",
            kind=ONESHOT,
            quantized=True,
        ),
        VariantSpec(
            name="v5n_hardswish_pq",
            description="v5n_hardswish pruned and quantization-aware trained",
            model="recipes/v5n_hardswish.model.yaml",
            parent="v5n_hardswish",
            recipe="pruned_quant.yaml",
            quantized=True,
            sparsity_target="final_sparsity",
            train_args=_ro({"smoke": _FINETUNE, "full": _FINETUNE}),
            recipe_variables=_V5N_PQ_SCHEDULE,
        ),
        VariantSpec(
            name="v5n_thin",
            description="v5n_hardswish with half the filters of its single-consumer convolutions pruned "
                        "whole (structured)",
            model="recipes/v5n_hardswish.model.yaml",
            parent="v5n_hardswish",
            teacher="v5n_hardswish",  # as thin learns from dense
            recipe="thin.yaml",
            train_args=_ro({"smoke": _FINETUNE, "full": _FINETUNE}),
            recipe_variables=_THIN_SCHEDULE,
        ),
        VariantSpec(
            name="v5n_thin_pq",
            description="v5n_thin with its pruned channels removed from the network, then pruned "
                        "(unstructured) and quantization-aware trained (INT8)",
            model="recipes/v5n_hardswish.model.yaml",
            parent="v5n_thin",
            teacher="v5n_hardswish",
            thin=True,
            recipe="pruned_quant.yaml",
            quantized=True,
            sparsity_target="final_sparsity",
            train_args=_ro({"smoke": _FINETUNE, "full": _FINETUNE}),
            recipe_variables=_V5N_PQ_SCHEDULE,  # v5n_hardswish_pq's, on the thinner network
        ),
    )
}

VARIANT_NAMES = tuple(CATALOGUE)
REFERENCE_VARIANT = "dense"

# --- A ladder that starts from the user's model ------------------------------------------------------
# `--weights PATH` makes `dense` the user's checkpoint and derives the rungs below it from that model
# with the same recipes; `--source-weights PATH` makes `source_pq` the user's pruned+quantized model,
# so `transfer` fine-tunes it onto the target data. A rung rooted elsewhere does not apply and is
# skipped with the reason below (never built from the catalogue's own network under a user's name).
WEIGHTS_ROOT = "dense"
SOURCE_WEIGHTS_ROOT = "source_pq"

# Epochs a given checkpoint is fine-tuned on the target data before it becomes `dense`. 0 = as given:
# a user's model is measured as they trained it; the ladder's own recipes do the sparsifying. A profile
# that sets more fine-tunes with _FINETUNE's optimizer (a small step: the model is already trained).
# (A table beside PROFILES, not a Profile field: a new field would change every catalogue key.)
WEIGHTS_EPOCHS = MappingProxyType({"tiny": 0, "smoke": 0, "full": 0})
WEIGHTS_FINETUNE_ARGS = MappingProxyType(dict(_FINETUNE))


def skip_reason(name: str, *, weights: bool = False, source_weights: bool = False) -> str | None:
    """Why ``name`` is not built when the ladder starts from the user's model (None: it is built)."""
    root = ancestry(name)[0]
    if root == WEIGHTS_ROOT or not (weights or source_weights):
        return None
    if root == SOURCE_WEIGHTS_ROOT:
        if source_weights:
            return None
        return ("sparse transfer fine-tunes a pruned+quantized model: pass one with --source-weights "
                "(e.g. a pruned_quant artifact's weights.pt) to build it from yours")
    if weights:
        return (f"{name} is the catalogue's own network ({get_variant(root).model}) trained from scratch, "
                "not yours: build it without --weights")
    return None


def get_variant(name: str) -> VariantSpec:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UserError(f"unknown variant {name!r}; choose from: {', '.join(VARIANT_NAMES)}") from None


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UserError(f"unknown profile {name!r}; choose from: {', '.join(PROFILES)}") from None


def parse_variants(text: str | list[str] | None) -> list[str]:
    """'a,b' or ['a', 'b'] or None (= all) -> names in catalogue order, each checked."""
    if not text:
        return list(VARIANT_NAMES)
    items = text.split(",") if isinstance(text, str) else [x for part in text for x in part.split(",")]
    wanted = {get_variant(item.strip()).name for item in items if item.strip()}
    return [name for name in VARIANT_NAMES if name in wanted]


def ancestry(name: str) -> list[str]:
    """The variant and its parents, root first (the order they must be built in)."""
    chain = []
    spec: VariantSpec | None = get_variant(name)
    while spec is not None:
        chain.append(spec.name)
        spec = CATALOGUE[spec.parent] if spec.parent else None
    return chain[::-1]
