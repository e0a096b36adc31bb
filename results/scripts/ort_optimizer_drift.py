"""Does ONNX Runtime's graph optimizer change an INT8 graph's numbers? Same file, same images: ONNX
Runtime with all optimizations (its default) and with none, each against DeepSparse and OpenVINO (f32).

    python results/scripts/ort_optimizer_drift.py --profile full --imgsz 640 VARIANT [VARIANT ...]
"""

import numpy as np
from int8_score_drift import arguments, parity_images  # the same images and options

from yolobench import annotate, engines
from yolobench.processing import preprocess


def ort_session(path, level):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> int:
    import onnxruntime as ort

    args = arguments(__doc__)
    images = parity_images(args.profile)
    levels = {"ORT all optimizations (default)": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              "ORT basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "ORT none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
    print("| variant | graph | ORT setting | vs | max abs score diff over the 4 images |")
    print("|---|---|---|---|---:|")
    for variant in args.variants:
        artifact = annotate.load_built(variant, args.profile)
        for form, other in (("deepsparse", "deepsparse"), ("qdq", "openvino-f32")):
            path = artifact.onnx_path(form, args.imgsz)
            ref = engines.get_setting(other).load(artifact, batch=1, imgsz=args.imgsz, form=form)
            batches = [preprocess([im], args.imgsz)[0] for _, im in images]
            ref_out = [np.asarray(ref.run(b))[0, 4:] for b in batches]
            for label, level in levels.items():
                session = ort_session(path, level)
                name = session.get_inputs()[0].name
                worst = max(float(np.abs(session.run(None, {name: b})[0][0, 4:] - r).max())
                            for b, r in zip(batches, ref_out))
                print(f"| {variant} | {form} | {label} | {other} | {worst:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
