"""Knowledge distillation: a student learns from a teacher's outputs as well as from the labels.

Pruning a network hard (structured pruning, then unstructured pruning and INT8 on the thinner one) and
fine-tuning it on the labels alone loses accuracy: the labels say only where the objects are, so the
student relearns everything the removed channels knew from a few hundred images. A trained teacher (the
``dense`` float model of the same classes) says more on every image: how likely each class is at every
position, including the near misses, and how sure it is of each box side. The student's training loss
becomes ``ultralytics' detection loss + weight x term``, where the term compares the two networks' raw
Detect-head outputs on the same batch (``VariantSpec.teacher``, ``catalogue.DISTILL_DEFAULTS``):

- classes: the head's class outputs are independent sigmoids (no softmax across classes), so each is a
  yes/no question. The term is the binary KL divergence of the student's answer from the teacher's,
  both at temperature T: BCE(student / T, sigmoid(teacher / T)) minus the same BCE for the teacher
  itself (the teacher's entropy). Its gradient is exactly the BCE's; subtracting the entropy only makes
  the term zero where the student already answers as the teacher does, so its value says how far apart
  they are. Summed over the classes, as ultralytics sums its class loss.
- boxes: the head gives each box side as a distribution over ``reg_max`` distance bins (DFL), a
  softmax per side. The term is KL(teacher || student) of those distributions at temperature T (the
  teacher's uncertainty about an edge is knowledge too: localization distillation), averaged over the
  four sides, as ultralytics averages its DFL loss.

Both are multiplied by T^2: softening by T shrinks their gradients by about 1/T^2, so the product keeps
the teacher's pull the same size whatever T is. Every position's divergence is weighted by the teacher's
highest class probability there: of the thousands of positions most are background, where both networks
say "nothing" and the box bins mean nothing; unweighted, they would outvote the few positions with
objects. The sum of those weights (at least 1, as ultralytics clamps its own normaliser) divides the
total, so the term is a weighted mean per position, normalised as ultralytics' box, cls and dfl items
are: its size does not grow with the image size or the batch, and ``weight`` 1.0 weighs it like one of
them. It is reported beside them as ``distill_loss`` (weight included, as ultralytics' items include
their gains) in the build's progress lines, results.csv and the validation losses.

The teacher runs on the same preprocessed images, under ``torch.no_grad()`` and the trainer's autocast
(bfloat16 on the CPU where the profile asks for it); the comparison runs in float32 like the detection
loss. Only the head outputs' shapes must match, so the student may be thinner, pruned or fake-quantized.

Why not ultralytics' own ``DistillationModel``: it wraps the student (every parameter name gains a
``student_model.`` prefix, which the recipes' layer names and the saved weights would not match) and
matches neck features through projection layers it trains alongside, which a thinned student would
need at every level; comparing outputs needs neither.

Must not: change the teacher (no gradient reaches it, its mode and weights stay as given).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from yolobench.catalogue import DISTILL_DEFAULTS
from yolobench.errors import UserError

LOSS_NAME = "distill_loss"


def head_outputs(preds) -> dict:
    """The Detect head's raw training outputs from a model's forward result: ``{"boxes": [B, 4*reg_max,
    A], "scores": [B, nc, A]}`` (A: every position of every scale, concatenated). In training mode the
    head returns that dict itself; in eval mode ``(decoded, dict)``."""
    return preds[1] if isinstance(preds, (tuple, list)) else preds


def distillation_term(student: dict, teacher: dict, temperature: float = DISTILL_DEFAULTS["temperature"]
                      ) -> torch.Tensor:
    """The teacher term (module docstring) of two head-output dicts, as a float32 scalar (0 where the
    student's outputs equal the teacher's). Gradients flow into ``student`` only."""
    s_box, s_cls = student["boxes"].float(), student["scores"].float()
    t_box, t_cls = teacher["boxes"].detach().float(), teacher["scores"].detach().float()
    if s_box.shape != t_box.shape or s_cls.shape != t_cls.shape or s_box.shape[1] % 4:
        raise UserError(f"distillation: the student's head outputs (boxes {list(s_box.shape)}, scores "
                        f"{list(s_cls.shape)}) do not match the teacher's (boxes {list(t_box.shape)}, scores "
                        f"{list(t_cls.shape)}); pick a teacher with the student's classes, box bins and strides")
    t = float(temperature)
    batch, channels, positions = s_box.shape
    bins = channels // 4  # ultralytics' layout: side-major, bins within a side (v8DetectionLoss.bbox_decode)
    weight = t_cls.sigmoid().amax(dim=1)  # [B, A]: the teacher's confidence that something is there
    soft = torch.sigmoid(t_cls / t)
    cls = (F.binary_cross_entropy_with_logits(s_cls / t, soft, reduction="none")
           - F.binary_cross_entropy_with_logits(t_cls / t, soft, reduction="none")).sum(dim=1)  # [B, A]
    log_q = F.log_softmax(s_box.view(batch, 4, bins, positions) / t, dim=2)
    log_p = F.log_softmax(t_box.view(batch, 4, bins, positions) / t, dim=2)
    box = (log_p.exp() * (log_p - log_q)).sum(dim=2).mean(dim=1)  # [B, A]
    return ((cls + box) * weight).sum() / weight.sum().clamp(min=1.0) * (t * t)


class Distiller:
    """The frozen teacher and the settings, attached to the student model (``RecipeTrainer``); its
    criterion adds :meth:`term` to the detection loss. Not an ``nn.Module``, so the teacher is never
    part of the student's state_dict (checkpoints, weights.pt); copied, it stays the one teacher (the
    EMA copy of the student validates against the same one)."""

    def __init__(self, teacher: torch.nn.Module, settings: dict | None = None):
        self.teacher = teacher.float().eval().requires_grad_(False)
        self.settings = {**DISTILL_DEFAULTS, **(settings or {})}
        self.weight = float(self.settings["weight"])
        self.temperature = float(self.settings["temperature"])

    def __deepcopy__(self, memo):
        return self

    def teacher_outputs(self, images: torch.Tensor) -> dict:
        """The teacher's head outputs on the batch's images (under the caller's autocast), no gradient."""
        first = next(self.teacher.parameters())
        if first.device != images.device:
            self.teacher.to(images.device)
        self.teacher.eval()  # whatever a caller's .train() did to the modules it can reach
        with torch.no_grad():
            return head_outputs(self.teacher(images.to(first.dtype)))

    def term(self, student: dict, teacher: dict) -> torch.Tensor:
        """weight x the teacher term: what is added to the detection loss (one item per batch)."""
        return self.weight * distillation_term(student, teacher, self.temperature)
