"""Why do ONNX Runtime's INT8 processes land in two modes? One setting at a time, many fresh processes.

    python results/scripts/ort_modes.py --profile smoke --variant pruned_quant --processes 20 --out results/ab/NAME.md

On this VM an INT8 (QDQ) graph on ONNX Runtime runs at one of two speeds per process (e.g. ~15 or ~26 ms
at 160 px), and a bimodal cell needs many more A/B pairs for the same power. This runs the variant's QDQ
graph in fresh processes (load, 0.5 s warm-up, 1.5 s timed, one median each) under ONNX Runtime as
yolobench runs it and with one setting changed at a time: thread spinning off, denormals as zero, the
worker thread pinned, no memory arena, basic graph optimization, one thread. The settings take turns
(one process each, round robin) so that a slow phase of the machine hits all of them. Per setting: the
medians, and whether they split in two (the largest gap between sorted medians above 15% of the lower
one): how many processes were slow, and each mode's median. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from statistics import median

from yolobench import annotate
from yolobench.timer import machine_info

SETTINGS = {
    "as yolobench runs it": {},
    "no spinning": {"config": {"session.intra_op.allow_spinning": "0"}},
    "denormals as zero": {"config": {"session.set_denormal_as_zero": "1"}},
    "worker pinned to CPU 2": {"config": {"session.intra_op_thread_affinities": "2"}},
    "no memory arena": {"arena": False},
    "basic graph optimization": {"level": "basic"},
    "one thread": {"threads": 1},
}
GAP = 0.15

CHILD = r"""
import json, sys, time
import numpy as np
import onnxruntime as ort
path, setting = sys.argv[1], json.loads(sys.argv[2])
options = ort.SessionOptions()
options.intra_op_num_threads = setting.get("threads", 2)
options.inter_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
options.log_severity_level = 3
if setting.get("arena") is False:
    options.enable_cpu_mem_arena = False
if setting.get("level") == "basic":
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
for key, value in setting.get("config", {}).items():
    options.add_session_config_entry(key, value)
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
inp = session.get_inputs()[0]
x = np.random.default_rng(0).random([d if isinstance(d, int) else 1 for d in inp.shape], dtype=np.float32)
end = time.perf_counter() + 0.5
while time.perf_counter() < end:
    session.run(None, {inp.name: x})
samples, end = [], time.perf_counter() + 1.5
while time.perf_counter() < end or len(samples) < 5:
    t = time.perf_counter(); session.run(None, {inp.name: x}); samples.append((time.perf_counter() - t) * 1000)
print(sorted(samples)[len(samples) // 2])
"""


def modes(values: list[float]) -> str:
    ordered = sorted(values)
    gaps = [(b - a) / a for a, b in zip(ordered, ordered[1:])]
    if not gaps or max(gaps) < GAP:
        return f"one mode (largest gap {max(gaps, default=0):.0%})"
    cut = gaps.index(max(gaps)) + 1
    fast, slow = ordered[:cut], ordered[cut:]
    return (f"two modes: {len(slow)} of {len(ordered)} slow; {median(fast):.2f} vs {median(slow):.2f} ms "
            f"(gap {max(gaps):.0%})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--variant", default="pruned_quant")
    parser.add_argument("--imgsz", type=int, default=None)
    parser.add_argument("--processes", type=int, default=20, help="fresh processes per setting")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    artifact = annotate.load_built(args.variant, args.profile)
    if artifact is None:
        raise SystemExit(f"{args.variant} is not built for profile {args.profile}")
    path = artifact.onnx_path("qdq", args.imgsz)
    medians: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for i in range(args.processes):
        for name, setting in SETTINGS.items():
            done = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(setting)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{name}: {done.stderr.strip()[-400:]}")
            medians[name].append(float(done.stdout.strip()))
        print(f"round {i + 1}/{args.processes}: " + ", ".join(f"{n} {v[-1]:.2f}" for n, v in medians.items()),
              flush=True)
    info = machine_info()
    lines = [f"# ONNX Runtime's INT8 modes: {args.variant} QDQ at {artifact.imgsz if args.imgsz is None else args.imgsz} px",
             "", f"Machine: {info['cpu_model']}, {info['cpu_generation']}, {info['usable_cores']} usable cores", "",
             f"Command: `python results/scripts/ort_modes.py --profile {args.profile} --variant {args.variant} "
             f"--processes {args.processes} --out {args.out}`", "",
             "| setting | median of process medians (ms) | min | max | modes |", "|---|---:|---:|---:|---|"]
    for name, values in medians.items():
        lines.append(f"| {name} | {median(values):.2f} | {min(values):.2f} | {max(values):.2f} | {modes(values)} |")
    lines += ["", "Process medians, in order:", ""]
    lines += [f"- {name}: {', '.join(f'{v:.2f}' for v in values)}" for name, values in medians.items()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
