"""Accuracy of any engine on a dataset's validation split, through the one shared processing path.

``evaluate(run, data_yaml, imgsz)`` letterboxes every validation image, calls ``run(batch)`` for the
raw head output, post-processes with the shared decode + NMS (low confidence threshold, as mAP
needs), and scores with ``parity.mean_ap``. The builder records this number for the PyTorch model in
``meta.json``; the parity tests compute it per engine, so every mAP in yolobench comes from one code
path.

Must not: import an engine (callers pass ``run``), or time anything.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from yolobench.processing import postprocess, preprocess

# mAP thresholds (ultralytics' validator uses the same): a low confidence keeps the full
# precision-recall curve; NMS at 0.7 IoU as in ultralytics' val mode; every class above the confidence
# is a candidate (multi-label, as the validator): with single labels a 3-class yolov8n whose classes were
# often confused read mAP@0.5 0.092 where ultralytics' val() read 0.223 (0.235 multi-label), measured.
EVAL_MULTI_LABEL = True
EVAL_CONF = 0.001
EVAL_IOU = 0.7
EVAL_MAX_DET = 300
EVAL_BATCH = 1  # engines are loaded at batch 1 (the benchmark's scenario)
# Recorded with every mAP (meta.json's metrics "source"): a number from an earlier evaluator (single
# label per box, before 2026-12-04) is not compared with one of this evaluator's.
EVAL_SOURCE = "yolobench.evaluate (shared letterbox/decode/NMS multi-label, parity.mean_ap)"


def validation_set(data_yaml: str | Path) -> tuple[list[Path], list[tuple[np.ndarray, np.ndarray]], int]:
    """Image paths, labels per image (xyxy pixels, class ids) and the number of classes."""
    import cv2

    from yolobench.data import check_dataset

    info = check_dataset(data_yaml, decode_images=False)
    images = list(info.val_files)
    labels = []
    for path in images:
        label_path = _label_path(path)
        h, w = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape[:2]
        rows = np.zeros((0, 5))
        if label_path.exists():
            text = label_path.read_text().strip()
            if text:
                rows = np.array([[float(x) for x in line.split()] for line in text.splitlines()])
        xywh = rows[:, 1:5] * np.array([w, h, w, h])
        xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
        labels.append((xyxy, rows[:, 0].astype(np.int64)))
    return images, labels, len(info.names)


def _label_path(image: Path) -> Path:
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def evaluate(run: Callable[[np.ndarray], np.ndarray], data_yaml: str | Path, imgsz: int,
             *, limit: int | None = None) -> dict:
    """{'map50', 'map50_95', 'images'} of ``run`` on the validation split at ``imgsz``."""
    import cv2

    from yolobench.parity import mean_ap

    images, labels, nc = validation_set(data_yaml)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    detections = []
    for path in images:
        image = cv2.imread(str(path))
        batch, infos = preprocess([image], imgsz)
        raw = np.asarray(run(batch))
        detections.extend(postprocess(raw, infos, conf=EVAL_CONF, iou=EVAL_IOU, max_det=EVAL_MAX_DET, nc=nc,
                                      multi_label=EVAL_MULTI_LABEL))
    result = mean_ap(detections, labels, nc)
    return {"map50": round(float(result.map50), 4), "map50_95": round(float(result.map50_95), 4),
            "images": len(images), "imgsz": imgsz,
            "source": EVAL_SOURCE}


def torch_runner(model) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.from_numpy(batch))
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.numpy()

    return run
