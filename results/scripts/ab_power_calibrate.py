"""How much slower in *time* is ab_power's slower copy? One short `yolobench ab` per cell and share.

    PYTHONPATH=tests:src python results/scripts/ab_power_calibrate.py pruned_quant:qdq:onnxruntime:0.35 pruned:fp32:deepsparse:0.1

Each argument is variant:form:engine:share (smoke store). Prints the extra convolution MACs the copy got
and B/A after at most 10 pairs: enough to pick the share that makes a ~10% slowdown, not a result.
"""
import subprocess, sys, re
from pathlib import Path
from _slower_model import slower_copy
from yolobench import annotate
out = Path("/tmp/calib"); out.mkdir(exist_ok=True)
for spec in sys.argv[1:]:
    variant, form, engine, share = spec.split(":")
    src = annotate.load_built(variant, "smoke").onnx_path(form)
    dst = out / f"{variant}-{form}-{share}.onnx"
    got = slower_copy(src, dst, float(share))
    r = subprocess.run([sys.executable, "-m", "yolobench", "ab", "--a", str(src), "--b", str(dst), "--engine", engine,
                        "--quiet", "--max-pairs", "10"], capture_output=True, text=True)
    line = [l for l in r.stdout.splitlines() if "B/A" in l]
    print(spec, f"macs+{got:.3f}", line[-1] if line else r.stderr[-300:], flush=True)
