"""OpenVINO (CPU plugin).

Runs the QDQ form of a quantized artifact when there is one (OpenVINO's int8 path), else the FP32
graph. Threads: ``INFERENCE_NUM_THREADS`` fixed with the LATENCY performance hint (one stream), as for
every engine.

Precision: by default a session runs at OpenVINO's own default ``INFERENCE_PRECISION_HINT``, which is
what a user who loads the model with OpenVINO gets: bf16 on CPUs with bf16 support (AVX-512 BF16,
AMX), f32 elsewhere. Timing it pinned to f32 would benchmark a setting its users do not run: on the
2-core AMD EPYC (Zen 5, AVX-512 BF16) of this project the same 640-px files ran dense FP32 graph
71.0 ms pinned f32 vs 35.5 ms at the default, one-shot INT8 QDQ graph 44.8 vs 34.7 ms. bf16 changes
the numbers a little (8 bits of significand), so the parity policy judges a bf16 session by its
detections and mAP (``POLICY.bf16``) and checks the graph itself on a session pinned to f32:
``OpenVinoEngine(precision="f32")`` (or ``engines.get("openvino", precision="f32")``). On quantized graphs
that f32 session is judged by detections too (``POLICY.int8_kernels``): its integer kernels round
requantization ties elsewhere than ONNX Runtime (``int8_raw_parity`` below).

The precision a session actually computes in is read back from the compiled model and recorded in
``describe()`` (``inference_precision_hint``, with ``inference_precision_source``: pinned or the
OpenVINO default); ``Session.reduced_precision`` carries it to the parity policy.
"""

from __future__ import annotations

import numpy as np

from yolobench.engines.base import (FORM_FP32, FORM_QDQ, Engine, EngineUnsupported, Geometry, LayerTime, ModelSpec,
                                    Session, first_line)
from yolobench.errors import UserError

PRECISIONS = ("f32", "bf16", "f16")  # values of INFERENCE_PRECISION_HINT a caller may pin
REDUCED_PRECISIONS = ("bf16", "f16")  # floating-point precisions below f32


def _type_name(value) -> str:
    """ov.Type prints as "<Type: 'float32'>"; its type name is the short one ("f32")."""
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


