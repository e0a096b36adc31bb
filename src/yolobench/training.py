"""Training with ultralytics' trainer, sparsified by a SparseML recipe hooked into it.

``RecipeTrainer`` is ultralytics' ``DetectionTrainer`` with:

- the model built from a model YAML dict and initialised from a parent's state_dict (never a download);
- SparseML's ``ScheduledModifierManager`` wrapped around the trainer's grad scaler, so that the recipe
  sees every optimizer step. ``nbs`` is set to the batch size, so ultralytics' gradient accumulation is
  always 1 and the recipe's epochs and steps are exactly the trainer's (no emulated steps needed);
- the EMA multiplied by the pruning masks at the end of every epoch (ultralytics saves and validates
  the EMA, whose pruned entries would otherwise shrink towards, but never reach, zero);
- during quantization-aware training the EMA is switched off and the live model is validated
  (SparseML's own integration did the same: an EMA of fake-quant observers is meaningless);
- our own checkpoint (state_dicts + recipe + epoch) written atomically after every epoch, because
  ``torch.save`` of a SparseML QAT model fails, and resumption from it;
- no fused final evaluation (fusing a QAT-wrapped model fails): the last epoch's validation of the
  exact weights we keep is the one recorded;
- optionally a frozen teacher (``teacher=``, ``distill=``): every batch's loss is the detection loss plus
  the weighted teacher term of ``yolobench.distill``, reported as a fourth loss item, ``distill_loss``.

Must not: download anything, touch the artifact store (the builder does), or change global state
other than through ``yolobench.shims``.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from yolobench import offline, shims
from yolobench.distill import LOSS_NAME, Distiller, head_outputs
from yolobench.recipes import recipe_variable
from yolobench.timer import default_threads

offline.apply()

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402

CHECKPOINT_NAME = "checkpoint.pt"


def _atomic_torch_save(obj: Any, path: Path) -> None:
    """The checkpoint whole or not at all; a full disk is ``OSError(ENOSPC)`` naming ``path``, and the
    previous epoch's checkpoint stays (``fsutil.atomic_torch_save``)."""
    from yolobench.fsutil import atomic_torch_save

    atomic_torch_save(obj, path)


# The Detect head's last class convolution (one per scale: model.<head>.cv3.<i>.2): its output channels
# are the class count. Sparse transfer from a parent with other classes (the blog's COCO checkpoint onto
# VOC; here the 14-class broad source onto the 3-class target) re-initialises exactly these, as
# ultralytics' own transfer does by loading only the tensors whose shapes match. Neither the pruning
# nor the quantization recipes touch them (the Detect head stays FP32 and its `.2` convs are dense).
_CLASS_HEAD = re.compile(r"^model\.\d+\.cv3\.\d+\.2\.(weight|bias)$")


def class_head_adapted(parent_state: dict, own_state: dict) -> dict:
    """``parent_state`` with its class-output tensors replaced by ``own_state``'s where the class count
    differs; any other mismatch is an error naming the tensor (a wrong parent, not a new dataset)."""
    out = dict(parent_state)
    for name, tensor in parent_state.items():
        mine = own_state.get(name)
        if mine is None or getattr(mine, "shape", None) == getattr(tensor, "shape", None):
            continue
        if not _CLASS_HEAD.match(name):
            raise ValueError(f"parent weights do not fit this model: {name} is {tuple(tensor.shape)} in the "
                             f"parent, {tuple(mine.shape)} here (only the class outputs may differ)")
        out[name] = mine
    return out


