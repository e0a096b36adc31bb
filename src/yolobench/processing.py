"""The one pre- and post-processing path every engine is judged by.

Letterbox (resize keeping aspect, pad with grey 114, like ultralytics' ``LetterBox``), decode the raw
YOLOv5u/YOLOv8 head output ``(B, 4+nc, N)`` (xywh in input pixels, class scores after sigmoid), a
deterministic class-aware NMS in numpy, and the mapping of boxes back to original image coordinates.
Engines return raw head tensors; everything after that lives here, so that two engines can only
disagree in what they computed, never in how it was read.

Must not: import torch or any engine runtime (this runs beside every engine, and in property tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from yolobench.data.check import IMAGE_SUFFIXES  # noqa: F401 (one list of image files for all of yolobench)
from yolobench.errors import UserError

PAD_VALUE = 114  # ultralytics' letterbox grey: the value the models were trained with at the borders
MAX_NMS_CANDIDATES = 30000  # as ultralytics: bound the O(n^2) NMS on a garbage model's output


@dataclass(frozen=True)
class LetterboxInfo:
    """How an image was placed in the model input: ``input_x = orig_x * scale[0] + pad[0]`` (y likewise)."""

    scale: tuple[float, float]  # (x, y): resized size / original size per axis
    pad: tuple[float, float]  # (left, top) in input pixels
    orig_shape: tuple[int, int]  # (height, width) of the original image
    input_shape: tuple[int, int]  # (height, width) of the model input


@dataclass
class Detections:
    """Detections of one image: ``boxes`` xyxy float32 (K, 4), ``scores`` float32 (K,), ``class_ids`` int64 (K,)."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        if not (len(self.boxes) == len(self.scores) == len(self.class_ids)):
            raise ValueError(f"boxes {self.boxes.shape}, scores {self.scores.shape} and class_ids "
                             f"{self.class_ids.shape} differ in length")

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))


def _size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(v) for v in size)
    return h, w


def letterbox(img_bgr: np.ndarray, size: int | Sequence[int], stride: int = 32) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize a BGR uint8 image (H, W, 3) into ``size`` keeping its aspect, pad with 114.

    Returns the model-ready array (3, h, w) float32 RGB in [0, 1] and the :class:`LetterboxInfo`
    that :func:`unletterbox_boxes` needs. ``size`` is an int (square) or (height, width); each side
    must be a multiple of ``stride`` (the network's largest stride).
    """
    import cv2  # noqa: PLC0415 (keep `import yolobench.processing` light)

    out_h, out_w = _size_hw(size)
    if out_h <= 0 or out_w <= 0 or out_h % stride or out_w % stride:
        raise UserError(f"image size {out_h}x{out_w} must be positive multiples of the stride {stride}")
    img = np.asarray(img_bgr)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 1:
        raise UserError(f"expected a BGR uint8 image of shape (H, W, 3), got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    ratio = min(out_h / h, out_w / w)
    new_w, new_h = max(1, int(round(w * ratio))), max(1, int(round(h * ratio)))
    if (new_w, new_h) != (w, h):
        img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    # Centre the image; the odd pixel of padding goes right/bottom (as ultralytics' LetterBox).
    top, left = int(round((out_h - new_h) / 2 - 0.1)), int(round((out_w - new_w) / 2 - 0.1))
    canvas = np.full((out_h, out_w, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top:top + new_h, left:left + new_w] = img
    chw = np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32) / 255.0
    # The scale per axis is what the resize did (new/old), not the nominal ratio: rounding new_w and
    # new_h makes them differ by up to half an input pixel over the image, which the nominal ratio
    # (ultralytics' scale_boxes) would turn into several original pixels on a strongly downscaled image.
    info = LetterboxInfo(scale=(new_w / w, new_h / h), pad=(float(left), float(top)), orig_shape=(h, w),
                         input_shape=(out_h, out_w))
    return chw, info


def unletterbox_boxes(boxes_xyxy: np.ndarray, info: LetterboxInfo,
                      orig_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Map xyxy boxes from model-input pixels back to the original image, clipped to it."""
    boxes = np.array(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    h, w = orig_shape if orig_shape is not None else info.orig_shape
    (left, top), (sx, sy) = info.pad, info.scale
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - left) / sx
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - top) / sy
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes


