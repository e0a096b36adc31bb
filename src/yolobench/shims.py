"""Every workaround for a third-party bug, in one place.

SparseML 1.8 (end of life, 2025) was written for torch <= 2.1 and ultralytics 8.0. On torch 2.14 and
ultralytics 8.4 it needs the shims below (each found by running them together; the shim's docstring says what broke). Each shim has:

- a comment saying why it exists,
- a ``*_needed()`` probe that returns True while the upstream bug is still there, and
- a test in ``tests/test_shims.py`` that fails when the shim stops working *or* stops being needed
  (so that a dependency upgrade makes us delete it instead of carrying it forever).

``apply()`` installs the process-wide shims (idempotent). ``torchscript_onnx_export()`` is scoped:
it is used only around SparseML's exporter; ``cpu_bf16_autocast()`` only around the trainer's loop. Nothing else in yolobench may monkey-patch a library.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

_APPLIED = False

# Attributes ultralytics' DetectionModel.forward/_predict_once read from every layer (m.f: "from"
# index, m.i: layer index, m.type, m.np: params count).
QUANTWRAPPER_FORWARDED = ("f", "i", "type", "np")


# --- 1. QConfig has __slots__ = () on torch 2.14 ---------------------------------------------------
# sparseml's helpers set ``qconfig.quantization_scheme = scheme`` on the QConfig they build, which
# raises AttributeError since torch made QConfig a slotted namedtuple. A subclass without __slots__
# gets a __dict__ back; it is installed where sparseml looks it up (``torch.quantization.QConfig``).

def qconfig_shim_needed() -> bool:
    from torch.ao.quantization import qconfig as torch_qconfig

    original = torch_qconfig.QConfig
    probe = original(activation=None, weight=None)
    try:
        probe.quantization_scheme = None  # what sparseml does
    except AttributeError:
        return True
    return False


def _install_qconfig_shim() -> None:
    import torch.ao.quantization as ao_quant
    import torch.quantization as legacy_quant
    from torch.ao.quantization import qconfig as torch_qconfig

    original = torch_qconfig.QConfig
    if getattr(original, "_yolobench_shim", False):
        return

    class QConfig(original):  # noqa: D401 - no __slots__: instances get a __dict__ again
        """torch QConfig that accepts extra attributes (yolobench shim for sparseml 1.8)."""

        _yolobench_shim = True

    QConfig.__name__ = QConfig.__qualname__ = "QConfig"
    legacy_quant.QConfig = QConfig
    ao_quant.QConfig = QConfig


# --- 2. QuantWrapper hides the layer attributes ultralytics reads ------------------------------------
# sparseml wraps quantized layers in torch's QuantWrapper; DetectionModel's forward then reads
# ``m.f`` / ``m.i`` from the wrapper and fails. Forward those names to the wrapped module.

def quantwrapper_shim_needed() -> bool:
    import torch.nn as nn
    from torch.ao.quantization import QuantWrapper

    inner = nn.Identity()
    inner.f = -1
    wrapper = QuantWrapper(inner)
    try:
        _ = wrapper.f
    except AttributeError:
        return True
    return getattr(QuantWrapper, "_yolobench_shim", False)  # ours answered; still needed


def _install_quantwrapper_shim() -> None:
    from torch.ao.quantization import QuantWrapper

    if getattr(QuantWrapper, "_yolobench_shim", False):
        return
    module_getattr = QuantWrapper.__getattr__  # nn.Module.__getattr__

    @functools.wraps(module_getattr)
    def __getattr__(self, name):  # noqa: N807
        try:
            return module_getattr(self, name)
        except AttributeError:
            if name in QUANTWRAPPER_FORWARDED and "module" in self._modules:
                return getattr(self._modules["module"], name)
            raise

    QuantWrapper.__getattr__ = __getattr__
    QuantWrapper._yolobench_shim = True


# --- 3. torch.onnx.export defaults to the dynamo exporter ---------------------------------------------
# torch 2.14's torch.onnx.export uses dynamo unless told otherwise; that needs onnxscript, which cannot
# be installed beside onnx 1.14 (sparseml's pin), and it does not understand FakeQuantize modules.
# sparseml's exporter calls torch.onnx.export without ``dynamo=``; inside this context the TorchScript
# exporter (still in 2.14) is used.

def dynamo_default_shim_needed() -> bool:
    import inspect

    import torch

    param = inspect.signature(torch.onnx.export).parameters.get("dynamo")
    return param is not None and param.default is True


@contextlib.contextmanager
def torchscript_onnx_export() -> Iterator[None]:
    """Within the block, ``torch.onnx.export`` defaults to ``dynamo=False``."""
    import torch

    original = torch.onnx.export

    @functools.wraps(original)
    def export(*args, **kwargs):
        kwargs.setdefault("dynamo", False)
        return original(*args, **kwargs)

    torch.onnx.export = export
    try:
        yield
    finally:
        torch.onnx.export = original


# --- 4. ultralytics refuses bfloat16 autocast on the CPU -------------------------------------------
# ultralytics' ``autocast(torch.bfloat16, device="cpu")`` raises "bfloat16 autocast requires CUDA",
# although torch autocasts to bfloat16 on CPUs with AVX-512 BF16 / AMX, where a yolov5s training step
# at 160 px took 0.32 s instead of 0.55 s in float32 (2 threads, Zen 5, measured here). Inside this
# context the trainer's ``autocast`` hands CPU bfloat16 requests to torch; every other request goes
# to ultralytics' own function unchanged.

def cpu_bf16_autocast_shim_needed() -> bool:
    import torch
    from ultralytics.utils.torch_utils import autocast

    try:
        autocast(torch.bfloat16, device="cpu")
    except RuntimeError:
        return True
    return False


@contextlib.contextmanager
def cpu_bf16_autocast() -> Iterator[None]:
    """Within the block, ultralytics' trainer may autocast to bfloat16 on the CPU (``amp="bf16"``)."""
    import torch
    from ultralytics.engine import trainer as trainer_module

    original = trainer_module.autocast

    @functools.wraps(original)
    def autocast(enabled, device: str = "cuda"):
        if device == "cpu" and enabled is torch.bfloat16:
            return torch.amp.autocast("cpu", dtype=torch.bfloat16)
        return original(enabled, device=device)

    trainer_module.autocast = autocast
    try:
        yield
    finally:
        trainer_module.autocast = original