class RecipeTrainer(DetectionTrainer):
    """DetectionTrainer driven by a SparseML recipe (or none, for dense training)."""

    def __init__(
        self,
        overrides: dict,
        *,
        model_cfg: dict,
        init_state: dict | None = None,
        widths: dict | None = None,
        recipe_text: str | None = None,
        recipe_variables: dict | None = None,
        parent_recipe: tuple[str, dict] | None = None,
        checkpoint_dir: Path,
        progress: Callable[[dict], None] | None = None,
        teacher: torch.nn.Module | None = None,
        distill: dict | None = None,
    ):
        shims.apply()
        offline.configure_ultralytics()
        self.model_cfg = model_cfg
        self.init_state = init_state
        self.widths = dict(widths or {})  # a thinned network's channel counts (modelio.thin_model)
        self.recipe_text = recipe_text
        self.recipe_variables = recipe_variables or {}
        # A quantized parent (sparse transfer): its QAT structure is rebuilt before its weights load.
        self.parent_recipe = parent_recipe
        self.checkpoint_dir = Path(checkpoint_dir)
        self.progress = progress
        # Knowledge distillation: the teacher rides on the student model (get_model), outside its
        # state_dict, so checkpoints and resumption are the same with or without one.
        self.distiller = Distiller(teacher, distill) if teacher is not None else None
        self.manager = None
        self._resume_state: dict | None = None
        self.train_threads = default_threads()
        overrides = dict(overrides)
        overrides["nbs"] = overrides["batch"]  # accumulate == 1: recipe steps == optimizer steps
        overrides.setdefault("plots", False)
        overrides.setdefault("amp", False)
        overrides["model"] = "yolobench-recipe-model.yaml"  # never used to load: get_model builds it
        super().__init__(overrides=overrides)
        # ultralytics' select_device() (called above) sets torch to cpu_count - 1 threads, keeping a
        # core for dataloader workers: on a 2-core machine that is ONE thread. The builder loads data
        # in this process (workers=0), so training gets every usable core: an epoch of yolov5s at
        # 160 px took 35.0 s with ultralytics' setting and 21.6 s with 2 threads (measured here).
        torch.set_num_threads(self.train_threads)
        if self.recipe_text:
            from sparseml.pytorch.optim import ScheduledModifierManager

            self.manager = ScheduledModifierManager.from_yaml(self.recipe_text,
                                                              recipe_variables=self.recipe_variables)
            # The trainer's epoch count must equal the recipe's before anything is scheduled.
            self.epochs = self.args.epochs = int(math.ceil(self.manager.max_epochs))
        # Sparse transfer (a quantized parent): the last `qat_epochs` epochs train fake-quantized, the
        # ones before in float (fake-quant and observers off), as the QAT recipes schedule it.
        self.inherited_qat_epochs = None
        if self.parent_recipe is not None:
            value = recipe_variable(self.recipe_text, self.recipe_variables, "qat_epochs")
            self.inherited_qat_epochs = self.epochs if value is None else max(1, min(int(value), self.epochs))
        self.add_callback("on_train_epoch_start", RecipeTrainer._on_epoch_start)
        self.add_callback("on_train_epoch_end", RecipeTrainer._on_epoch_end)
        self.add_callback("on_fit_epoch_end", RecipeTrainer._on_fit_epoch_end)

    def train(self):
        """ultralytics' training loop; ``amp="bf16"`` autocasts to bfloat16 on the CPU too (shims 4),
        until quantization-aware training starts (see ``_on_epoch_start``)."""
        with shims.cpu_bf16_autocast():
            return super().train()

    # --- data --------------------------------------------------------------------------------------
    def get_dataset(self):
        """ultralytics' dataset check, on the data.yaml without the keys yolobench never lets it act on
        (``download:``, which it fetches or runs as a command or as Python when a val folder is missing:
        ``yolobench.data.check.IGNORED_KEYS``); one line on stderr says a key was left out."""
        from yolobench.data.check import without_ignored_keys

        path, notes = without_ignored_keys(self.args.data, self.checkpoint_dir.parent / "data")
        for note in notes:
            print(note, file=sys.stderr)
        self.args.data = str(path)
        return super().get_dataset()

    # --- model -------------------------------------------------------------------------------------
    def get_model(self, cfg=None, weights=None, verbose=False):
        model = _TrainingDetectionModel(self.model_cfg, nc=self.data["nc"], ch=3, verbose=False)
        shims.own_activations(model)  # before the recipe: QAT must not touch ultralytics' shared activation
        from yolobench.modelio import apply_widths

        apply_widths(model, self.widths)  # a thinned network: its channel counts before any weights load
        model = self.set_model_names_for_load(model) if hasattr(self, "set_model_names_for_load") else model
        if self.parent_recipe is not None:
            from sparseml.pytorch.optim import ScheduledModifierManager

            model.train()
            ScheduledModifierManager.from_yaml(self.parent_recipe[0], recipe_variables=self.parent_recipe[1]
                                               ).apply_structure(model, epoch=float("inf"))
        if self.init_state is not None:
            model.load_state_dict(class_head_adapted(self.init_state, model.state_dict()), strict=True)
        model.distiller = self.distiller  # a plain attribute: the criterion reads it (_Float32Loss)
        ckpt_path = self.checkpoint_dir / CHECKPOINT_NAME
        if ckpt_path.exists():
            # The resume checkpoint this trainer wrote itself (save_model, below) into the store's work
            # folder of this variant and key (Store.work_dir: a name and key of the store's own shapes,
            # never a path from a run file or the command line). It holds the optimizer state and the
            # trainer's numbers, which may be numpy scalars: weights_only=True refuses those.
            state = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # trusted: our own, above
            if self.manager is not None:
                # QAT structure must exist before its weights and observers are loaded: as it was during
                # the saved epoch, not the next one. A checkpoint of the last float epoch resumed with the
                # structure of the first QAT epoch failed to load on every retry (a smoke source_pq killed
                # after epoch 12 of 14); the trainer's manager enables QAT itself when that epoch starts.
                self.manager.apply_structure(model, epoch=state["epoch"])
            model.load_state_dict(state["model"], strict=True)
            self._resume_state = state
        return model

    def resume_training(self, ckpt):  # ultralytics' resume reads its own format; ours is above
        state = self._resume_state
        self.start_epoch = 0
        if state is None:
            return
        self.start_epoch = state["epoch"] + 1
        self.best_fitness = state.get("best_fitness")
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("ema") is not None:
            self.ema.ema.load_state_dict(state["ema"])
            self.ema.updates = state["updates"]

    def _setup_train(self):
        super()._setup_train()
        if self.manager is not None:
            self.scaler = self.manager.modify(
                self.model,
                self.optimizer,
                steps_per_epoch=len(self.train_loader),
                epoch=float(self.start_epoch),
                wrap_optim=self.scaler,
            )

    # --- recipe bookkeeping --------------------------------------------------------------------------
    def qat_active(self, epoch: float | None = None) -> bool:
        epoch = self.epoch if epoch is None else epoch
        if self.parent_recipe is not None:
            return epoch >= self.epochs - self.inherited_qat_epochs
        return bool(self.manager is not None and self.manager.quantization_modifiers
                    and self.manager.qat_active(epoch=epoch))

    def _on_epoch_start(self):
        if self.parent_recipe is not None:
            self._inherited_qat_schedule()
        if self.qat_active() and self.args.amp == "bf16":
            # Fake-quantized training runs in float32: the observers must see the float32 ranges the
            # exported graph is quantized from, not bfloat16-rounded ones.
            self.args.amp = False
            self.amp = False
        if self.qat_active():
            # An EMA of fake-quant observers is meaningless: train and validate the live model.
            self.ema.enabled = False
            self.ema.ema = self.model

    def _inherited_qat_schedule(self):
        """QAT inherited from the parent: float epochs first, then fake-quant with observers, frozen last.

        Before the last ``qat_epochs`` epochs fake-quantization and observers are off (the model trains
        in float, bfloat16 where the profile asks for it); then the observers learn the new domain's
        ranges; for the last epoch observers and batch-norm statistics freeze, as the QAT recipes do.
        """
        from torch.ao.quantization import disable_fake_quant, disable_observer, enable_fake_quant, enable_observer
        from torch.ao.nn.intrinsic.qat import freeze_bn_stats, update_bn_stats

        last = self.epoch >= self.epochs - 1
        in_qat = self.qat_active()
        self.model.apply(enable_fake_quant if in_qat else disable_fake_quant)
        self.model.apply(enable_observer if in_qat and not last else disable_observer)
        self.model.apply(freeze_bn_stats if last else update_bn_stats)

    def _on_epoch_end(self):
        """Mask the EMA with the live model's zeros so that what is validated and saved is sparse."""
        if self.manager is None or not self.manager.pruning_modifiers or not self.ema.enabled:
            return
        live = dict(self.model.named_parameters())
        # conv weights, and whatever else a modifier masks (a structured recipe masks BatchNorm's scale
        # and shift with their filter, so that the channel is zero and can be dropped from the graph)
        masked = set()
        for modifier in self.manager.pruning_modifiers:
            masks = getattr(modifier, "module_masks", None)
            if masks is not None and masks.layer_names:
                masked.update(f"{layer}.{param}" for layer, param in zip(masks.layer_names, masks.param_names))
        with torch.no_grad():
            for name, param in self.ema.ema.named_parameters():
                source = live.get(name)
                if source is not None and (param.dim() == 4 or name in masked):
                    zeros = source == 0
                    if zeros.any():
                        param.masked_fill_(zeros, 0.0)

    def final_model(self) -> torch.nn.Module:
        """The weights that were validated last: live model under QAT, masked EMA otherwise."""
        if not self.ema.enabled:
            return self.model
        return self.ema.ema

    def save_model(self):
        state = {
            "epoch": self.epoch,
            "model": self.final_model().state_dict() if not self.ema.enabled else self.model.state_dict(),
            "ema": self.ema.ema.state_dict() if self.ema.enabled else None,
            "updates": self.ema.updates,
            "optimizer": self.optimizer.state_dict(),
            "best_fitness": self.best_fitness,
            "metrics": dict(self.metrics or {}),
            "recipe": self.recipe_text,
        }
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        _atomic_torch_save(state, self.checkpoint_dir / CHECKPOINT_NAME)
        return True

    def _on_fit_epoch_end(self):
        if self.progress is not None:
            self.progress({"epoch": self.epoch + 1, "epochs": self.epochs, "metrics": dict(self.metrics or {}),
                           "losses": self.label_loss_items(self.tloss) if self.tloss else {}})

    def final_eval(self):
        # ultralytics re-validates best.pt fused; fusing a QAT model fails and we keep the last epoch,
        # whose validation already ran on exactly the weights we keep.
        return None

    def finish(self) -> None:
        if self.manager is not None:
            self.manager.finalize(self.model)
        if self.distiller is not None:  # the kept model carries no teacher
            for model in (self.model, self.ema.ema):
                model.distiller = None
                model.criterion = None


