"""ONNX Runtime (CPU execution provider): the reference engine of the benchmark matrix.

Runs the QDQ form of a quantized artifact when there is one (ORT's fast int8 path), else the FP32
graph. Threads: ``intra_op_num_threads`` fixed, ``inter_op_num_threads`` 1 and sequential execution, so
a session uses exactly the cores it records.

Setting ``onnxruntime-nospin`` turns the intra-op workers' spin-waiting off. Timed at its default (with
spinning, what users get), ONNX Runtime's INT8 graphs run in one of two speeds per *process* on a 2-core
VM: a process whose spinning worker loses its core runs at one thread's speed (measured on Zen 5 at
160 px: 7 of 20 processes at 11.6 ms, 13 at 8.4 ms; one thread 11.9 ms). Without spinning every process
runs at one speed, about 15% slower than the fast mode. A paired A/B comparison asks whether B is slower
than A, not how fast either is, and two modes per process make it need many more pairs for the same
answer, so ``yolobench ab`` users can pick the setting with one mode.
"""

from __future__ import annotations

import numpy as np

from pathlib import Path

from yolobench.engines.base import (FORM_DEEPSPARSE, FORM_FP32, FORM_QDQ, Engine, EngineUnsupported, Geometry,
                                    LayerTime, ModelSpec, Session, first_line)


class OnnxRuntimeSession(Session):
    def __init__(self, ort_session, spec: ModelSpec, *, spinning: bool = True, **kwargs):
        super().__init__(**kwargs)
        self._session = ort_session
        self._spinning = spinning
        self._input_name = spec.input_name
        self._output_name = spec.output_name

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self._session.run([self._output_name], {self._input_name: images})[0]

    def _extra_info(self):
        return {"providers": self._session.get_providers(), "intra_op_spinning": self._spinning}


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"
    package = "onnxruntime"
    preferred_forms = (FORM_QDQ, FORM_FP32)
    # It also runs sparseml's integer graph (ConvInteger/QLinearConv): the reference for every ONNX form.
    accepted_forms = (FORM_QDQ, FORM_FP32, FORM_DEEPSPARSE)
    parity_reference = True
    settings = {"nospin": {"spinning": False}}  # for yolobench ab: one speed per process (module docstring)
    order, color, marker = 1, "#4a4a4a", "s"

    def _import(self):
        import onnxruntime  # noqa: PLC0415

        return onnxruntime

    def __init__(self, spinning: bool = True):
        """``spinning``: ONNX Runtime's default (True) lets idle intra-op workers spin-wait for work."""
        self.spinning = spinning

    def session_options(self, threads: int):
        """The session options every session of this engine is made with."""
        ort = self._import()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: warnings about unused initializers are noise here
        if not self.spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def _load_onnx(self, spec: ModelSpec, form: str, geometry: Geometry, threads: int) -> Session:
        ort = self._import()
        options = self.session_options(threads)
        try:
            session = ort.InferenceSession(str(spec.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 (the model passed inspect_onnx: ORT itself refuses it)
            raise EngineUnsupported(f"onnxruntime cannot load {spec.path.name}: {first_line(err)}") from err
        return OnnxRuntimeSession(session, spec, spinning=self.spinning, engine=self.name,
                                  engine_version=self.version(), form=form, model_path=spec.path, threads=threads,
                                  geometry=geometry, nc=spec.nc)

    def _layer_times(self, spec, geometry, threads, images, runs, warmup):
        """ONNX Runtime's profiler (``enable_profiling``): every node's kernel time, per run."""
        import json
        import os
        import tempfile

        ort = self._import()
        options = self.session_options(threads)
        with tempfile.TemporaryDirectory(prefix="yolobench-ort-profile-") as folder:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(folder, "ort")
            session = ort.InferenceSession(str(spec.path), options, providers=["CPUExecutionProvider"])
            feed = {spec.input_name: images}
            for _ in range(warmup):
                session.run(None, feed)
            # the profile holds every run: keep the kernels of the last `runs` only
            session.run(None, feed)
            for _ in range(runs - 1):
                session.run(None, feed)
            events = json.loads(Path(session.end_profiling()).read_text())
        kernels = [e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")]
        per_run = len(kernels) // (warmup + runs) if kernels else 0
        kernels = kernels[len(kernels) - per_run * runs:]
        totals: dict[str, list] = {}
        for event in kernels:
            node = event["name"][: -len("_kernel_time")]
            args = event.get("args", {})
            entry = totals.setdefault(node, [0.0, args.get("op_name", "?"), args.get("provider", "?")])
            entry[0] += float(event.get("dur", 0)) / 1000.0
        return [LayerTime(name=node, onnx_node=node, op_type=op, ms=total / runs,
                          ran_as=f"{op} on {provider.replace('ExecutionProvider', '')}")
                for node, (total, op, provider) in totals.items()]