# --- 5. sparseml's structured masks reduce a 1-D parameter to one number -------------------------------
# StructuredPruningMaskCreator scores each filter by reducing every other dimension with
# ``torch.linalg.vector_norm(t, dim=[...])``; for a 1-D parameter (a BatchNorm scale or shift grouped with
# its conv's filters through ``param_groups``) that list is empty, and torch >= 2 reads ``dim=[]`` as
# "every dimension": the parameter becomes a single number, drops out of its group, and gets an all-ones
# (scale) or all-zeros (a shift initialised to 0) mask instead of its filters' mask (measured here with
# results/trials/recipes-structured/pruned.yaml: 50% of the filters masked, scale 0%, shift 100%). With
# nothing to reduce each element is its own group: its absolute value for the l2 norm, itself otherwise.

def _structured_mask_creator():
    from sparseml.pytorch.sparsification.pruning.modifier_pruning_structured import StructuredPruningMaskCreator

    return StructuredPruningMaskCreator


def structured_1d_shim_needed() -> bool:
    import torch

    cls = _structured_mask_creator()
    original = getattr(cls, "_yolobench_original_group_tensor", cls.group_tensor)
    return original(cls("filter"), torch.ones(4)).numel() != 4


def _install_structured_1d_shim() -> None:
    cls = _structured_mask_creator()
    if hasattr(cls, "_yolobench_original_group_tensor"):
        return
    original = cls.group_tensor

    @functools.wraps(original)
    def group_tensor(self, tensor):
        if all(dim in self._dim for dim in range(tensor.dim())):  # nothing to reduce
            grouped = tensor.abs() if self._grouping_fn_name.lower() == "l2" else tensor.clone()
            return grouped.type(tensor.type())
        return original(self, tensor)

    cls._yolobench_original_group_tensor = original
    cls.group_tensor = group_tensor


