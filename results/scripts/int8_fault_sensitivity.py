"""What an error inside an INT8 graph does to the raw class scores, against the same-graph INT8 policy.

    python results/scripts/int8_fault_sensitivity.py --profile full --imgsz 640 v5n_hardswish_pq pruned_quant
    python results/scripts/int8_fault_sensitivity.py --profile full --imgsz 640 --all-layers 1.05 v5n_hardswish_pq

The parity tests compare one INT8 graph on two engines; what they must catch is an engine computing one
layer wrongly. This script makes such an error on purpose, on ONNX Runtime alone: the QDQ graph against
a copy where one layer's weight DequantizeLinear scale is off (by 1%, 2% or 5%: a wrong requantization
multiplier), for a layer early, in the middle and late in the network, on the parity images. For each
it prints how many anchor-class scores move by more than the policy's ``score_atol``, the largest move,
and whether ``compare_raw`` under ``POLICY.same_graph_int8`` still calls the pair in agreement.
``--all-layers F`` does it for every layer at one factor and counts the layers each rule flags: the policy,
and the earlier rule (no score more than 0.05 apart).
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
from int8_score_drift import parity_images  # the same images
from onnx import numpy_helper

from yolobench import annotate
from yolobench.parity import POLICY, compare_raw
from yolobench.processing import preprocess


def weight_dequantizers(model: onnx.ModelProto) -> list[int]:
    """Indices of the DequantizeLinear nodes that dequantize a convolution's weights (fake-quant export)."""
    inits = {i.name for i in model.graph.initializer}
    return [k for k, n in enumerate(model.graph.node)
            if n.op_type == "DequantizeLinear" and "weight" in n.input[0] and n.input[1] in inits]


def with_scale(model: onnx.ModelProto, node: int, factor: float) -> onnx.ModelProto:
    """A copy where only that DequantizeLinear's scale is off by ``factor`` (its QuantizeLinear is not):
    the weights come out scaled, as from a wrong requantization multiplier."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    dq = copy.graph.node[node]
    scale = next(i for i in copy.graph.initializer if i.name == dq.input[1])
    broken = numpy_helper.from_array(numpy_helper.to_array(scale) * np.float32(factor), dq.input[1] + "_broken")
    copy.graph.initializer.append(broken)
    dq.input[1] = broken.name
    return copy


def run(path: Path, batches: list) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1  # numbers, not speed: one thread is enough and disturbs a build less
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: b})[0] for b in batches])


def arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--all-layers", type=float, metavar="FACTOR", help="every layer at this one factor")
    return parser.parse_args()


def main() -> int:
    args = arguments()
    images = parity_images(args.profile)
    batches = [preprocess([image], args.imgsz)[0] for _, image in images]
    policy = POLICY.same_graph_int8
    print(f"{len(images)} parity images; policy: |Δscore| <= {policy.score_atol.value} except a fraction "
          f"{policy.score_outliers.value:g}, none > {policy.score_max.value}\n")
    print("| variant | weight scale | factor | scores moved > 0.02 | > 0.05 | 99.9% of |Δscore| | max |Δscore| | "
          "same_graph_int8 |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for variant in args.variants:
        artifact = annotate.load_built(variant, args.profile)
        path = artifact.onnx_path("qdq", args.imgsz)
        model = onnx.load(str(path))
        nodes = weight_dequantizers(model)
        reference = run(path, batches)
        if args.all_layers:
            picks = {f"layer {i + 1}/{len(nodes)}": node for i, node in enumerate(nodes)}
            factors = (args.all_layers,)
        else:
            picks = {"early": nodes[2], "middle": nodes[len(nodes) // 2], "late": nodes[-4]}
            factors = (1.01, 1.02, 1.05)
        flagged, flagged_before = 0, 0
        with tempfile.TemporaryDirectory() as tmp:
            for where, node in picks.items():
                name = model.graph.node[node].input[1]
                for factor in factors:
                    broken = Path(tmp) / "broken.onnx"
                    onnx.save(with_scale(model, node, factor), str(broken))
                    out = run(broken, batches)
                    result = compare_raw(reference, out, policy, imgsz=args.imgsz)
                    diff = np.abs(reference[:, 4:].astype(np.float64) - out[:, 4:])
                    flagged += not result.ok
                    flagged_before += result.max_abs_score > 0.05
                    print(f"| {variant} | {where} ({name}) | {factor} | {(diff > 0.02).sum()} | {result.score_outliers} of "
                          f"{result.scores} | {np.quantile(diff, 0.999):.4f} | {result.max_abs_score:.4f} | "
                          f"{'agree' if result.ok else 'disagree'} |")
        if args.all_layers:
            print(f"\n{variant}: a weight scale off by {args.all_layers} is flagged in {flagged} of {len(nodes)} "
                  f"layers by the policy, in {flagged_before} by the earlier rule (every score within 0.05)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
