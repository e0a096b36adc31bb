"""Drawing detections and captions on BGR images, shared by ``yolobench report`` and ``yolobench annotate``.

Everything is drawn with OpenCV's built-in Hershey font, so nothing is ever fetched (ultralytics'
``Annotator`` downloads Arial.ttf on first use). Sizes scale with the image, so a label is readable on a
128 px video frame and on a 1280 px photo alike. Labels that would overlap an earlier label are moved
(inside the box, below it) before they are allowed to overlap.

Must not: run a model, or change the image it is given (every function returns a new array).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from yolobench.processing import Detections

FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX, spelled as its value so importing this module stays light
TEXT_COLOR = (255, 255, 255)
DARK = (32, 32, 32)
# ultralytics' 20-colour palette (RGB hex), so boxes look like the blog's videos; a class keeps its colour.
PALETTE_HEX = ("FF3838", "FF9D97", "FF701F", "FFB21D", "CFD231", "48F90A", "92CC17", "3DDB86", "1A9334", "00D4BB",
               "2C99A8", "00C2FF", "344593", "6473FF", "0018EC", "8438FF", "520085", "CB38FF", "FF95C8", "FF37C7")
# Text on a light box colour is drawn dark: white on yellow is unreadable.
LIGHT_LUMA = 150

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels
LABEL_PLACES = ("above", "inside", "below", "inside-bottom")  # tried in this order; ties keep the first
AVOID_WEIGHT = 10  # covering a label with the banner loses it; covering part of another label does not
MIN_FONT_SCALE = 0.3  # below this Hershey text is unreadable: long banner lines are cut instead


def class_color(class_id: int) -> tuple[int, int, int]:
    """BGR colour of a class (cycles through the palette)."""
    value = PALETTE_HEX[int(class_id) % len(PALETTE_HEX)]
    r, g, b = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    return b, g, r


def _text_color_on(color: tuple[int, int, int]) -> tuple[int, int, int]:
    b, g, r = color
    return DARK if 0.299 * r + 0.587 * g + 0.114 * b > LIGHT_LUMA else TEXT_COLOR


def font_scale_for(image_shape: Sequence[int]) -> float:
    """Hershey font scale readable on an image of this (height, width): ~13 px text on 128 px, ~22 px on 720 px."""
    side = min(image_shape[:2])
    return float(np.clip(side / 900.0, 0.35, 0.75))


def _thickness(scale: float) -> int:
    return 1 if scale < 0.6 else 2


def text_size(text: str, scale: float) -> tuple[int, int, int]:
    """(width, height above baseline, baseline) of ``text`` in pixels."""
    import cv2  # noqa: PLC0415

    (w, h), baseline = cv2.getTextSize(text, FONT, scale, _thickness(scale))
    return w, h, baseline


def label_text(class_id: int, score: float, names: Mapping[int, str] | None) -> str:
    name = (names or {}).get(int(class_id), str(int(class_id)))
    return f"{name} {score:.2f}"


def _overlap_area(rect: Rect, others: Sequence[Rect]) -> int:
    x0, y0, x1, y1 = rect
    return sum(max(0, min(x1, o[2]) - max(x0, o[0])) * max(0, min(y1, o[3]) - max(y0, o[1])) for o in others)


def _label_rect(box: np.ndarray, size: tuple[int, int], where: str, shape: tuple[int, int]) -> Rect:
    """Rectangle (x0, y0, x1, y1) of a label of ``size`` (w, h) at ``where`` relative to ``box``, kept on the image."""
    height, width = shape
    w, h = size
    x0 = int(round(box[0]))
    if where == "above":
        y0 = int(round(box[1])) - h
    elif where == "inside":
        y0 = int(round(box[1]))
    elif where == "below":
        y0 = int(round(box[3]))
    else:  # inside, at the bottom
        y0 = int(round(box[3])) - h
    x0 = min(max(x0, 0), max(width - w, 0))
    y0 = min(max(y0, 0), max(height - h, 0))
    return x0, y0, x0 + w, y0 + h


@dataclass(frozen=True)
class Label:
    rect: Rect
    text: str
    color: tuple[int, int, int]
    pad: int
    baseline: int


def layout_labels(detections: Detections, names: Mapping[int, str] | None, shape: Sequence[int], scale: float,
                  avoid: Sequence[Rect] = ()) -> list[Label]:
    """Where each detection's "class score" label goes, best score first (it gets the best place).

    Each label tries, in order, above its box, inside its top, below it, inside its bottom, and takes
    the first place clear of earlier labels and of ``avoid`` (a banner drawn later); where every place
    is taken, the least covered one (a label under a banner is lost entirely, so that counts most).
    """
    shape = tuple(shape[:2])
    placed: list[Rect] = []
    labels = []
    for i in np.argsort(-detections.scores, kind="stable"):
        text = label_text(detections.class_ids[i], float(detections.scores[i]), names)
        w, h, baseline = text_size(text, scale)
        pad = max(2, h // 4)
        size = (w + 2 * pad, h + baseline + 2 * pad)
        candidates = [_label_rect(detections.boxes[i], size, where, shape) for where in LABEL_PLACES]
        rect = min(candidates, key=lambda r: _overlap_area(r, placed) + AVOID_WEIGHT * _overlap_area(r, avoid))
        placed.append(rect)
        labels.append(Label(rect, text, class_color(detections.class_ids[i]), pad, baseline))
    return labels


def draw_detections(image_bgr: np.ndarray, detections: Detections, names: Mapping[int, str] | None = None,
                    *, scale: float | None = None, avoid: Sequence[Rect] = ()) -> np.ndarray:
    """A copy of the image with each detection's box and label drawn (labels placed by :func:`layout_labels`)."""
    import cv2  # noqa: PLC0415

    out = np.ascontiguousarray(image_bgr).copy()
    shape = out.shape[:2]
    scale = font_scale_for(shape) if scale is None else scale
    line = max(1, int(round(min(shape) / 300)))
    # Boxes first (best score drawn last, on top), labels after: no box cuts through a label.
    for i in np.argsort(detections.scores, kind="stable"):
        x0, y0, x1, y1 = (int(round(v)) for v in detections.boxes[i])
        # Axis-aligned on whole pixels: no anti-aliasing needed, the edge keeps the exact class colour.
        cv2.rectangle(out, (x0, y0), (x1, y1), class_color(detections.class_ids[i]), line)
    for label in layout_labels(detections, names, shape, scale, avoid):
        x0, y0, x1, y1 = label.rect
        cv2.rectangle(out, (x0, y0), (x1, y1), label.color, -1)
        cv2.putText(out, label.text, (x0 + label.pad, y1 - label.pad - label.baseline), FONT, scale,
                    _text_color_on(label.color), _thickness(scale), cv2.LINE_AA)
    return out


