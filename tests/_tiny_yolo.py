"""A tiny YOLOv5u exported by ultralytics' own ONNX exporter, for engine and parity tests.

Random init, but "alive": ultralytics' default init lets activations vanish through the network
(measured: activations of a random-init model vanish), so outputs barely depend on the weights and a perturbed convolution would
go unnoticed. Kaiming-normal convolution weights and zero class biases keep the signal alive, so raw
outputs depend on every layer and scores spread around 0.5 (many, meaningless, detections).

Built once per session (cached by folder): export takes a few seconds. Nothing is downloaded: the
model comes from ``yolov5nu.yaml``, ``simplify=False`` keeps the exporter from installing onnxslim.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

IMGSZ = 160  # small and fast; a multiple of the largest stride (32)
OPSET = 17  # the newest opset onnx 1.14 (the sparseml pin) knows well; ORT, DeepSparse, OpenVINO take it
SEED = 0


@dataclass
class TinyYolo:
    """The exported model; also an artifact look-alike (``onnx_path(form)``, ``load_torch()``, ``imgsz``)."""

    onnx: Path
    module: object  # the ultralytics DetectionModel the ONNX was exported from (unfused)
    imgsz: int = IMGSZ

    def onnx_path(self, form: str = "fp32", imgsz: int | None = None) -> Path:
        if form != "fp32" or imgsz not in (None, self.imgsz):
            raise FileNotFoundError(f"the tiny model has no {form} ONNX at {imgsz} px")
        return self.onnx

    def load_torch(self):
        return self.module.eval()


@functools.cache
def tiny_yolo(root: Path) -> TinyYolo:
    import torch  # noqa: PLC0415
    from ultralytics import YOLO  # noqa: PLC0415

    import yolobench.offline  # noqa: PLC0415

    yolobench.offline.configure_ultralytics()
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    yolo = YOLO("yolov5nu.yaml")
    model = yolo.model
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and module.weight.requires_grad:  # not the fixed DFL conv
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        for branch in model.model[-1].cv3:  # class branches: bias 0 instead of the -11 prior
            torch.nn.init.zeros_(branch[-1].bias)
    # The exporter names its output after the model's source: point it into our folder, not the cwd.
    model.pt_path = str(root / "yolov5nu_tiny.pt")
    path = yolo.export(format="onnx", imgsz=IMGSZ, opset=OPSET, simplify=False, dynamic=False, device="cpu")
    return TinyYolo(onnx=Path(path), module=model.eval())
