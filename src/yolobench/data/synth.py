"""A deterministic synthetic YOLO-format detection dataset (the built-in dataset).

Design (what a reader of a benchmark number needs to know about the data):

- **Classes** (3 per domain, ids 0-2). ``target``: circle (slightly elliptic), triangle, square-ish
  rectangle, filled with a solid shaded colour, sometimes outlined. ``source`` (for sparse transfer
  learning: same number of classes, other shapes and look): five-pointed star, plus-shaped cross, ring
  (annulus, the background shows through the hole), filled with two-colour stripes from a muted palette,
  always outlined. ``broad`` (the source of the ``full`` profile's sparse transfer learning: broad as
  a large public dataset is to a user's small one): 14 classes (``BROAD_NAMES``: stars, polygons,
  arrows, letters, a heart, a crescent, ...; none of them a target class), each drawn in any of four
  looks (the target's solid shading, the source's stripes, a checkerboard, a two-colour gradient),
  outlined or not, up to ``MAX_OBJECTS_BROAD`` (8) per image.
- **Scale**: the diameter of each shape's circumscribed circle is log-uniform between
  ``MIN_SIZE`` (10%) and ``MAX_SIZE`` (50%) of the image side: 26 to 128 px at 256 px. Aspect, rotation
  (any angle), position and colour are random; shapes may run over the image border.
- **Objects per image**: 1 to ``MAX_OBJECTS`` (6), drawn one over the other, so later shapes occlude
  earlier ones.
- **Occlusion / visibility rule**: the visible fraction of a shape is (its pixels inside the image and
  not covered by any later shape) / (its whole area). Every labelled shape has a visible fraction of at
  least ``MIN_VISIBLE`` (0.6): a placement that would leave the new shape, or push any earlier shape,
  below it is re-drawn (up to ``PLACEMENT_TRIES`` times, then the shape is left out). So every shape in
  an image is labelled: there are no half-hidden unlabelled shapes that would teach a model to miss.
- **Boxes** are tight around the shape's visible pixels (its rasterised polygon, minus what later shapes
  cover, clipped to the image), in YOLO format ``class x_center y_center width height``, normalised.
- **Backgrounds**: low-frequency colour noise, linear or radial gradients, random crops of the two photos
  shipped inside the ultralytics package (``assets/bus.jpg``, ``assets/zidane.jpg``), or a blend of a
  crop and a gradient; then 0-5 clutter strokes under the shapes (lines, open polylines, thin arcs, flat ellipses:
  nothing shaped like a class), and per-image pixel noise and sometimes a slight blur.
- **Determinism**: every image uses its own ``numpy.random.default_rng`` seeded from (generator version,
  domain, seed, split, index); PNGs are written by OpenCV with a fixed compression level and no metadata,
  so the same arguments give byte-identical files (with the same OpenCV / numpy versions).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from yolobench.errors import UserError

# Bump when the images or labels change for the same arguments: built-in datasets are regenerated.
GENERATOR_VERSION = 2

MIN_SIZE = 0.10  # smallest shape: circumscribed-circle diameter / image side
MAX_SIZE = 0.50  # largest shape
MAX_OBJECTS = 6  # objects per image: uniform in 1..MAX_OBJECTS
MIN_VISIBLE = 0.6  # a shape keeps at least this fraction of its area visible (see module docstring)
MIN_BOX_PX = 4  # the visible part of a shape is at least this many pixels wide and high
PLACEMENT_TRIES = 30
MIN_IMGSZ = 32
PNG_COMPRESSION = 6  # fixed: part of what makes the files byte-identical
PHOTOS = ("bus.jpg", "zidane.jpg")  # shipped in the ultralytics package (ultralytics/assets/)

BROAD_NAMES = ("star", "cross", "ring", "pentagon", "hexagon", "diamond", "crescent", "arrow", "heart",
               "trapezoid", "semicircle", "l_shape", "t_shape", "star4")
MAX_OBJECTS_BROAD = 8  # more boxes per image: more to learn from per optimizer step

DOMAIN_NAMES = {
    "target": ("circle", "triangle", "square"),
    "source": ("star", "cross", "ring"),
    "broad": BROAD_NAMES,
}
# New domains take new ids: an id seeds its images, so the existing domains' images never change.
DOMAIN_IDS = {"target": 0, "source": 1, "broad": 2}
SPLIT_IDS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class SynthResult:
    root: Path
    data_yaml: Path
    images: dict[str, int]  # split -> images written
    boxes: dict[str, int]  # split -> labelled boxes written


# ------------------------------------------------------------------------------------------ geometry

def _shape_polygons(kind: str, radius: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Outer polygon (N, 2) centred on 0 with circumradius ~``radius``, and an optional hole polygon."""
    hole = None
    if kind == "circle":
        n = 48
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        aspect = rng.uniform(0.85, 1.0)
        pts = np.stack([radius * np.cos(t), radius * aspect * np.sin(t)], 1)
    elif kind == "triangle":
        base = np.deg2rad(np.array([90.0, 210.0, 330.0]))
        t = base + np.deg2rad(rng.uniform(-8, 8, 3))
        r = radius * rng.uniform(0.9, 1.0, 3)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    elif kind == "square":
        aspect = rng.uniform(0.75, 1.0)
        # Rectangle with sides a, a*aspect inscribed in the circle of radius `radius`.
        a = 2 * radius / math.sqrt(1 + aspect**2)
        hx, hy = a / 2, a * aspect / 2
        pts = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    elif kind == "star":
        inner = radius * rng.uniform(0.38, 0.5)
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, radius, inner)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    elif kind == "cross":
        w = radius * rng.uniform(0.28, 0.38)  # half-width of an arm
        # Arms of length `radius` from the centre: corners of the arm ends are at distance sqrt(r^2 + w^2),
        # so shrink the arm length a little to keep the circumradius ~radius.
        r = math.sqrt(max(radius**2 - w**2, (1.5 * w) ** 2))
        pts = np.array([[-w, -r], [w, -r], [w, -w], [r, -w], [r, w], [w, w],
                        [w, r], [-w, r], [-w, w], [-r, w], [-r, -w], [-w, -w]])
    elif kind == "ring":
        n = 48
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        pts = np.stack([radius * np.cos(t), radius * np.sin(t)], 1)
        hole = pts * rng.uniform(0.45, 0.65)
    elif kind in ("pentagon", "hexagon"):
        n = 5 if kind == "pentagon" else 6
        t = np.arange(n) * 2 * np.pi / n + np.deg2rad(rng.uniform(-5, 5, n))
        pts = np.stack([radius * np.cos(t), radius * np.sin(t)], 1)
    elif kind == "diamond":
        ry = radius * rng.uniform(0.45, 0.7)
        pts = np.array([[radius, 0.0], [0.0, ry], [-radius, 0.0], [0.0, -ry]])
    elif kind == "crescent":
        # The outer disc minus a cutting disc of radius rc centred at (d, 0): outer arc, then the cutter's arc.
        d, rc = radius * rng.uniform(0.35, 0.55), radius * rng.uniform(0.75, 0.9)
        x = (radius**2 - rc**2 + d**2) / (2 * d)
        y = math.sqrt(max(radius**2 - x**2, 1e-6))
        a, b = math.atan2(y, x), math.atan2(y, x - d)
        t_out = np.linspace(a, 2 * np.pi - a, 36)
        t_in = np.linspace(2 * np.pi - b, b, 24)
        pts = np.concatenate([np.stack([radius * np.cos(t_out), radius * np.sin(t_out)], 1),
                              np.stack([d + rc * np.cos(t_in), rc * np.sin(t_in)], 1)])
    elif kind == "arrow":
        w, h, a = radius * rng.uniform(0.15, 0.25), radius * rng.uniform(0.45, 0.6), radius * rng.uniform(0.0, 0.3)
        pts = np.array([[-radius, -w], [a, -w], [a, -h], [radius, 0.0], [a, h], [a, w], [-radius, w]])
    elif kind == "heart":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        xs = 16 * np.sin(t) ** 3
        ys = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        pts = np.stack([xs, ys], 1)
        pts = (pts - pts.mean(0)) * (radius / float(np.linalg.norm(pts - pts.mean(0), axis=1).max()))
    elif kind == "trapezoid":
        hy = radius * rng.uniform(0.5, 0.7)
        b = math.sqrt(max(radius**2 - hy**2, 1e-6))
        top = b * rng.uniform(0.35, 0.6)
        pts = np.array([[-b, hy], [b, hy], [top, -hy], [-top, -hy]])
    elif kind == "semicircle":
        t = np.linspace(0, np.pi, 25)
        pts = np.stack([radius * np.cos(t), radius * np.sin(t) - radius / 2], 1)
    elif kind in ("l_shape", "t_shape"):
        s_ = radius / math.sqrt(2)  # half-side of the bounding square inscribed in the circle
        w = s_ * rng.uniform(0.5, 0.7)  # stroke width, as a share of the full side 2*s_
        if kind == "l_shape":
            pts = np.array([[-s_, -s_], [-s_ + w, -s_], [-s_ + w, s_ - w], [s_, s_ - w], [s_, s_], [-s_, s_]])
        else:
            pts = np.array([[-s_, -s_], [s_, -s_], [s_, -s_ + w], [w / 2, -s_ + w], [w / 2, s_], [-w / 2, s_],
                            [-w / 2, -s_ + w], [-s_, -s_ + w]])
    elif kind == "star4":
        inner = radius * rng.uniform(0.3, 0.45)
        t = np.arange(8) * np.pi / 4
        r = np.where(np.arange(8) % 2 == 0, radius, inner)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    else:  # pragma: no cover
        raise ValueError(kind)
    return pts, hole