def _fit(text: str, scale: float, width: int) -> str:
    """``text`` cut (ending "..") until it is at most ``width`` pixels wide at ``scale``."""
    if text_size(text, scale)[0] <= width:
        return text
    while len(text) > 1 and text_size(text + "..", scale)[0] > width:
        text = text[:-1]
    return text.rstrip() + ".."


def _banner_layout(shape: Sequence[int], lines: Sequence[str], scale: float | None, corner: str):
    height, width = shape[:2]
    scale = font_scale_for(shape) if scale is None else scale
    margin = max(2, int(round(min(height, width) / 100)))
    while scale * 0.9 >= MIN_FONT_SCALE and max(text_size(t, scale)[0] for t in lines) + 2 * margin > width:
        scale *= 0.9
    lines = [_fit(t, scale, width - 2 * margin) for t in lines]
    sizes = [text_size(t, scale) for t in lines]
    line_h = max(h + b for _, h, b in sizes) + margin
    box_w = min(width, max(w for w, _, _ in sizes) + 2 * margin)
    box_h = min(height, line_h * len(lines) + margin)
    x0 = 0 if corner.endswith("left") else width - box_w
    y0 = 0 if corner.startswith("top") else height - box_h
    return (x0, y0, x0 + box_w, y0 + box_h), scale, margin, lines, sizes, line_h


