"""Every shim in yolobench.shims: still needed (the upstream bug is there) and still working.

When a dependency upgrade fixes a bug, the "needed" test fails: delete the shim and its tests.
When a shim stops working, the "works" test fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

from yolobench import shims


@pytest.fixture(scope="module", autouse=True)
def _shims_applied():
    shims.apply()


def _legacy_qat_recipe(submodules: list[str]) -> str:
    return ("version: 1.1.0\nmodifiers:\n  - !QuantizationModifier\n    start_epoch: 0.0\n"
            f"    submodules: [{', '.join(submodules)}]\n")


# 1. QConfig slots -------------------------------------------------------------------------------
def test_qconfig_shim_still_needed():
    assert shims.qconfig_shim_needed(), "torch's QConfig accepts attributes again: delete shim 1"


def test_qconfig_shim_works_for_sparseml_scheme_modifier():
    """sparseml's (non-legacy) QuantizationModifier sets quantization_scheme on QConfigs."""
    from sparseml.pytorch.optim import ScheduledModifierManager

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    recipe = ("version: 1.1.0\nmodifiers:\n  - !QuantizationModifier\n    start_epoch: 0.0\n"
              "    scheme_overrides: {}\n")
    ScheduledModifierManager.from_yaml(recipe).apply_structure(model, epoch=float("inf"))
    assert any("FakeQuantize" in type(m).__name__ for m in model.modules())
    q = torch.quantization.QConfig(activation=nn.Identity, weight=nn.Identity)
    q.quantization_scheme = "set"  # what sparseml does; raises without the shim
    assert isinstance(q, torch.ao.quantization.QConfig)


# 2. QuantWrapper hides m.f / m.i ----------------------------------------------------------------
def test_quantwrapper_shim_still_needed():
    import torch.ao.quantization as aoq

    inner = nn.Identity()
    inner.f = -1
    wrapper = aoq.QuantWrapper(inner)
    # our forwarding answers now; the probe checks the un-shimmed nn.Module lookup fails
    with pytest.raises(AttributeError):
        nn.Module.__getattr__(wrapper, "f")
    assert shims.quantwrapper_shim_needed()


def test_quantwrapper_shim_lets_ultralytics_run_a_qat_model():
    from sparseml.pytorch.optim import ScheduledModifierManager
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov5nu.yaml", nc=3, verbose=False)
    shims.own_activations(model)  # QAT must not reach the activation every later model shares (shim 6)
    model.train()
    recipe = _legacy_qat_recipe([f"model.{i}" for i in range(24)])
    ScheduledModifierManager.from_yaml(recipe).apply_structure(model, epoch=float("inf"))
    assert any(type(m).__name__ == "QuantWrapper" for m in model.modules())
    model.eval()
    out = model(torch.zeros(1, 3, 64, 64))  # reads m.f / m.i through the wrappers
    assert out[0].shape[1] == 4 + 3


# 3. torch.onnx.export defaults to dynamo ----------------------------------------------------------
def test_dynamo_default_shim_still_needed():
    assert shims.dynamo_default_shim_needed(), "torch.onnx.export no longer defaults to dynamo: delete shim 3"


def test_torchscript_export_context_exports_a_qat_model(tmp_path):
    from sparseml.pytorch.optim import ScheduledModifierManager
    from sparseml.pytorch.utils import ModuleExporter

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
    model.train()
    recipe = _legacy_qat_recipe(['"0"', '"1"', '"2"', '"3"'])
    ScheduledModifierManager.from_yaml(recipe).apply_structure(model, epoch=float("inf"))
    model.eval()
    model(torch.rand(2, 3, 16, 16))
    exporter = ModuleExporter(model, output_dir=str(tmp_path))
    original = torch.onnx.export
    with shims.torchscript_onnx_export():
        exporter.export_onnx(torch.rand(1, 3, 16, 16), name="qat.onnx", convert_qat=True)
    assert torch.onnx.export is original  # scoped: restored afterwards
    assert (tmp_path / "qat.onnx").stat().st_size > 0


# 4. ultralytics refuses bfloat16 autocast on the CPU ----------------------------------------------
def test_cpu_bf16_autocast_shim_still_needed():
    assert shims.cpu_bf16_autocast_shim_needed(), "ultralytics autocasts to bf16 on CPU now: delete shim 4"


