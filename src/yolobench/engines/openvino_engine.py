"""OpenVINO (CPU plugin).

Runs the QDQ form of a quantized artifact when there is one (OpenVINO's int8 path), else the FP32
graph. Threads: ``INFERENCE_NUM_THREADS`` fixed with the LATENCY performance hint (one stream).

Precision: on CPUs with bf16 support OpenVINO's default ``INFERENCE_PRECISION_HINT`` is bf16, which
would silently run an FP32 graph in bfloat16. Sessions default to ``f32`` so that an FP32 graph is
executed in FP32 (the parity policy assumes it); pass ``precision="bf16"`` to the engine to measure the
other mode. The precision used is recorded in ``describe()``.
"""

from __future__ import annotations

import numpy as np

from yolobench.engines.base import (FORM_FP32, FORM_QDQ, Engine, EngineUnsupported, Geometry, ModelSpec, Session,
                                    first_line)


class OpenVinoSession(Session):
    def __init__(self, compiled, **kwargs):
        super().__init__(**kwargs)
        self._compiled = compiled
        self._request = compiled.create_infer_request()

    def _run(self, images: np.ndarray) -> np.ndarray:
        self._request.infer({0: images})
        return self._request.get_output_tensor(0).data.copy()

    def _extra_info(self):
        info = {}
        for key in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS"):
            try:
                value = self._compiled.get_property(key)
                # ov.Type prints as "<Type: 'float32'>"; its type name is the short one ("f32").
                info[key.lower()] = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
            except Exception:  # noqa: BLE001 (a property this version does not report)
                pass
        return info


class OpenVinoEngine(Engine):
    name = "openvino"
    package = "openvino"
    preferred_forms = (FORM_QDQ, FORM_FP32)

    def __init__(self, precision: str = "f32"):
        self.precision = precision

    def _import(self):
        import openvino  # noqa: PLC0415

        return openvino

    def _load_onnx(self, spec: ModelSpec, form: str, geometry: Geometry, threads: int) -> Session:
        ov = self._import()
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": self.precision}
        try:
            core = ov.Core()
            model = core.read_model(str(spec.path))
            if any(d is None for d in spec.input_shape):
                model.reshape({spec.input_name: list(geometry.input_shape)})
            compiled = core.compile_model(model, "CPU", config)
        except Exception as err:  # noqa: BLE001 (the model passed inspect_onnx: OpenVINO itself refuses it)
            raise EngineUnsupported(f"openvino cannot compile {spec.path.name}: {first_line(err)}") from err
        return OpenVinoSession(compiled, engine=self.name, engine_version=self.version(), form=form,
                               model_path=spec.path, threads=threads, geometry=geometry, nc=spec.nc)