# --- 6. ultralytics' Conv layers share one activation module, across every model of the process -----
# ``Conv.default_act = nn.SiLU()`` is a class attribute, and every Conv built with the default activation
# holds that one object. SparseML's QAT sets ``qconfig`` on every module it prepares, the shared SiLU
# included, and that qconfig holds a local function: after one QAT model, no ultralytics model built
# later in the same process can be pickled (``torch.save``; ultralytics' trainer writing best.pt fails
# with "Can't pickle local object '_add_module_to_qconfig_obs_ctr.<locals>...'", measured). Every model
# yolobench builds gets its own activation objects before any recipe touches it (``own_activations``);
# SiLU and Hardswish hold no parameters, so nothing a model computes or stores changes.

def shared_activation_shim_needed() -> bool:
    from ultralytics.nn.modules.conv import Conv

    return Conv(3, 4).act is Conv(4, 4).act


def own_activations(model) -> int:
    """Give every layer of ``model`` that holds ultralytics' shared default activation its own copy;
    returns how many were replaced."""
    import copy

    from ultralytics.nn.modules import conv

    # every class-level default activation of ultralytics' conv layers (Conv, and ConvTranspose's own)
    shared = {id(cls.default_act) for cls in vars(conv).values()
              if isinstance(cls, type) and "default_act" in vars(cls)}
    count = 0
    for module in model.modules():
        for name, child in list(module.named_children()):
            if id(child) in shared:
                setattr(module, name, copy.deepcopy(child))
                count += 1
    return count


# --- 7. ultralytics fetches a font on every dataset check, offline mode or not --------------------------
# ``check_det_dataset`` (the trainer's dataset check) ends with ``check_font("Arial.ttf")``, and the
# Annotator calls it too: a font that is neither in ultralytics' config folder nor in matplotlib's font
# list is looked up on GitHub (``is_url(check=True)``: a DNS query and an HTTP request) and downloaded,
# whatever YOLO_OFFLINE says. yolobench draws with OpenCV (``draw.py``) and needs no font from
# ultralytics; every ``check_font`` answers with a font already on the machine instead: a cached one if
# ultralytics' folder has it, else DejaVuSans.ttf, which matplotlib (a dependency of ultralytics) ships.
FONT_MODULES = ("ultralytics.utils.checks", "ultralytics.data.utils", "ultralytics.utils.plotting")


def bundled_font():
    """matplotlib's DejaVuSans.ttf (found without importing matplotlib), or None where it is missing."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return path
    return None


def font_download_shim_needed() -> bool:
    """True while ultralytics' own check_font asks the network for a font it does not find locally (the
    probe answers for the network: nothing leaves the machine)."""
    from ultralytics.utils import checks, downloads

    original = getattr(checks.check_font, "_yolobench_original", checks.check_font)
    asked: list = []
    real_is_url, real_download = downloads.is_url, downloads.safe_download
    downloads.is_url = lambda url, check=False: asked.append((url, check)) or False
    downloads.safe_download = lambda *a, **k: asked.append(("download", a, k))
    try:
        original("yolobench-probe-no-such-font.ttf")
    finally:
        downloads.is_url, downloads.safe_download = real_is_url, real_download
    return any(item[0] == "download" or item[1] for item in asked)


def _install_font_shim() -> None:
    import importlib

    from ultralytics.utils import checks

    if getattr(checks.check_font, "_yolobench_original", None) is not None:
        return
    original = checks.check_font

    @functools.wraps(original)
    def check_font(font="Arial.ttf"):
        from pathlib import Path

        cached = Path(checks.USER_CONFIG_DIR) / Path(font).name
        return cached if cached.exists() else bundled_font()

    check_font._yolobench_original = original
    for name in FONT_MODULES:  # each imported the function by name
        module = importlib.import_module(name)
        if getattr(module, "check_font", None) is original:
            module.check_font = check_font


def apply() -> None:
    """Install the process-wide shims (1, 2, 5 and 7). Idempotent; call before using sparseml or
    ultralytics' trainer."""
    global _APPLIED
    if _APPLIED:
        return
    _install_qconfig_shim()
    _install_quantwrapper_shim()
    _install_structured_1d_shim()
    _install_font_shim()
    _APPLIED = True