class OpenVinoSession(Session):
    def __init__(self, compiled, *, pinned_precision: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self.pinned_precision = pinned_precision
        try:
            self.precision = _type_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
        except Exception:  # noqa: BLE001 (a version that does not report it computes in what was asked, or f32)
            self.precision = pinned_precision or "f32"
        self.reduced_precision = self.precision if self.precision in REDUCED_PRECISIONS else None

    def _run(self, images: np.ndarray) -> np.ndarray:
        self._request.infer({0: images})
        return self._request.get_output_tensor(0).data.copy()

    def _extra_info(self):
        info = {}
        for key in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS"):
            try:
                info[key.lower()] = _type_name(self._compiled.get_property(key))
            except Exception:  # noqa: BLE001 (a property this version does not report)
                pass
        info["inference_precision_hint"] = self.precision  # effective: the compiled model's, not the request
        info["inference_precision_source"] = "pinned" if self.pinned_precision else "openvino default"
        return info


class OpenVinoEngine(Engine):
    name = "openvino"
    package = "openvino"
    preferred_forms = (FORM_QDQ, FORM_FP32)
    order, color, marker = 3, "#6a3d9a", "^"
    # Its CPU default computes in bf16 where the CPU has it (timed so: what a user gets); parity also
    # pins f32 to check the graph itself on raw tensors.
    fp32_options = {"precision": "f32"}
    # Its CPU plugin fuses each DequantizeLinear -> float ops -> QuantizeLinear chain into one integer
    # kernel: rounding ties fall elsewhere than in ONNX Runtime, and on some trained graphs the flips grow
    # past any raw bound (AMD Zen 4, the one-shot INT8 yolov5n at 640 px: max |score difference| 0.215,
    # while a float64 recomputation of single convolutions from each engine's own input agreed with both
    # engines except at ties). Quantized graphs are judged by detections and mAP.
    int8_raw_parity = False

    def __init__(self, precision: str | None = None):
        """``precision``: None runs at OpenVINO's default (what users get); "f32" (or "bf16", "f16") pins it."""
        if precision is not None and precision not in PRECISIONS:
            raise UserError(f"openvino precision must be one of {', '.join(PRECISIONS)} (or unset for "
                            f"OpenVINO's default), got {precision!r}")
        self.precision = precision

    def compile_config(self, threads: int) -> dict:
        """The CPU plugin's configuration: threads and latency hint always, the precision only when pinned."""
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        if self.precision is not None:
            config["INFERENCE_PRECISION_HINT"] = self.precision
        return config

    def _import(self):
        import openvino  # noqa: PLC0415

        return openvino

    def _load_onnx(self, spec: ModelSpec, form: str, geometry: Geometry, threads: int) -> Session:
        ov = self._import()
        try:
            core = ov.Core()
            model = core.read_model(str(spec.path))
            if any(d is None for d in spec.input_shape):
                model.reshape({spec.input_name: list(geometry.input_shape)})
            compiled = core.compile_model(model, "CPU", self.compile_config(threads))
        except Exception as err:  # noqa: BLE001 (the model passed inspect_onnx: OpenVINO itself refuses it)
            raise EngineUnsupported(f"openvino cannot compile {spec.path.name}: {first_line(err)}") from err
        return OpenVinoSession(compiled, pinned_precision=self.precision, engine=self.name,
                               engine_version=self.version(), form=form, model_path=spec.path, threads=threads,
                               geometry=geometry, nc=spec.nc)

    def _layer_times(self, spec, geometry, threads, images, runs, warmup):
        """OpenVINO's performance counters (``PERF_COUNT``): each executed node's time and the kernel it
        ran (``exec_type``, e.g. ``brgconv_avx512_amx_I8`` or ``jit_avx512_bf16``), at this engine's
        settings (its default precision unless pinned)."""
        ov = self._import()
        core = ov.Core()
        model = core.read_model(str(spec.path))
        if any(d is None for d in spec.input_shape):
            model.reshape({spec.input_name: list(geometry.input_shape)})
        return self._perf_counters(core, model, threads, images, runs, warmup)

    def _perf_counters(self, core, model, threads, images, runs, warmup) -> list[LayerTime]:
        compiled = core.compile_model(model, "CPU", {**self.compile_config(threads), "PERF_COUNT": True})
        request = compiled.create_infer_request()
        # The plugin names fused nodes after one of their parts ("Multiply_22247"); its runtime model
        # lists the ONNX nodes each one holds (rt_info originalLayersNames): map to the first of them.
        original: dict[str, str] = {}
        for op in compiled.get_runtime_model().get_ops():
            info = op.get_rt_info()
            if "originalLayersNames" in info:
                names = str(info["originalLayersNames"].astype(str) if hasattr(info["originalLayersNames"], "astype")
                            else info["originalLayersNames"])
                original[op.get_friendly_name()] = next((n for n in names.split(",") if "model." in n),
                                                        names.split(",")[0])
        for _ in range(warmup):
            request.infer({0: images})
        totals: dict[str, list] = {}
        for _ in range(runs):
            request.infer({0: images})
            for info in request.get_profiling_info():
                if str(info.status).endswith("NOT_RUN"):
                    continue
                entry = totals.setdefault(info.node_name, [0.0, info.node_type, info.exec_type])
                entry[0] += info.real_time.total_seconds() * 1000.0
        return [LayerTime(name=name, onnx_node=original.get(name, name), op_type=node_type, ms=total / runs,
                          ran_as=exec_type) for name, (total, node_type, exec_type) in totals.items()]