def test_cpu_bf16_autocast_lets_the_trainer_autocast_on_cpu():
    from ultralytics.engine import trainer as trainer_module

    original = trainer_module.autocast
    conv = nn.Conv2d(3, 4, 3)
    with shims.cpu_bf16_autocast():
        with trainer_module.autocast(torch.bfloat16, device="cpu"):
            assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16
        with trainer_module.autocast(False, device="cpu"):  # other requests: ultralytics' own function
            assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.float32
    assert trainer_module.autocast is original  # scoped: restored afterwards


# Quiet by default: sparseml's own import resets its root logger to INFO --------------------------
def test_sparseml_conversion_logs_stay_quiet_after_sparseml_is_imported():
    import logging

    from yolobench import offline

    offline.apply()
    import sparseml.exporters.transforms.onnx_transform  # noqa: F401 (its import re-sets "sparseml" to INFO)
    import sparseml.log  # noqa: F401

    logger = logging.getLogger("sparseml.exporters.transforms.onnx_transform")
    assert logger.getEffectiveLevel() >= logging.WARNING


# 5. structured masks of 1-D parameters ----------------------------------------------------------------
def test_structured_1d_shim_still_needed():
    assert shims.structured_1d_shim_needed(), "sparseml groups 1-D parameters per element again: delete shim 5"


def test_structured_1d_shim_gives_batchnorm_its_filters_mask():
    """A conv's filters grouped with its BatchNorm scale and shift (param_groups) get one mask, as the
    structured trial recipe needs: a pruned channel is zero after the activation."""
    from sparseml.pytorch.sparsification.pruning.modifier_pruning_structured import StructuredPruningMaskCreator

    torch.manual_seed(0)
    weight, scale, shift = torch.randn(8, 4, 3, 3), torch.rand(8) + 0.5, torch.zeros(8)
    creator = StructuredPruningMaskCreator("filter", tensor_group_idxs=[[0, 1, 2]])
    masks = creator.create_sparsity_masks([weight, scale, shift], 0.5)
    filters = masks[0].flatten(1).all(dim=1)
    assert int((~filters).sum()) == 4  # half the filters
    assert torch.equal(masks[1].bool(), filters) and torch.equal(masks[2].bool(), filters)


def test_shared_activation_shim_still_needed():
    assert shims.shared_activation_shim_needed()


def test_own_activations_keep_qat_off_every_other_model(monkeypatch):
    """After a QAT recipe on a yolobench model, a model ultralytics builds in the same process still pickles
    (its trainer saves best.pt with torch.save) and the shared activation carries no qconfig."""
    import io

    from ultralytics.nn.modules.conv import Conv
    from ultralytics.nn.tasks import DetectionModel

    from yolobench import modelio, paths

    monkeypatch.setattr(Conv, "default_act", nn.SiLU())  # a clean one, whatever ran before in this process

    model = modelio.build_model(modelio.model_config("yolov5nu"), 3)
    assert all(m.act is not Conv.default_act for m in model.modules() if isinstance(m, Conv))
    model.train()
    modelio.apply_recipe_structure(model, (paths.repo_root() / "recipes" / "pruned_quant.yaml").read_text(), {})
    assert not hasattr(Conv.default_act, "qconfig")
    torch.save(DetectionModel(modelio.model_config("yolov5nu"), nc=3, verbose=False), io.BytesIO())


# 7. ultralytics fetches a font it does not find locally, on every dataset check -------------------
def _fresh_config_dir(monkeypatch, tmp_path):
    """An empty ultralytics config folder: no font cached there (the state of a fresh machine)."""
    from ultralytics.utils import checks

    monkeypatch.setattr(checks, "USER_CONFIG_DIR", tmp_path)


def test_font_shim_still_needed(monkeypatch, tmp_path, no_network):
    _fresh_config_dir(monkeypatch, tmp_path)
    assert shims.font_download_shim_needed(), "ultralytics' check_font no longer downloads: delete shim 7"
    assert no_network == []  # the probe itself never reaches the network


def test_font_shim_answers_every_font_check_offline(monkeypatch, tmp_path, no_network):
    """A font check (the end of every dataset check; the Annotator) finds a font shipped with matplotlib,
    asking nothing of the network, even where none is cached."""
    from ultralytics.data import utils as data_utils
    from ultralytics.utils import checks, plotting

    _fresh_config_dir(monkeypatch, tmp_path)
    for module in (checks, data_utils, plotting):
        for font in ("Arial.ttf", "Arial.Unicode.ttf"):
            found = Path(module.check_font(font))
            assert found.is_file() and found.suffix == ".ttf" and found.parent != tmp_path
    assert no_network == []
    assert not list(tmp_path.iterdir())  # nothing written where ultralytics would keep a download
