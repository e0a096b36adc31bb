"""How much slower in *time* is ab_power's slower copy? One short `yolobench ab` per cell and share.

    PYTHONPATH=tests:src python results/scripts/ab_power_calibrate.py pruned_quant:qdq:onnxruntime:0.35 pruned:fp32:deepsparse:0.1

Each argument is variant:form:engine:share (smoke store). Prints the extra convolution MACs the copy got
and B/A after at most 10 pairs: enough to pick the share that makes a ~10% slowdown, not a result.
"""
import sys
import tempfile
from pathlib import Path

from _slower_model import slower_copy  # tests/ on PYTHONPATH
from ab_power import compare  # this folder

from yolobench import annotate

with tempfile.TemporaryDirectory() as tmp:
    for spec in sys.argv[1:]:
        variant, form, engine, share = spec.split(":")
        src = annotate.load_built(variant, "smoke").onnx_path(form)
        dst = Path(tmp) / f"{variant}-{form}-{share}.onnx"
        got = slower_copy(src, dst, float(share))
        result = compare(src, dst, engine, ["--max-pairs", "10"])
        print(spec, f"macs+{got:.3f}", f"B/A {result['ratio']:.3f} [{result['low']:.3f}, {result['high']:.3f}] "
              f"after {result['pairs']:.0f} pairs, {result['seconds']:.0f} s", flush=True)
