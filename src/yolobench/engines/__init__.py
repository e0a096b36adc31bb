"""The engine registry: ``get(name)`` returns the engine behind the common protocol (see ``base``).

Engines are found, not listed: every ``yolobench/engines/*_engine.py`` module's :class:`Engine`
subclasses, plus the modules named in ``YOLOBENCH_EXTRA_ENGINES`` (comma-separated importable module
names: an engine kept outside this package). Each engine class declares its own traits (forms, order,
colours, whether it can abort the process, reports fallback, pins FP32, is the parity reference);
everything else asks the functions here. Adding an engine is adding one module. Importing this
package, or listing engines, imports no runtime (engine modules import theirs when first loaded).
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil

from yolobench.engines.base import (FORM_DEEPSPARSE, FORM_FP32, FORM_QDQ, FORM_TORCH, ONNX_FORMS, PINNED_FP32,
                                    Engine, EngineNotApplicable, EngineUnsupported, ModelSpec, Session,
                                    default_threads, inspect_onnx)
from yolobench.errors import UserError

EXTRA_ENGINES_ENV = "YOLOBENCH_EXTRA_ENGINES"
PINNED_FP32_SUFFIX = "-" + PINNED_FP32  # "openvino-f32"
_MODULE_SUFFIX = "_engine"


@functools.lru_cache(maxsize=8)
def _load(modules: tuple[str, ...]) -> dict[str, type[Engine]]:
    found: dict[str, type[Engine]] = {}
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise UserError(f"engine module {module_name!r} (from {EXTRA_ENGINES_ENV} or yolobench.engines) "
                            f"cannot be imported: {err}") from None
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, Engine) and obj.__module__ == module.__name__
                    and obj.name):
                if obj.name in found and found[obj.name] is not obj:
                    raise UserError(f"two engines are called {obj.name!r}: {found[obj.name].__module__} and "
                                    f"{module_name}")
                found[obj.name] = obj
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def _classes() -> dict[str, type[Engine]]:
    builtin = sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if m.name.endswith(_MODULE_SUFFIX))
    extra = [m.strip() for m in os.environ.get(EXTRA_ENGINES_ENV, "").split(",") if m.strip()]
    return _load(tuple(builtin + extra))


def engine_names() -> tuple[str, ...]:
    """Every engine, in display order (each engine's ``order``)."""
    return tuple(_classes())


def onnx_engine_names() -> tuple[str, ...]:
    """The engines that run ONNX files."""
    return tuple(n for n, cls in _classes().items() if any(f in ONNX_FORMS for f in cls.forms()))


def engine_class(name: str) -> type[Engine]:
    """The class of engine ``name``; :class:`UserError` naming the choices for an unknown one."""
    classes = _classes()
    if name not in classes:
        raise UserError(f"unknown engine {name!r}: choose from {', '.join(classes)}")
    return classes[name]


def trait(name: str, attribute: str, default=None):
    """An engine's trait, or ``default`` for a name no installed engine has (an old run file's)."""
    cls = _classes().get(name)
    return getattr(cls, attribute) if cls is not None else default


def get(name: str, **options) -> Engine:
    """The engine called ``name``; ``options`` go to its constructor."""
    return engine_class(name)(**options)


def get_pinned_fp32(name: str) -> Engine:
    """The engine called ``name`` with its arithmetic pinned to FP32 (its ``fp32_options``)."""
    return get(name, **(engine_class(name).fp32_options or {}))


def base_name(label: str) -> str:
    """The engine a setting label names: ``openvino-f32`` -> ``openvino``; an engine's own name as it is."""
    return label if label in _classes() else label.rpartition("-")[0]


def get_setting(label: str) -> Engine:
    """``name`` (the user's default), ``name-f32`` (pinned to FP32, for an engine with ``fp32_options``) or
    ``name-<setting>`` (one of the engine's named ``settings``)."""
    classes = _classes()
    if label in classes:
        return get(label)
    base, setting = base_name(label), label.rpartition("-")[2]
    if base in classes:
        named = engine_class(base).named_settings()
        if setting in named:
            return get(base, **named[setting])
        known = ", ".join([base, *(f"{base}-{s}" for s in named)])
        raise UserError(f"engine {base!r} has no setting {setting!r}: choose from {known}")
    return get(label)  # names the engines to choose from


def parity_reference() -> str:
    """The engine every other one is compared with on the same graph."""
    refs = [n for n, cls in _classes().items() if cls.parity_reference]
    if len(refs) != 1:
        raise UserError(f"exactly one engine must be the parity reference, found {refs or 'none'}")
    return refs[0]


def same_graph_pairs(form: str) -> list[tuple[str, str]]:
    """(reference, other) settings compared on one ONNX ``form``: every other engine that loads the form,
    its FP32-pinned setting first where it has one (raw tensors), then its default (detections)."""
    reference = parity_reference()
    if form not in engine_class(reference).forms():
        return []
    pairs = []
    for name, cls in _classes().items():
        if name == reference or form not in cls.forms() or not cls.same_graph:
            continue
        if cls.fp32_options:
            pairs.append((reference, name + PINNED_FP32_SUFFIX))
        pairs.append((reference, name))
    return pairs


def int8_raw_parity(*names: str) -> bool:
    """Whether raw tensors may decide a same-graph comparison of engines ``names`` on a quantized graph:
    every one rounds its integer arithmetic like the reference (``Engine.int8_raw_parity``). A name may
    carry a setting (``openvino-f32``); a name no engine has (an old run file's) counts as rounding alike."""
    return all(trait(base_name(name), "int8_raw_parity", True) for name in names)


def all_engines() -> list[Engine]:
    return [get(name) for name in engine_names()]


__all__ = ["Engine", "EngineNotApplicable", "EngineUnsupported", "ModelSpec", "Session", "get", "all_engines", "engine_names",
           "onnx_engine_names", "engine_class", "trait", "get_pinned_fp32", "get_setting", "parity_reference",
           "same_graph_pairs", "int8_raw_parity", "PINNED_FP32_SUFFIX", "EXTRA_ENGINES_ENV", "default_threads", "inspect_onnx",
           "FORM_FP32", "FORM_QDQ", "FORM_DEEPSPARSE", "FORM_TORCH"]
