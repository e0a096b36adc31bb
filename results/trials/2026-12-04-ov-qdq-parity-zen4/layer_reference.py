"""One convolution of a QDQ graph on ONNX Runtime and OpenVINO (f32) against a float64 reference of the ONNX semantics.

    python layer_reference.py MODEL.qdq.onnx TENSOR

TENSOR is the output of a QuantizeLinear fed by Conv -> Div -> BatchNormalization (the one-shot yolov5n's
pattern after each convolution). Both engines run the two photos shipped with ultralytics at 640 px with the
convolution's quantized input and TENSOR exposed; the reference dequantizes each engine's own input, runs the
convolution, the Div and the BatchNormalization in float64 and quantizes (round half to even). Printed: how many
output elements of each engine differ from the reference, and how far those elements' exact values lie from a
rounding tie: an engine that implements the layer right differs only at ties.
Research script of results/trials/2026-12-04-ov-qdq-parity-zen4/ (not part of the library).
"""
import numpy as np, onnx, torch, sys, tempfile
from onnx import numpy_helper, helper
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import locate_divergence as L
from yolobench.processing import default_images, load_images, preprocess
path = Path(sys.argv[1]); target = sys.argv[2]
m = onnx.load(str(path))
inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
prod = {o: n for n in m.graph.node for o in n.output}
def c(name): return inits[name] if name in inits else numpy_helper.to_array(prod[name].attribute[0].t)
q = prod[target]; bn = prod[q.input[0]]; div = prod[bn.input[0]]; conv = prod[div.input[0]]
dqx = prod[conv.input[0]]; dqw = prod[conv.input[1]]; qx = prod[dqx.input[0]]
print([n.op_type for n in (q, bn, div, conv, dqx, dqw, qx)])
qw = prod.get(dqw.input[0])
if qw is not None and qw.op_type == "QuantizeLinear":
    wf = c(qw.input[0]).astype(np.float64); ws = c(qw.input[1]).astype(np.float64); wz = c(qw.input[2]).astype(np.int32)
    sh = (-1,) + (1,) * (wf.ndim - 1)
    wi = np.clip(np.rint(wf / ws.reshape(sh)) + wz.reshape(sh), -128, 127)
else:
    wi = c(dqw.input[0]).astype(np.float64); ws = c(dqw.input[1]).astype(np.float64); wz = c(dqw.input[2]); sh = (-1,1,1,1)
w = (wi - np.reshape(wz, sh)) * np.reshape(c(dqw.input[1]).astype(np.float64), sh)
bias = c(conv.input[2]).astype(np.float64) if len(conv.input) > 2 else None
xs, xz = float(c(dqx.input[1])), int(c(dqx.input[2]))
ys, yz = float(c(q.input[1])), int(c(q.input[2]))
dv = c(div.input[1]).astype(np.float64)
g, b_, mu, var = (c(n).astype(np.float64) for n in bn.input[1:5])
eps = next((helper.get_attribute_value(a) for a in bn.attribute if a.name == "epsilon"), 1e-5)
at = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
ims = [im for _, im in load_images(default_images())]
batches = [np.ascontiguousarray(preprocess([im], 640)[0], dtype=np.float32) for im in ims]
e = onnx.ModelProto(); e.CopyFrom(m)
dt = lambda n: onnx.TensorProto.INT8 if c(prod[n].input[2]).dtype == np.int8 else onnx.TensorProto.UINT8
for n in (qx.output[0], target): e.graph.output.append(helper.make_tensor_value_info(n, dt(n), None))
with tempfile.TemporaryDirectory() as t:
    p = Path(t) / "e.onnx"; onnx.save(e, str(p)); names = [qx.output[0], target]
    a = L._run_ort(p, batches, names); o = L._run_ov(p, batches, names)
def ref(xq):
    x = (xq.astype(np.float64) - xz) * xs
    y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), None if bias is None else torch.from_numpy(bias),
        stride=at.get("strides", [1, 1]), padding=at.get("pads", [0, 0, 0, 0])[:2], groups=at.get("group", 1)).numpy()
    y = y / dv.reshape((-1, 1, 1) if dv.ndim else ()) if dv.ndim else y / dv
    y = (y - mu.reshape(-1, 1, 1)) / np.sqrt(var.reshape(-1, 1, 1) + eps) * g.reshape(-1, 1, 1) + b_.reshape(-1, 1, 1)
    v = y / ys + yz
    info = np.iinfo(np.int8 if c(q.input[2]).dtype == np.int8 else np.uint8)
    return np.clip(np.rint(v), info.min, info.max), v
print("input elements that differ:", int((a[0] != o[0]).sum()), "of", a[0].size)
for label, x_in, y in (("ORT", a[0], a[1]), ("OpenVINO", o[0], o[1])):
    r, v = ref(x_in)
    d = np.abs(r - y.astype(np.float64))
    far = np.abs(v - np.floor(v) - 0.5)
    print(f"{label}: vs float64 reference: {int((d == 1).sum())} one step, {int((d > 1).sum())} more, of {d.size};"
          f" of those one-step, distance of the exact value from a tie: max {far[d == 1].max() if (d == 1).any() else 0:.2e}")
