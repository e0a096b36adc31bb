"""How far two engines' raw class scores drift apart on the same INT8 graph: the whole distribution.

    python results/scripts/int8_score_drift.py --profile full --imgsz 640 oneshot pruned_quant ...
    python results/scripts/int8_score_drift.py --profile full --imgsz 640 --per-image v5n_hardswish_pq

For each variant (built in the default store) and the same-graph INT8 pairs the parity tests check
(ONNX Runtime vs DeepSparse on the converted graph, ONNX Runtime vs OpenVINO pinned to f32 on the QDQ
graph), on exactly the parity tests' images (``yolobench.parity.PARITY_VAL_IMAGES`` validation images
and ultralytics' two photos), over every anchor, class and image:

- how many anchor-class scores were compared, and how many differ by more than 0.02 / 0.05 / 0.1;
- quantiles of |score difference| (median, 99.9%, 99.99%) and its maximum;
- the maximum where either side scores >= 0.25 (a detection a user would see) and where both are < 0.1;
- the same difference in logit space (the head's pre-sigmoid value), where one requantization step of
  the last layer is a fixed amount wherever the score lies;
- whether the detections (conf 0.25, NMS 0.45) agree under the cross-graph detection policy.
"""

import argparse

import numpy as np

from yolobench import annotate, engines
from yolobench.evaluate import validation_set
from yolobench.parity import PARITY_VAL_IMAGES, POLICY, compare_detections
from yolobench.processing import default_images, load_images, postprocess, preprocess

PAIRS = (("deepsparse", "onnxruntime", "deepsparse"), ("qdq", "onnxruntime", "openvino-f32"))


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--per-image", action="store_true", help="one row per image instead of per pair")
    return parser.parse_args()


def parity_images(profile: str) -> list:
    """(name, image) of the parity tests' images: the first validation images and the two photos."""
    dense = annotate.load_built("dense", profile)
    val, _, _ = validation_set(dense.meta["dataset"]["data_yaml"])
    return [(p.name, image) for p, image in load_images(val[:PARITY_VAL_IMAGES] + default_images())]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _row(label: str, ra: np.ndarray, rb: np.ndarray, agree: str) -> str:
    diff = np.abs(ra.astype(np.float64) - rb.astype(np.float64))
    confident = (ra >= 0.25) | (rb >= 0.25)
    low = (ra < 0.1) & (rb < 0.1)
    dlogit = np.abs(_logit(ra) - _logit(rb))
    q = np.quantile(diff, [0.5, 0.999, 0.9999])
    return (f"| {label} | {diff.size} | {(diff > 0.02).sum()} | {(diff > 0.05).sum()} | {(diff > 0.1).sum()} | "
            f"{q[0]:.5f} | {q[1]:.4f} | {q[2]:.4f} | {diff.max():.4f} | "
            f"{diff[confident].max() if confident.any() else 0:.4f} | {diff[low].max() if low.any() else 0:.4f} | "
            f"{dlogit[confident].max() if confident.any() else 0:.3f} | {agree} |")


def main() -> int:
    args = arguments(__doc__)
    images = parity_images(args.profile)
    print(f"{len(images)} images: {', '.join(name for name, _ in images)}\n")
    print("| variant, graph, pair | scores | > 0.02 | > 0.05 | > 0.1 | median | 99.9% | 99.99% | max | "
          "max, a score >= 0.25 | max, both < 0.1 | max logit diff, a score >= 0.25 | detections |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for variant in args.variants:
        artifact = annotate.load_built(variant, args.profile)
        if artifact is None:
            print(f"| {variant}: not built for profile {args.profile} | | | | | | | | | | | | |")
            continue
        for form, a, b in PAIRS:
            sa = engines.get_setting(a).load(artifact, batch=1, imgsz=args.imgsz, form=form)
            sb = engines.get_setting(b).load(artifact, batch=1, imgsz=args.imgsz, form=form)
            outs_a, outs_b, infos, names = [], [], [], []
            for name, image in images:
                batch, info = preprocess([image], args.imgsz)
                outs_a.append(np.asarray(sa.run(batch)))
                outs_b.append(np.asarray(sb.run(batch)))
                infos.extend(info)
                names.append(name)
            raw_a, raw_b = np.concatenate(outs_a), np.concatenate(outs_b)
            dets = compare_detections(postprocess(raw_a, infos, conf=0.25, iou=0.45),
                                      postprocess(raw_b, infos, conf=0.25, iou=0.45), POLICY.cross_graph)
            label = f"{variant}, {form}, {a} vs {b}"
            if args.per_image:
                for i, name in enumerate(names):
                    print(_row(f"{label}, {name}", raw_a[i, 4:], raw_b[i, 4:], ""))
            print(_row(label, raw_a[:, 4:], raw_b[:, 4:], dets.short() + (" (agree)" if dets.ok else " (DISAGREE)")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
