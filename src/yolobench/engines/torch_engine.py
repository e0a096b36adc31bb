"""PyTorch eager: the reference the variants were trained in.

Takes an artifact with ``load_torch()`` (or a ``torch.nn.Module`` directly) returning the eval-mode
detection model; an ultralytics ``DetectionModel`` returns ``(raw, features)`` in eval mode, of which the
raw head output is kept. A bare ONNX file has no PyTorch graph: :class:`EngineNotApplicable`.
Threads: ``torch.set_num_threads`` (process-wide in torch, so it is checked again before every run).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from yolobench.engines.base import FORM_TORCH, Engine, EngineNotApplicable, Geometry, Session, as_hw
from yolobench.errors import UserError


class TorchSession(Session):
    def __init__(self, module, **kwargs):
        super().__init__(**kwargs)
        self._module = module

    def _run(self, images: np.ndarray) -> np.ndarray:
        import torch  # noqa: PLC0415

        if torch.get_num_threads() != self.threads:  # another session (or library) changed the global
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            out = self._module(torch.from_numpy(images))
        if isinstance(out, (tuple, list)):  # ultralytics eval mode: (raw head, per-level features)
            out = out[0]
        return out.detach().float().cpu().numpy()

    def _extra_info(self):
        return {"module": type(self._module).__name__}


class TorchEngine(Engine):
    name = "torch"
    package = "torch"
    preferred_forms = (FORM_TORCH,)
    order, color, marker = 0, "#ee4c2c", "o"
    # A quantized variant in PyTorch is fake-quantization: float arithmetic that simulates INT8 rounding,
    # slower than the float model and deployed by nobody. The parity tests check its outputs; the
    # benchmark matrix does not time it (bench.untimed_reason).
    untimed_quantized = ("PyTorch runs a quantized variant as fake-quantization (float arithmetic that "
                         "simulates INT8), not as a deployment: parity checks it, its speed tells a user nothing")

    def _import(self):
        import torch  # noqa: PLC0415

        return torch

    def preferred_form(self, model: Any, imgsz: int | None = None) -> str:
        return FORM_TORCH

    def _load(self, model: Any, *, batch: int, threads: int, imgsz, form: str | None) -> Session:
        torch = self._import()
        if form not in (None, FORM_TORCH):
            raise EngineNotApplicable(f"torch runs the PyTorch module, not the {form} ONNX form")
        if isinstance(model, (str, os.PathLike)):
            raise EngineNotApplicable("not applicable: a bare ONNX file has no PyTorch graph")
        if isinstance(model, torch.nn.Module):
            module = model
        elif hasattr(model, "load_torch"):
            module = model.load_torch()
        else:
            raise EngineNotApplicable(f"{type(model).__name__} has no PyTorch form (no load_torch())")
        imgsz = imgsz if imgsz is not None else getattr(model, "imgsz", None)  # an artifact knows its size
        if imgsz is None:
            raise UserError("torch needs the image size (imgsz): a PyTorch module does not fix its input")
        module = module.eval().float()
        geometry = Geometry(batch=batch, imgsz=as_hw(imgsz))
        torch.set_num_threads(threads)
        nc = getattr(module, "nc", None)
        return TorchSession(module, engine=self.name, engine_version=self.version(), form=FORM_TORCH,
                            model_path=None, threads=threads, geometry=geometry, nc=nc)  # no model file
