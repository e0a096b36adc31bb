"""Writes the example dataset next to this file: a stand-in for your own YOLO-format data.

    python examples/data/make_dataset.py            # rewrites examples/data/images and labels
    python examples/data/make_dataset.py --out DIR  # the same files elsewhere

Two classes on a plain gradient, 96 px PNGs: a washer (a ring) and a bolt (a bar with a head, lying
horizontally or vertically). Every box is the extent of the pixels drawn for its object, so the labels
are exact. Drawn with integer numpy masks from a fixed seed, and PNG is lossless, so the same pixels
come out on every machine (tests/test_examples.py regenerates them and compares). Small on purpose:
the committed images total a few kB each. It is enough to show the format and to run the checks;
too few images to train anything meaningful.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

NAMES = ("washer", "bolt")  # class 0, class 1: examples/data.yaml lists them in this order
SPLITS = {"train": 8, "val": 4}  # images per split
IMGSZ = 96
SEED = 2026


def _washer(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    outer = int(rng.integers(10, 18))
    inner = outer // 2
    cy, cx = int(rng.integers(outer, h - outer)), int(rng.integers(outer, w - outer))
    yy, xx = np.ogrid[:h, :w]
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    return (d2 <= outer * outer) & (d2 > inner * inner)


def _bolt(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    length, thick = int(rng.integers(30, 50)), int(rng.integers(5, 8))
    head = thick + 6
    mask = np.zeros((h, w), bool)
    y0, x0 = int(rng.integers(2, h - head - 2)), int(rng.integers(2, w - length - 2))
    mid = y0 + head // 2
    mask[mid - thick // 2: mid - thick // 2 + thick, x0 + 4: x0 + length] = True  # the shaft
    mask[y0: y0 + head, x0: x0 + 5] = True  # the head
    return mask.T.copy() if rng.integers(2) else mask  # vertical or horizontal (the image is square)


def _box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """YOLO box (x_center, y_center, width, height, normalised) around the mask's pixels."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h


def make(out: Path) -> dict[str, int]:
    """Write images/<split>/*.png and labels/<split>/*.txt under ``out``; the number of images per split."""
    rng = np.random.default_rng(SEED)
    ramp = np.linspace(150, 210, IMGSZ).astype(np.uint8)
    for split, count in SPLITS.items():
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = np.empty((IMGSZ, IMGSZ, 3), np.uint8)
            image[...] = ramp[:, None, None] if i % 2 else ramp[None, :, None]
            rows, taken = [], np.zeros((IMGSZ, IMGSZ), bool)
            for cls in (0, 1) if i % 3 else (1, 0, 1):  # both classes in every image, some with two bolts
                for _ in range(20):  # a place that does not overlap what is drawn already
                    mask = (_washer if cls == 0 else _bolt)(IMGSZ, IMGSZ, rng)
                    if not (mask & taken).any():
                        break
                else:
                    continue
                taken |= mask
                image[mask] = (60, 60, 70) if cls == 0 else (120, 70, 30)
                rows.append(f"{cls} " + " ".join(f"{v:.6f}" for v in _box(mask)))
            Image.fromarray(image).save(out / "images" / split / f"{split}_{i:02d}.png", optimize=True)
            (out / "labels" / split / f"{split}_{i:02d}.txt").write_text("\n".join(rows) + "\n")
    return dict(SPLITS)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder to write images/ and labels/ into (default: this file's folder)")
    counts = make(parser.parse_args().out)
    print(", ".join(f"{split}: {n} images" for split, n in counts.items()))