def banner_rect(shape: Sequence[int], lines: Sequence[str], *, scale: float | None = None,
                corner: str = "top-left") -> Rect:
    """Where :func:`draw_banner` will put its box on an image of this shape (for labels to avoid)."""
    return _banner_layout(shape, lines, scale, corner)[0]


def draw_banner(image_bgr: np.ndarray, lines: Sequence[str], *, scale: float | None = None,
                corner: str = "top-left") -> np.ndarray:
    """A copy with ``lines`` of text on a dark translucent box in a corner (the FPS overlay, captions).

    The font shrinks until the longest line fits the image width; below a readable size lines are cut.
    """
    import cv2  # noqa: PLC0415

    out = np.ascontiguousarray(image_bgr).copy()
    (x0, y0, x1, y1), scale, margin, lines, sizes, line_h = _banner_layout(out.shape, lines, scale, corner)
    region = out[y0:y1, x0:x1]
    # Translucent: the frame stays visible underneath (0.35 of it), the text stays readable.
    region[:] = (region.astype(np.float32) * 0.35 + np.array(DARK, np.float32) * 0.65).astype(np.uint8)
    for k, (text, (_, h, _b)) in enumerate(zip(lines, sizes)):
        baseline_y = y0 + margin + k * line_h + h
        cv2.putText(out, text, (x0 + margin, baseline_y), FONT, scale, TEXT_COLOR, _thickness(scale), cv2.LINE_AA)
    return out


def resize_to_height(image_bgr: np.ndarray, height: int) -> tuple[np.ndarray, float]:
    """The image scaled to ``height`` (aspect kept) and the factor applied."""
    import cv2  # noqa: PLC0415

    h, w = image_bgr.shape[:2]
    factor = height / h
    size = (max(1, int(round(w * factor))), height)
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return cv2.resize(image_bgr, size, interpolation=interpolation), factor


def scale_detections(detections: Detections, factor: float) -> Detections:
    return Detections(detections.boxes * factor, detections.scores, detections.class_ids)


def caption_strip(width: int, text: str, *, height: int = 34, scale: float = 0.6) -> np.ndarray:
    """A dark strip of ``width`` with ``text`` on it (shrunk to fit): a panel's or a sheet's title."""
    import cv2  # noqa: PLC0415

    strip = np.full((height, width, 3), DARK, dtype=np.uint8)
    while scale * 0.9 >= MIN_FONT_SCALE and text_size(text, scale)[0] + 16 > width:
        scale *= 0.9
    text = _fit(text, scale, width - 16)
    w, h, _ = text_size(text, scale)
    cv2.putText(strip, text, (8, (height + h) // 2), FONT, scale, TEXT_COLOR, _thickness(scale), cv2.LINE_AA)
    return strip


def contact_sheet(panels: Sequence[tuple[np.ndarray, str]], title: str, *, gap: int = 6) -> np.ndarray:
    """Panels of equal height side by side, each with its caption below, under one title strip."""
    if not panels:
        raise ValueError("no panels")
    columns = []
    for image, caption in panels:
        columns.append(np.vstack([image, caption_strip(image.shape[1], caption, scale=0.5)]))
    height = max(c.shape[0] for c in columns)
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    row_parts: list[np.ndarray] = []
    for k, column in enumerate(columns):
        if k:
            row_parts.append(spacer)
        if column.shape[0] < height:
            column = np.vstack([column, np.full((height - column.shape[0], column.shape[1], 3), 255, np.uint8)])
        row_parts.append(column)
    row = np.hstack(row_parts)
    return np.vstack([caption_strip(row.shape[1], title, height=40, scale=0.7), row])


def palette_png(image_rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB image in 256 colours (median cut, no dithering): a third of the size of a
    full-colour PNG for the report's charts and detection sheets, which the repository keeps per run.
    Deterministic: the same pixels give the same bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    picture = Image.fromarray(np.ascontiguousarray(image_rgb[..., :3]), "RGB")
    picture.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
