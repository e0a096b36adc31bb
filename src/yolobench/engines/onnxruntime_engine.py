"""ONNX Runtime (CPU execution provider): the reference engine of the benchmark matrix.

Runs the QDQ form of a quantized artifact when there is one (ORT's fast int8 path), else the FP32
graph. Threads: ``intra_op_num_threads`` fixed, ``inter_op_num_threads`` 1 and sequential execution, so
a session uses exactly the cores it records.
"""

from __future__ import annotations

import numpy as np

from yolobench.engines.base import (FORM_DEEPSPARSE, FORM_FP32, FORM_QDQ, Engine, EngineUnsupported, Geometry,
                                    ModelSpec, Session, first_line)


class OnnxRuntimeSession(Session):
    def __init__(self, ort_session, spec: ModelSpec, **kwargs):
        super().__init__(**kwargs)
        self._session = ort_session
        self._input_name = spec.input_name
        self._output_name = spec.output_name

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self._session.run([self._output_name], {self._input_name: images})[0]

    def _extra_info(self):
        return {"providers": self._session.get_providers()}


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"
    package = "onnxruntime"
    preferred_forms = (FORM_QDQ, FORM_FP32)
    # It also runs sparseml's integer graph (ConvInteger/QLinearConv): the reference for every ONNX form.
    accepted_forms = (FORM_QDQ, FORM_FP32, FORM_DEEPSPARSE)
    parity_reference = True
    order, color, marker = 1, "#4a4a4a", "s"

    def _import(self):
        import onnxruntime  # noqa: PLC0415

        return onnxruntime

    def _load_onnx(self, spec: ModelSpec, form: str, geometry: Geometry, threads: int) -> Session:
        ort = self._import()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: warnings about unused initializers are noise here
        try:
            session = ort.InferenceSession(str(spec.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 (the model passed inspect_onnx: ORT itself refuses it)
            raise EngineUnsupported(f"onnxruntime cannot load {spec.path.name}: {first_line(err)}") from err
        return OnnxRuntimeSession(session, spec, engine=self.name, engine_version=self.version(), form=form,
                                  model_path=spec.path, threads=threads, geometry=geometry, nc=spec.nc)
