"""The engine registry: ``get(name)`` returns the engine behind the common protocol (see ``base``).

Adding an engine is adding one module with an :class:`~yolobench.engines.base.Engine` subclass and
one line in ``_MODULES``. Importing this package imports no runtime.
"""

from __future__ import annotations

import importlib

from yolobench.engines.base import (FORM_DEEPSPARSE, FORM_FP32, FORM_QDQ, FORM_TORCH, Engine, EngineUnsupported,
                                    ModelSpec, Session, default_threads, inspect_onnx)
from yolobench.errors import UserError

ENGINE_NAMES = ("torch", "onnxruntime", "deepsparse", "openvino")
ONNX_ENGINE_NAMES = ("onnxruntime", "deepsparse", "openvino")

_MODULES = {
    "torch": ("yolobench.engines.torch_engine", "TorchEngine"),
    "onnxruntime": ("yolobench.engines.onnxruntime_engine", "OnnxRuntimeEngine"),
    "deepsparse": ("yolobench.engines.deepsparse_engine", "DeepSparseEngine"),
    "openvino": ("yolobench.engines.openvino_engine", "OpenVinoEngine"),
}


def get(name: str, **options) -> Engine:
    """The engine called ``name`` (one of ``ENGINE_NAMES``); ``options`` go to its constructor."""
    if name not in _MODULES:
        raise UserError(f"unknown engine {name!r}: choose from {', '.join(ENGINE_NAMES)}")
    module_name, class_name = _MODULES[name]
    return getattr(importlib.import_module(module_name), class_name)(**options)


# Options that pin an engine whose default may compute below FP32 to FP32 (OpenVINO: bf16 on CPUs that
# have it). Engines are timed at their defaults (what a user gets); parity also runs these settings to
# check the graph itself on raw tensors. An engine not listed computes in FP32 as it is.
FP32_PINNING = {"openvino": {"precision": "f32"}}
PINNED_FP32_SUFFIX = "-f32"  # "openvino-f32": the label of such a setting in parity tables and test ids


def get_pinned_fp32(name: str) -> Engine:
    """The engine called ``name`` with its precision pinned to FP32 (see ``FP32_PINNING``)."""
    return get(name, **FP32_PINNING.get(name, {}))


def get_setting(label: str) -> Engine:
    """``name`` (the user's default) or ``name-f32`` (pinned to FP32, for an engine in ``FP32_PINNING``)."""
    base = label[: -len(PINNED_FP32_SUFFIX)] if label.endswith(PINNED_FP32_SUFFIX) else None
    if base in FP32_PINNING:
        return get_pinned_fp32(base)
    return get(label)


def all_engines() -> list[Engine]:
    return [get(name) for name in ENGINE_NAMES]


__all__ = ["ENGINE_NAMES", "ONNX_ENGINE_NAMES", "Engine", "EngineUnsupported", "ModelSpec", "Session", "get",
           "all_engines", "get_pinned_fp32", "get_setting", "FP32_PINNING", "PINNED_FP32_SUFFIX", "default_threads",
           "inspect_onnx", "FORM_FP32", "FORM_QDQ", "FORM_DEEPSPARSE", "FORM_TORCH"]
