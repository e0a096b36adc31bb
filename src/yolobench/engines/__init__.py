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


def all_engines() -> list[Engine]:
    return [get(name) for name in ENGINE_NAMES]


__all__ = ["ENGINE_NAMES", "ONNX_ENGINE_NAMES", "Engine", "EngineUnsupported", "ModelSpec", "Session", "get",
           "all_engines", "default_threads", "inspect_onnx", "FORM_FP32", "FORM_QDQ", "FORM_DEEPSPARSE",
           "FORM_TORCH"]