def letterbox_boxes(boxes_xyxy: np.ndarray, info: LetterboxInfo) -> np.ndarray:
    """Map xyxy boxes from the original image into model-input pixels (the inverse of unletterbox_boxes)."""
    boxes = np.array(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    (left, top), (sx, sy) = info.pad, info.scale
    boxes[:, [0, 2]] = boxes[:, [0, 2]] * sx + left
    boxes[:, [1, 3]] = boxes[:, [1, 3]] * sy + top
    return boxes


def preprocess(images_bgr: Iterable[np.ndarray], size: int | Sequence[int],
               stride: int = 32) -> tuple[np.ndarray, list[LetterboxInfo]]:
    """Letterbox a list of images into one (B, 3, h, w) float32 batch plus their infos."""
    arrays, infos = [], []
    for img in images_bgr:
        chw, info = letterbox(img, size, stride)
        arrays.append(chw)
        infos.append(info)
    if not arrays:
        raise UserError("no images to preprocess")
    return np.stack(arrays), infos


def channels_first(raw: np.ndarray, nc: int | None = None) -> np.ndarray:
    """Return a head output as (B, 4+nc, N), transposing a (B, N, 4+nc) one.

    With ``nc`` the layout is read from which axis has 4+nc entries; without it, the axis with fewer
    entries is taken as the channel axis (true for every YOLOv5u/YOLOv8 export from 64 px upwards).
    """
    raw = np.asarray(raw)
    if raw.ndim != 3 or max(raw.shape[1:]) < 5:
        raise UserError(f"expected a raw detection head output (B, 4+nc, N), got shape {raw.shape}")
    if nc is not None:
        if raw.shape[1] == 4 + nc:
            return raw
        if raw.shape[2] == 4 + nc:
            return raw.transpose(0, 2, 1)
        raise UserError(f"head output {raw.shape} has no axis of 4+nc={4 + nc} entries")
    channels_axis_1 = raw.shape[1] >= 5 and (raw.shape[1] <= raw.shape[2] or raw.shape[2] < 5)
    return raw if channels_axis_1 else raw.transpose(0, 2, 1)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    xywh = np.asarray(xywh, dtype=np.float32)
    half = xywh[..., 2:4] / 2
    return np.concatenate([xywh[..., 0:2] - half, xywh[..., 0:2] + half], axis=-1)


def decode(raw: np.ndarray, nc: int | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image: (boxes xyxy (N, 4), best score (N,), best class (N,)) for every anchor, in input pixels."""
    pred = channels_first(raw, nc).astype(np.float32, copy=False)
    out = []
    for p in pred:  # (4+nc, N)
        cls_scores = p[4:]
        class_ids = cls_scores.argmax(0)  # argmax takes the first maximum: deterministic on ties
        scores = cls_scores[class_ids, np.arange(cls_scores.shape[1])]
        out.append((xywh_to_xyxy(p[:4].T), scores, class_ids.astype(np.int64)))
    return out


def decode_multi_label(raw: np.ndarray, nc: int | None, conf: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image: (boxes, score, class) of every (anchor, class) pair whose score is above ``conf``."""
    pred = channels_first(raw, nc).astype(np.float32, copy=False)
    out = []
    for p in pred:  # (4+nc, N)
        anchors, class_ids = np.nonzero(p[4:].T > conf)  # anchor-major, classes in order: deterministic
        out.append((xywh_to_xyxy(p[:4].T[anchors]), p[4:].T[anchors, class_ids], class_ids.astype(np.int64)))
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: (N, 4) x (M, 4) -> (N, M); 0 where the union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clip(0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return out.clip(0.0, 1.0)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_thres: float) -> np.ndarray:
    """Greedy class-aware NMS; returns kept indices, highest score first.

    A box is suppressed by a kept box of the same class whose IoU with it is above ``iou_thres``.
    Ties in score keep input order (stable sort), so the result is deterministic.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    classes = np.asarray(classes).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        same_class = classes[rest] == classes[best]
        overlap = iou(boxes[best], boxes[rest])[0] > iou_thres
        order = rest[~(same_class & overlap)]
    return np.asarray(keep, dtype=np.int64)


def postprocess(raw: np.ndarray, infos: Sequence[LetterboxInfo | None] | None = None,
                orig_shapes: Sequence[tuple[int, int]] | None = None, conf: float = 0.25, iou: float = 0.45,
                max_det: int = 300, nc: int | None = None, multi_label: bool = False) -> list[Detections]:
    """Raw head output -> per-image :class:`Detections` in original image coordinates.

    Keeps anchors whose best class score is above ``conf`` (single label per box, as ultralytics'
    predictor), runs class-aware NMS at ``iou``, keeps the ``max_det`` best. ``multi_label``: every
    (anchor, class) pair above ``conf`` is a candidate, as ultralytics' validator does for mAP (a box
    whose classes are confused is scored under each). Without ``infos`` boxes stay in model-input pixels.
    """
    iou_thres = iou
    decoded = decode_multi_label(raw, nc, conf) if multi_label else decode(raw, nc)
    results = []
    for i, (boxes, scores, class_ids) in enumerate(decoded):
        keep = scores > conf
        boxes, scores, class_ids = boxes[keep], scores[keep], class_ids[keep]
        if len(scores) > MAX_NMS_CANDIDATES:
            top = np.argsort(-scores, kind="stable")[:MAX_NMS_CANDIDATES]
            boxes, scores, class_ids = boxes[top], scores[top], class_ids[top]
        kept = nms(boxes, scores, class_ids, iou_thres)[:max_det]
        boxes, scores, class_ids = boxes[kept], scores[kept], class_ids[kept]
        info = infos[i] if infos is not None else None
        if info is not None:
            shape = orig_shapes[i] if orig_shapes is not None else None
            boxes = unletterbox_boxes(boxes, info, shape)
        results.append(Detections(boxes, scores, class_ids))
    return results


def default_images() -> list[Path]:
    """The two photos shipped inside the ultralytics package (found without importing it)."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("ultralytics is not installed, so it has no sample images: pass --images DIR")
    assets = Path(list(spec.submodule_search_locations)[0]) / "assets"
    paths = [assets / "bus.jpg", assets / "zidane.jpg"]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"ultralytics' sample images are missing ({', '.join(missing)}): pass --images DIR")
    return paths


def load_images(source: str | Path | Sequence[str | Path]) -> list[tuple[Path, np.ndarray]]:
    """Read images (a folder, one file, or a list of files) as BGR uint8 arrays, sorted by name in a folder.

    Raises :class:`UserError` for a missing path, a folder without images, or a file cv2 cannot decode.
    """
    import cv2  # noqa: PLC0415

    sources = [source] if isinstance(source, (str, Path)) else list(source)
    if not sources:
        raise UserError("no images given")
    paths: list[Path] = []
    for item in sources:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"{path}: no images in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise UserError(f"{path}: no such image file or folder")
    images = []
    for path in paths:
        data = np.fromfile(str(path), dtype=np.uint8)  # fromfile+imdecode: also works on non-ASCII paths
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if img is None or img.size == 0:
            raise UserError(f"{path}: not a readable image")
        images.append((path, img))
    return images