class _Float32Loss:
    """The detection loss in float32 even where the forward pass ran under bfloat16 autocast.

    Box regression (DFL, CIoU) on bfloat16's 8-bit mantissa rounds 160 px coordinates to ~1 px.
    With a ``distiller`` (``yolobench.distill``) the teacher runs on the batch's images under the same
    autocast as the student, and its term (float32 too) is a fourth element of the loss and a fourth item,
    ``distill_loss``, in training and in validation alike (ultralytics sizes its validation losses, the
    progress columns and results.csv from the items of the first batch).
    """

    def __init__(self, criterion, distiller=None):
        self.criterion = criterion
        self.distiller = distiller

    def __getattr__(self, name):
        if name == "criterion":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.criterion, name)

    def __call__(self, preds, batch):
        def to_float(x):
            if torch.is_tensor(x):
                return x.float()
            if isinstance(x, dict):
                return {k: to_float(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return type(x)(to_float(v) for v in x)
            return x

        device = batch["img"].device.type if torch.is_tensor(batch.get("img")) else "cpu"
        teacher = self.distiller.teacher_outputs(batch["img"]) if self.distiller is not None else None
        with torch.autocast(device, enabled=False):
            preds = to_float(preds)
            loss, items = self.criterion(preds, batch)
            if teacher is None:
                return loss, items
            term = self.distiller.term(head_outputs(preds), teacher)
            # ultralytics' loss vector is per-image mean x batch size (its items are the means): the same here
            loss = torch.cat([loss, (term * batch["img"].shape[0]).reshape(1)])
            return loss, {**items, LOSS_NAME: term.detach()}


class _TrainingDetectionModel(DetectionModel):
    """ultralytics' DetectionModel whose loss always runs in float32 (see :class:`_Float32Loss`)."""

    distiller = None  # set by RecipeTrainer.get_model where the student learns from a teacher

    def init_criterion(self):
        return _Float32Loss(super().init_criterion(), self.distiller)
