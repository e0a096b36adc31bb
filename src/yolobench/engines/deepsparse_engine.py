"""DeepSparse (Neural Magic): the engine that turns sparsity and INT8 into speed on CPUs.

Runs sparseml's converted integer form (``ConvInteger``/``QLinearConv``) of a quantized artifact when
there is one, else the FP32 graph. Records ``fraction_of_supported_ops``: below 1.0 part of the graph
runs in DeepSparse's bundled ONNX Runtime fallback and a latency means something else.
Threads: ``num_cores`` (DeepSparse schedules one thread per core).
"""

from __future__ import annotations

import numpy as np

from yolobench.engines.base import (FORM_DEEPSPARSE, FORM_FP32, Engine, EngineUnsupported, Geometry, LayerTime,
                                    ModelSpec, Session, first_line)


class DeepSparseSession(Session):
    def __init__(self, ds_engine, **kwargs):
        super().__init__(**kwargs)
        self._engine = ds_engine
        self.fraction_of_supported_ops = float(ds_engine.fraction_of_supported_ops)

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self._engine.run([images], val_inp=False)[0]

    def _extra_info(self):
        return {"num_cores": self._engine.num_cores, "cpu_avx_type": self._engine.cpu_avx_type,
                "cpu_vnni": bool(self._engine.cpu_vnni)}


class DeepSparseEngine(Engine):
    name = "deepsparse"
    package = "deepsparse"
    preferred_forms = (FORM_DEEPSPARSE, FORM_FP32)
    order, color, marker = 2, "#1f77b4", "D"
    # DeepSparse 1.8 failed an assertion (fold_elementwise.cpp:47) compiling a tiny-profile pruned_quant
    # graph and exited the process: benchmarks load its cells in a child process first.
    can_abort_process = True
    # Operators it has no kernel for run in ONNX Runtime inside it; it reports the share it ran itself.
    reports_fallback = True

    def _import(self):
        import deepsparse  # noqa: PLC0415 (slow import, ~3 s: only when asked for)

        return deepsparse

    def _load_onnx(self, spec: ModelSpec, form: str, geometry: Geometry, threads: int) -> Session:
        deepsparse = self._import()
        dynamic = any(d is None for d in spec.input_shape)
        try:
            ds_engine = deepsparse.Engine(
                model=str(spec.path), batch_size=geometry.batch, num_cores=threads,
                input_shapes=[list(geometry.input_shape)] if dynamic else None,
            )
        except Exception as err:  # noqa: BLE001 (the model passed inspect_onnx: DeepSparse itself refuses it)
            raise EngineUnsupported(f"deepsparse cannot compile {spec.path.name}: {first_line(err)}") from err
        return DeepSparseSession(ds_engine, engine=self.name, engine_version=self.version(), form=form,
                                 model_path=spec.path, threads=threads, geometry=geometry, nc=spec.nc)

    def _layer_times(self, spec, geometry, threads, images, runs, warmup):
        """DeepSparse's own analysis (``DebugAnalysisEngine.analyze``): each layer it scheduled, its mean
        time, the kernel's sparsity and bits per weight (8: INT8), the FLOPs it counts, and the ONNX
        node it starts from (``canonical_name``). Layers it could not run natively are not in its
        own kernels: their time is the gap between the layers' sum and its total."""
        from deepsparse.engine import DebugAnalysisEngine  # noqa: PLC0415

        dynamic = any(d is None for d in spec.input_shape)
        engine = DebugAnalysisEngine(str(spec.path), batch_size=1, num_cores=threads, num_iterations=runs,
                                     num_warmup_iterations=warmup,
                                     input_shapes=[list(geometry.input_shape)] if dynamic else None)
        info = engine.analyze([images])
        layers = []
        for layer in info.get("layer_info", []):
            node = layer.get("canonical_name")
            bits = layer.get("kernel_bits_per_ele") or 0
            kind = str(layer.get("name", "?")).rsplit("_", 1)[0]  # "ks_convolution-74.9%": kernel-sparse
            ran_as = kind + (f", {bits:g}-bit weights" if bits else "")
            layers.append(LayerTime(name=layer.get("name", "?"), onnx_node=None if node in (None, "<none>") else node,
                                    op_type=kind, ms=float(layer.get("average_run_time_in_ms", 0.0)),
                                    ran_as=ran_as, flops=float(layer.get("required_flops") or 0) or None))
        total = float(info.get("average_total_time") or 0.0)
        gap = total - sum(l.ms for l in layers)
        if gap > 0:
            layers.append(LayerTime(name="(outside the analysed layers)", onnx_node=None, op_type="other", ms=gap,
                                    ran_as="DeepSparse total minus its layers: scheduling, fallback"))
        return layers
