"""OpenVINO on a model quantized by NNCF: the INT8 a user who picks OpenVINO makes for a dense model.

The `oneshot` variants are SparseML's calibration exported as QDQ ONNX. A user who deploys on OpenVINO
quantizes with NNCF, OpenVINO's own post-training INT8 path, which is also what ultralytics'
`yolo export format=openvino int8=True` runs. This engine does that for an FP32 artifact and runs the
result on OpenVINO at its defaults (as the `openvino` engine does), so that the sparse INT8 variants
are compared with the strongest dense INT8 a user gets, not only with SparseML's.

Quantization, as ultralytics' exporter sets it up for detection models: `nncf.quantize` on the OpenVINO
model converted from the artifact's FP32 ONNX, preset MIXED (symmetric weights, asymmetric
activations), the detection head's box decoding (its Add/Sub/Mul/Div and the DFL) and Sigmoid left in
floating point, calibrated on up to ``CALIBRATION_IMAGES`` training images of the artifact's dataset,
letterboxed to the session's input size as at inference. The quantized IR is cached per (ONNX content,
input size, calibration images, NNCF and OpenVINO versions) under ``$YOLOBENCH_HOME/engine-cache``:
quantizing takes a while (minutes for yolov5s at 640 on 2 cores), loading it again does not.

Its form is ``nncf-int8`` (an OpenVINO IR, not an ONNX file): no other engine runs it, so it is never
compared raw on a shared graph (``same_graph = False``); parity judges it by detections and mAP against
the FP32 model. INT8 variants are not timed here: they are quantized already.

NNCF 3.4 installs beside the pinned set (it changes no pinned package); its ONNX backend does not load
(it needs onnx >= 1.16 for INT4, SparseML pins onnx 1.14.1), which is why the OpenVINO backend is used.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from yolobench.engines.base import (FORM_FP32, EngineNotApplicable, EngineUnsupported, first_line, resolve_geometry,
                                    resolve_onnx)
from yolobench.engines.openvino_engine import OpenVinoEngine, OpenVinoSession
from yolobench.forms import FORM_NNCF
CALIBRATION_IMAGES = 300  # NNCF's default subset size
IR_NAME = "model.xml"


def _versions() -> dict:
    from importlib import metadata  # noqa: PLC0415

    out = {}
    for dist in ("nncf", "openvino"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def calibration_files(artifact) -> list[Path]:
    """The artifact's training images NNCF calibrates on (sorted, the first ``CALIBRATION_IMAGES``)."""
    from yolobench.data import check_dataset  # noqa: PLC0415

    data_yaml = ((getattr(artifact, "meta", None) or {}).get("dataset") or {}).get("data_yaml")
    if not data_yaml or not Path(data_yaml).exists():
        raise EngineNotApplicable("openvino_nncf calibrates on the artifact's training images, and this model "
                                "names none (give a built variant, not a bare ONNX file; with `bench --model`, "
                                "give --data)")
    info = check_dataset(data_yaml, decode_images=False)
    files = sorted(p for d in info.train_dirs for p in d.rglob("*")
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
    return files[:CALIBRATION_IMAGES]


def _head_index(ov_model) -> int | None:
    """The detection head's module index (the largest ``model.N`` in the node names of an ultralytics export)."""
    import re  # noqa: PLC0415

    found = [int(m.group(1)) for op in ov_model.get_ops() for m in [re.search(r"model\.(\d+)", op.get_friendly_name())] if m]
    return max(found) if found else None


def quantize_ir(onnx_path: Path, imgsz: tuple[int, int], files: list[Path], out_dir: Path) -> Path:
    """Quantize the FP32 ONNX with NNCF into ``out_dir``/model.xml (atomically: a complete folder or none)."""
    import nncf  # noqa: PLC0415
    import openvino as ov  # noqa: PLC0415

    from yolobench.processing import load_images, preprocess  # noqa: PLC0415

    model = ov.Core().read_model(str(onnx_path))
    head = _head_index(model)
    ignored = None
    if head is not None:  # the box decoding and the class sigmoid stay in floating point
        decode = [rf".*/model\.{head}/{op}(_\d+)?$" for op in ("Add", "Sub", "Mul", "Div")]  # not the convs' SiLU
        ignored = nncf.IgnoredScope(patterns=[*decode, rf".*/model\.{head}/dfl/.*"], types=["Sigmoid"],
                                    validate=False)
    images = [image for _, image in load_images(files)]
    dataset = nncf.Dataset(images, lambda image: preprocess([image], imgsz)[0])
    quantized = nncf.quantize(model, dataset, preset=nncf.QuantizationPreset.MIXED, subset_size=len(images),
                              ignored_scope=ignored)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    ov.save_model(quantized, str(partial / IR_NAME))
    (partial / "nncf.json").write_text(json.dumps({"onnx": str(onnx_path), "imgsz": list(imgsz),
                                                   "calibration_images": len(images), "preset": "mixed",
                                                   "head_ignored": head, "versions": _versions()}, indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    return out_dir / IR_NAME


def cached_ir(onnx_path: Path, imgsz: tuple[int, int], files: list[Path]) -> Path:
    """The quantized IR for this ONNX, size and calibration set: from the cache, or made now (locked)."""
    from filelock import FileLock  # noqa: PLC0415

    from yolobench import paths  # noqa: PLC0415

    digest = hashlib.sha256()
    with open(onnx_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(json.dumps({"imgsz": list(imgsz), "files": [p.name for p in files], "preset": "mixed",
                              "versions": _versions()}, sort_keys=True).encode())
    root = paths.home() / "engine-cache" / "openvino_nncf"
    folder = root / digest.hexdigest()[:20]
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / IR_NAME).exists():
            quantize_ir(onnx_path, imgsz, files, folder)
    return folder / IR_NAME


class OpenVinoNncfEngine(OpenVinoEngine):
    name = "openvino_nncf"
    package = "nncf"
    preferred_forms = (FORM_FP32,)  # what it quantizes; what it runs is the IR it made (form nncf-int8)
    order, color, marker = 4, "#cab2d6", "v"
    fp32_options = None  # it runs at OpenVINO's defaults; nothing to pin for a graph it made itself
    same_graph = False
    untimed_quantized = ("an INT8 variant is quantized already; NNCF quantizes FP32 models (the INT8 "
                         "variant's own cells on openvino time it)")

    def __init__(self):
        super().__init__(precision=None)

    def version(self) -> str:
        v = _versions()
        return f"{v['openvino'] or 'not installed'} + nncf {v['nncf'] or 'not installed'}"

    def installed(self) -> bool:
        return all(_versions().values())  # NNCF and the OpenVINO it runs on

    def _import(self):
        import nncf  # noqa: F401, PLC0415

        return super()._import()

    def _quantized(self, model, batch: int, imgsz, form: str | None):
        """(ONNX spec, geometry, the NNCF IR) for an FP32 artifact; EngineUnsupported for anything else."""
        if form not in (None, FORM_FP32, FORM_NNCF):
            raise EngineNotApplicable(f"openvino_nncf quantizes the FP32 graph itself, not a {form} form")
        if getattr(model, "quantized", False):
            raise EngineNotApplicable(self.untimed_quantized)
        spec, _ = resolve_onnx(model, (FORM_FP32,), FORM_FP32, imgsz)
        geometry = resolve_geometry(spec, batch, imgsz)
        return spec, geometry, cached_ir(spec.path, geometry.imgsz, calibration_files(model))

    def _load(self, model, *, batch: int, threads: int, imgsz, form: str | None):
        spec, geometry, ir = self._quantized(model, batch, imgsz, form)
        ov = self._import()
        try:
            core = ov.Core()
            quantized = core.read_model(str(ir))
            if geometry.batch != 1:
                quantized.reshape({quantized.inputs[0].get_any_name(): list(geometry.input_shape)})
            compiled = core.compile_model(quantized, "CPU", self.compile_config(threads))
        except Exception as err:  # noqa: BLE001
            raise EngineUnsupported(f"openvino cannot compile the NNCF model of {spec.path.name}: {first_line(err)}") from err
        return OpenVinoSession(compiled, pinned_precision=None, engine=self.name, engine_version=self.version(),
                               form=FORM_NNCF, model_path=ir.with_suffix(".bin"), threads=threads,
                               geometry=geometry, nc=spec.nc)

    def layer_profile(self, model, *, imgsz=None, threads=None, runs: int = 20, warmup: int = 5, form=None):
        """OpenVINO's performance counters on the NNCF model (the form it ran: ``nncf-int8``)."""
        from yolobench.engines.base import default_threads  # noqa: PLC0415

        ok, reason = self.available()
        if not ok:
            raise EngineUnsupported(reason)
        threads = default_threads() if threads is None else int(threads)
        _, geometry, ir = self._quantized(model, 1, imgsz, form)
        core = self._import().Core()
        images = np.random.default_rng(0).random(geometry.input_shape, dtype=np.float32)
        return self._perf_counters(core, core.read_model(str(ir)), threads, images, runs, warmup), FORM_NNCF
