"""One-off (2026-12-04): the committed reports' PNGs re-encoded in 256 colours, as `yolobench report` now
writes them (yolobench.draw.palette_png), for reports whose artifacts are not on the machine that keeps the
repository lean (the Zen 5 full and smoke reports: their charts and sheets cannot be redrawn on a Zen 4
without that machine's store). The pixels are quantized, nothing else changes; report.md is untouched.

    PYTHONPATH=src python results/scripts/recompress_report_pngs.py results/report-full-amd-family26-model2 ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from yolobench.draw import palette_png


def main(folders: list[str]) -> int:
    before = after = 0
    print("| file | bytes before | bytes after |")
    print("|---|---:|---:|")
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.png")):
            old = path.read_bytes()
            with Image.open(path) as image:
                new = palette_png(np.asarray(image.convert("RGB")))
            if len(new) < len(old):
                path.write_bytes(new)
            before += len(old)
            after += min(len(new), len(old))
            print(f"| `{path}` | {len(old)} | {min(len(new), len(old))} |")
    print(f"| total | {before} | {after} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
