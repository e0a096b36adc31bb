"""Datasets: the deterministic built-in (synthetic) dataset and validation of any YOLO-format dataset.

- :func:`builtin_dataset` -- the ``data.yaml`` of the cached built-in dataset (generated on first use).
- :func:`synthesize` -- write a synthetic dataset into a folder (``yolobench data synth``).
- :func:`check_dataset` -> :class:`DatasetInfo` -- validate a ``data.yaml`` and hash its content
  (``yolobench data check``).

Attributes are imported on first use, so ``import yolobench.data`` stays cheap (no OpenCV, no Pillow).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "builtin_dataset": "builtin",
    "builtin_dir": "builtin",
    "SMOKE_TRAIN": "builtin",
    "SMOKE_VAL": "builtin",
    "SMOKE_IMGSZ": "builtin",
    "synthesize": "synth",
    "render_image": "synth",
    "DOMAIN_NAMES": "synth",
    "GENERATOR_VERSION": "synth",
    "check_dataset": "check",
    "DatasetInfo": "check",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'yolobench.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"yolobench.data.{module}"), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
