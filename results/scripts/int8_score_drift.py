"""How far two engines' raw class scores drift apart on the same INT8 graph, per variant and image.

    python results/scripts/int8_score_drift.py --profile full --imgsz 640 oneshot pruned_quant v5n_hardswish_oneshot v5n_hardswish_pq

For each variant (built in the default store) and the same-graph INT8 pairs the parity tests check
(ONNX Runtime vs DeepSparse on the converted graph, ONNX Runtime vs OpenVINO pinned to f32 on the QDQ
graph), on the parity images (the first validation images and ultralytics' two photos): the largest
|score difference| over all anchors and classes, how many anchor-class scores differ by more than 0.05,
and the largest difference where either side scores >= 0.25 (the detection threshold).
"""

import argparse

import numpy as np

from yolobench import annotate, engines
from yolobench.evaluate import validation_set
from yolobench.processing import default_images, load_images, preprocess

PAIRS = (("deepsparse", "onnxruntime", "deepsparse"), ("qdq", "onnxruntime", "openvino-f32"))
VAL_IMAGES = 2  # as tests/test_parity_variants.py PARITY_VAL_IMAGES


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--imgsz", type=int, default=640)
    return parser.parse_args()


def parity_images(profile: str) -> list:
    """(name, image) of the parity tests' images: the first validation images and the two photos."""
    dense = annotate.load_built("dense", profile)
    val, _, _ = validation_set(dense.meta["dataset"]["data_yaml"])
    return [(p.name, image) for p, image in load_images(val[:VAL_IMAGES] + default_images())]


def main() -> int:
    args = arguments(__doc__)
    images = parity_images(args.profile)
    print("| variant | graph | pair | image | max abs diff | scores > 0.05 apart | max where a score >= 0.25 |")
    print("|---|---|---|---|---:|---:|---:|")
    for variant in args.variants:
        artifact = annotate.load_built(variant, args.profile)
        for form, a, b in PAIRS:
            sa = engines.get_setting(a).load(artifact, batch=1, imgsz=args.imgsz, form=form)
            sb = engines.get_setting(b).load(artifact, batch=1, imgsz=args.imgsz, form=form)
            for name, image in images:
                batch, _ = preprocess([image], args.imgsz)
                ra, rb = np.asarray(sa.run(batch))[0, 4:], np.asarray(sb.run(batch))[0, 4:]
                diff = np.abs(ra - rb)
                confident = (ra >= 0.25) | (rb >= 0.25)
                print(f"| {variant} | {form} | {a} vs {b} | {name} | {diff.max():.4f} | {(diff > 0.05).sum()} of "
                      f"{diff.size} | {diff[confident].max() if confident.any() else 0:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