def _place(pts: np.ndarray, angle: float, cx: float, cy: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return pts @ rot.T + np.array([cx, cy])


_SHIFT = 4  # sub-pixel bits for cv2.fillPoly


def _raster(polys: tuple[np.ndarray, np.ndarray | None], shape: tuple[int, int], offset=(0.0, 0.0)) -> np.ndarray:
    """Anti-aliased alpha (uint8 0..255) of a polygon with an optional hole."""
    outer, hole = polys
    alpha = np.zeros(shape, np.uint8)
    scale = float(1 << _SHIFT)
    off = np.array(offset)
    cv2.fillPoly(alpha, [np.round((outer - off) * scale).astype(np.int32)], 255, cv2.LINE_AA, _SHIFT)
    if hole is not None:
        cv2.fillPoly(alpha, [np.round((hole - off) * scale).astype(np.int32)], 0, cv2.LINE_AA, _SHIFT)
    return alpha


# --------------------------------------------------------------------------------------- backgrounds

@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    """The two photos shipped in the ultralytics package (read from its install folder, never fetched)."""
    import importlib.util  # noqa: PLC0415

    # find_spec locates the installed package without importing it (importing ultralytics imports torch: 3 s).
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return ()
    assets = Path(next(iter(spec.submodule_search_locations))) / "assets"
    photos = []
    for name in PHOTOS:
        try:
            data = (assets / name).read_bytes()
        except OSError:
            continue
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is not None:
            photos.append(img)
    return tuple(photos)


def _random_color(rng: np.random.Generator, sat=(0.45, 1.0), val=(0.45, 1.0)) -> np.ndarray:
    h = rng.uniform(0, 180)
    s = rng.uniform(*sat) * 255
    v = rng.uniform(*val) * 255
    hsv = np.array([[[h, s, v]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _gradient(rng: np.random.Generator, z: int) -> np.ndarray:
    c0 = rng.uniform(0, 255, 3).astype(np.float32)
    c1 = rng.uniform(0, 255, 3).astype(np.float32)
    yy, xx = np.mgrid[0:z, 0:z].astype(np.float32) / z
    if rng.random() < 0.6:
        a = rng.uniform(0, 2 * np.pi)
        t = (xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    else:
        cx, cy = rng.uniform(0, 1, 2)
        t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        t = np.clip(t / rng.uniform(0.5, 1.2), 0, 1)
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def _noise_field(rng: np.random.Generator, z: int) -> np.ndarray:
    img = np.zeros((z, z, 3), np.float32)
    for cells, weight in ((int(rng.integers(2, 6)), 1.0), (int(rng.integers(8, 24)), rng.uniform(0.2, 0.6))):
        small = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        img += weight * cv2.resize(small, (z, z), interpolation=cv2.INTER_CUBIC)
    img /= img.max() / 255.0 if img.max() > 0 else 1.0
    return img


def _photo_crop(rng: np.random.Generator, z: int) -> np.ndarray | None:
    photos = _photos()
    if not photos:
        return None
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.25, 1.0))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    crop = photo[y0:y0 + side, x0:x0 + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = cv2.resize(np.ascontiguousarray(crop), (z, z), interpolation=cv2.INTER_AREA).astype(np.float32)
    return crop * rng.uniform(0.75, 1.2, 3).astype(np.float32)  # per-channel colour jitter


def _background(rng: np.random.Generator, z: int) -> np.ndarray:
    r = rng.random()
    photo = _photo_crop(rng, z) if r < 0.5 else None
    if r < 0.35 and photo is not None:
        img = photo
    elif r < 0.5 and photo is not None:
        k = rng.uniform(0.3, 0.7)
        img = k * photo + (1 - k) * _gradient(rng, z)
    elif r < 0.75:
        img = _gradient(rng, z)
    else:
        img = _noise_field(rng, z)
    return np.clip(img, 0, 255)


def _clutter(img: np.ndarray, rng: np.random.Generator) -> None:
    """Distractors under the shapes: strokes that look like none of the classes."""
    z = img.shape[0]
    for _ in range(int(rng.integers(0, 6))):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        thick = int(rng.integers(1, 4))
        kind = rng.random()
        if kind < 0.4:
            p0 = tuple(int(v) for v in rng.integers(-z // 4, z + z // 4, 2))
            p1 = tuple(int(v) for v in rng.integers(-z // 4, z + z // 4, 2))
            cv2.line(img, p0, p1, color, thick, cv2.LINE_AA)
        elif kind < 0.7:
            n = int(rng.integers(3, 6))
            pts = rng.integers(0, z, (n, 2)).astype(np.int32)
            cv2.polylines(img, [pts], False, color, thick, cv2.LINE_AA)
        elif kind < 0.85:
            c = tuple(int(v) for v in rng.integers(0, z, 2))
            ax = int(rng.integers(z // 20, z // 4))
            a0 = float(rng.uniform(0, 360))
            cv2.ellipse(img, c, (ax, ax), 0, a0, a0 + float(rng.uniform(40, 160)), color, thick, cv2.LINE_AA)
        else:  # a flat ellipse (aspect <= 0.35): far from the (near-round) circle class
            c = tuple(int(v) for v in rng.integers(0, z, 2))
            ax = int(rng.integers(z // 30 + 2, z // 8 + 3))
            ay = max(1, int(ax * rng.uniform(0.1, 0.35)))
            cv2.ellipse(img, c, (ax, ay), float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)


# ------------------------------------------------------------------------------------------ drawing

def _fill(domain: str, rng: np.random.Generator, z: int, bg_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fill image z x z x 3, outline colour) for one object."""
    yy, xx = np.mgrid[0:z, 0:z].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    proj = xx * math.cos(a) + yy * math.sin(a)
    style = domain
    if domain == "broad":  # every look of the other domains and two of its own
        style = ("target", "source", "checker", "gradient")[int(rng.integers(4))]
    if style in ("checker", "gradient"):
        c0, c1 = _random_color(rng), _random_color(rng, sat=(0.1, 1.0), val=(0.2, 1.0))
        if style == "checker":
            period = rng.uniform(5, 12) * z / 256
            b = proj / period
            c = (xx * -math.sin(a) + yy * math.cos(a)) / period
            mix = ((np.floor(b) + np.floor(c)) % 2)[..., None]
        else:
            mix = np.clip((proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6), 0, 1)[..., None]
        fill = c0 * (1 - mix) + c1 * mix
        outline = c0 * rng.uniform(0.2, 0.5)
    elif style == "target":
        # Solid colour far enough from the local background, with a soft shading ramp.
        color = _random_color(rng)
        for _ in range(6):
            if float(np.linalg.norm(color - bg_mean)) >= 80:
                break
            color = _random_color(rng)
        ramp = rng.uniform(-0.25, 0.25) * (proj / z - 0.5)
        fill = color[None, None, :] * (1 + ramp[..., None])
        outline = color * rng.uniform(0.3, 0.6)
    else:
        # Two-colour stripes from a muted palette, always outlined.
        c0 = _random_color(rng, sat=(0.15, 0.5), val=(0.3, 0.95))
        c1 = _random_color(rng, sat=(0.15, 0.5), val=(0.3, 0.95))
        period = rng.uniform(4, 9) * z / 256
        stripe = (np.floor(proj / period) % 2)[..., None]
        fill = c0 * (1 - stripe) + c1 * stripe
        outline = np.full(3, rng.uniform(0, 60), np.float32) if rng.random() < 0.5 else \
            np.full(3, rng.uniform(200, 255), np.float32)
    return fill.astype(np.float32), outline.astype(np.float32)


def render_image(domain: str, seed: int, split: str, index: int, imgsz: int) -> tuple[np.ndarray, list[tuple]]:
    """One image (BGR uint8) and its labels [(class, xc, yc, w, h)], fully determined by the arguments."""
    names = DOMAIN_NAMES[domain]
    rng = np.random.default_rng([GENERATOR_VERSION, DOMAIN_IDS[domain], int(seed), SPLIT_IDS[split], int(index)])
    z = int(imgsz)
    img = _background(rng, z)
    _clutter(img, rng)

    # Place the shapes: each keeps >= MIN_VISIBLE of its area visible (see module docstring).
    placed = []  # dicts: cls, polys, alpha (z x z uint8), area (float), visible (bool mask)
    for _ in range(int(rng.integers(1, (MAX_OBJECTS_BROAD if domain == "broad" else MAX_OBJECTS) + 1))):
        cls = int(rng.integers(len(names)))
        for _try in range(PLACEMENT_TRIES):
            d = z * math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE)))
            r = d / 2
            pts, hole = _shape_polygons(names[cls], r, rng)
            angle = rng.uniform(0, 2 * np.pi)
            cx, cy = rng.uniform(-0.2 * r, z + 0.2 * r, 2)
            polys = (_place(pts, angle, cx, cy), None if hole is None else _place(hole, angle, cx, cy))
            # Whole area: rasterise on a canvas that holds the whole shape.
            lo = np.floor(polys[0].min(0)) - 2
            hi = np.ceil(polys[0].max(0)) + 2
            local = _raster(polys, (int(hi[1] - lo[1]), int(hi[0] - lo[0])), offset=(lo[0], lo[1]))
            area = float((local >= 128).sum())
            alpha = _raster(polys, (z, z))
            mask = alpha >= 128
            if area <= 0 or mask.sum() < MIN_VISIBLE * area:
                continue
            ok = all((p["visible"] & ~mask).sum() >= MIN_VISIBLE * p["area"] and
                     _box_ok(p["visible"] & ~mask) for p in placed)
            if ok and _box_ok(mask):
                for p in placed:
                    p["visible"] &= ~mask
                placed.append({"cls": cls, "polys": polys, "alpha": alpha, "area": area, "visible": mask})
                break

    labels = []
    for p in placed:
        bg_mean = img[p["visible"]].mean(0) if p["visible"].any() else np.zeros(3, np.float32)
        fill, outline = _fill(domain, rng, z, bg_mean)
        a = (p["alpha"].astype(np.float32) / 255.0)[..., None]
        img = img * (1 - a) + fill * a
        thick_p = {"target": 0.5, "source": 1.0}.get(domain, 0.6)
        if rng.random() < thick_p:
            thick = max(1, int(round(z / 256 * rng.uniform(1, 2.5))))
            lines = np.zeros((z, z), np.uint8)
            scale = float(1 << _SHIFT)
            for poly in p["polys"]:
                if poly is not None:
                    cv2.polylines(lines, [np.round(poly * scale).astype(np.int32)], True, 255, thick,
                                  cv2.LINE_AA, _SHIFT)
            # The outline stays inside the shape's own pixels, so the box (from the mask) stays tight.
            la = (np.minimum(lines, p["alpha"]).astype(np.float32) / 255.0)[..., None]
            img = img * (1 - la) + outline * la
    for p in placed:
        ys, xs = np.nonzero(p["visible"])
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        labels.append((p["cls"], (x0 + x1) / 2 / z, (y0 + y1) / 2 / z, (x1 - x0) / z, (y1 - y0) / z))

    # Camera-ish degradation: gain, pixel noise, sometimes a slight blur.
    img = img * rng.uniform(0.85, 1.15)
    if rng.random() < 0.25:
        img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.5, 1.0))
    img = img + rng.normal(0, rng.uniform(2, 8), img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), labels


def _box_ok(mask: np.ndarray) -> bool:
    cols = np.flatnonzero(mask.any(0))
    rows = np.flatnonzero(mask.any(1))
    return cols.size > 0 and cols[-1] - cols[0] + 1 >= MIN_BOX_PX and rows[-1] - rows[0] + 1 >= MIN_BOX_PX


# ------------------------------------------------------------------------------------------ writing

def data_yaml_text(domain: str, seed: int, train: int, val: int, imgsz: int) -> str:
    names = DOMAIN_NAMES[domain]
    lines = [
        f"# yolobench synthetic detection dataset (generator v{GENERATOR_VERSION}): "
        f"domain={domain} seed={seed} train={train} val={val} imgsz={imgsz}",
        "# No 'path:' key on purpose: ultralytics then resolves train/val against this file's folder, so",
        "# the folder can be moved or renamed ('path: .' would mean the current directory instead).",
        "train: images/train",
        "val: images/val",
        f"nc: {len(names)}",
        "names:",
        *[f"  {i}: {n}" for i, n in enumerate(names)],
    ]
    return "\n".join(lines) + "\n"


def _validate(domain: str, seed: int, train: int, val: int, imgsz: int) -> None:
    if domain not in DOMAIN_NAMES:
        raise UserError(f"unknown domain {domain!r}; use one of: {', '.join(DOMAIN_NAMES)}")
    if train < 1 or val < 1:
        raise UserError(f"--train and --val must be at least 1 (got {train}, {val})")
    if imgsz < MIN_IMGSZ:
        raise UserError(f"--imgsz must be at least {MIN_IMGSZ} (got {imgsz})")
    if seed < 0:
        raise UserError(f"--seed must be >= 0 (got {seed})")


def synthesize(out: str | Path, *, seed: int = 0, train: int = 256, val: int = 64, imgsz: int = 256,
               domain: str = "target", progress: bool = False) -> SynthResult:
    """Write the dataset into ``out`` (created; must not already hold a dataset). Deterministic."""
    _validate(domain, seed, train, val, imgsz)
    root = Path(out)
    for existing in ("data.yaml", "images", "labels"):
        if (root / existing).exists():
            raise UserError(f"{root / existing} already exists; choose a new or empty --out folder "
                            "(or pass --overwrite)")
    counts = {"train": train, "val": val}
    total = train + val
    step = max(1, total // 10)
    done = 0
    boxes = {}
    for split, n in counts.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        boxes[split] = 0
        for i in range(n):
            img, labels = render_image(domain, seed, split, i, imgsz)
            ok, png = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
            if not ok:  # pragma: no cover
                raise RuntimeError("cv2.imencode failed")
            stem = f"{split}_{i:06d}"
            (root / "images" / split / f"{stem}.png").write_bytes(png.tobytes())
            text = "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in labels)
            (root / "labels" / split / f"{stem}.txt").write_text(text, encoding="utf-8", newline="\n")
            boxes[split] += len(labels)
            done += 1
            if progress and (done % step == 0 or done == total):
                print(f"yolobench data synth: {done}/{total} images", file=sys.stderr, flush=True)
    (root / "data.yaml").write_text(data_yaml_text(domain, seed, train, val, imgsz), encoding="utf-8",
                                    newline="\n")
    meta = {"generator_version": GENERATOR_VERSION, "domain": domain, "seed": seed, "train": train, "val": val,
            "imgsz": imgsz, "names": list(DOMAIN_NAMES[domain]), "boxes": boxes}
    (root / "synth.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8",
                                     newline="\n")
    return SynthResult(root=root, data_yaml=root / "data.yaml", images=dict(counts), boxes=boxes)
