"""Structured pruning's payoff: channels that are zero for every input are left out of the float model
and its ONNX export (``modelio.drop_dead_channels``), and out of the training network a child rung goes on
with (``modelio.thin_model`` / ``apply_widths``: the `thin_pq` rungs), computing exactly the same function."""

from __future__ import annotations

import types

import onnx
import pytest
import torch
from onnx import numpy_helper

from yolobench import modelio
from yolobench.training import RecipeTrainer

IMGSZ = 64


def _alive_model(seed: int = 0) -> torch.nn.Module:
    """yolov5su (3 classes) with random BatchNorm statistics, so that every channel carries signal."""
    torch.manual_seed(seed)
    model = modelio.build_model(modelio.model_config("yolov5su"), 3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _prune_filters(conv_module, channels) -> None:
    """What a structured recipe leaves: a filter with its BatchNorm scale and shift all zero."""
    with torch.no_grad():
        conv_module.conv.weight[channels] = 0
        conv_module.bn.weight[channels] = 0
        conv_module.bn.bias[channels] = 0


def _chains(model):
    detect = model.model[-1]
    bottlenecks = [m for m in model.modules() if type(m).__name__ == "Bottleneck"]
    return bottlenecks, detect


def _conv_macs(model, imgsz=IMGSZ) -> int:
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, imgsz, imgsz))
    for handle in handles:
        handle.remove()
    return total


def _raw(model, images):
    with torch.no_grad():
        out = model(images)
    return out[0] if isinstance(out, (tuple, list)) else out


def test_dead_channels_are_dropped_and_the_function_is_unchanged():
    model = _alive_model()
    bottlenecks, detect = _chains(model)
    expected = 0
    for i, bottleneck in enumerate(bottlenecks):
        channels = list(range(i % 3, bottleneck.cv1.conv.out_channels, 2))  # about half, a different half
        _prune_filters(bottleneck.cv1, channels)
        expected += len(channels)
    for branch in (*detect.cv2, *detect.cv3):
        for conv_module in (branch[0], branch[1]):
            channels = list(range(0, conv_module.conv.out_channels, 4))
            _prune_filters(conv_module, channels)
            expected += len(channels)
    fused = model.fuse(verbose=False)
    images = torch.rand(2, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    before, macs_before = _raw(fused, images), _conv_macs(fused)

    assert modelio.drop_dead_channels(fused) == expected
    after, macs_after = _raw(fused, images), _conv_macs(fused)
    assert after.shape == before.shape
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    assert macs_after < 0.9 * macs_before
    assert bottlenecks[0].cv2.conv.in_channels == bottlenecks[0].cv1.conv.out_channels < 32
    assert modelio.drop_dead_channels(fused) == 0  # nothing left to drop


def test_a_model_without_dead_channels_is_left_alone():
    """Unstructured zeros (even a whole zero filter) keep their channel while BatchNorm's shift is not zero:
    the channel is act(shift), a constant the next conv sees (zero padding makes it unfoldable)."""
    model = _alive_model()
    bottleneck = next(m for m in model.modules() if type(m).__name__ == "Bottleneck")
    with torch.no_grad():
        bottleneck.cv1.conv.weight[0] = 0  # a zero filter, shift kept
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and module.weight.dim() == 4:
                module.weight[module.weight.abs() < module.weight.abs().median()] = 0  # 50% unstructured
    fused = model.fuse(verbose=False)
    shapes = [p.shape for p in fused.parameters()]
    assert modelio.drop_dead_channels(fused) == 0
    assert [p.shape for p in fused.parameters()] == shapes


def test_a_channel_is_kept_when_the_activation_does_not_map_zero_to_zero():
    model = _alive_model()
    bottleneck = next(m for m in model.modules() if type(m).__name__ == "Bottleneck")
    _prune_filters(bottleneck.cv1, [0, 1, 2])
    bottleneck.cv1.act = torch.nn.Sigmoid()  # sigmoid(0) = 0.5: the channel carries a constant
    fused = model.fuse(verbose=False)
    assert modelio.drop_dead_channels(fused) == 0


def test_unfused_models_are_left_alone():
    """Before fuse() a zero filter is not a zero channel (BatchNorm's running mean shifts it)."""
    model = _alive_model()
    bottleneck = next(m for m in model.modules() if type(m).__name__ == "Bottleneck")
    _prune_filters(bottleneck.cv1, [0, 1])
    assert modelio.drop_dead_channels(model) == 0


def _initializer_size(path) -> int:
    return sum(numpy_helper.to_array(t).size for t in onnx.load(str(path)).graph.initializer)


def test_the_float_export_leaves_dead_channels_out(tmp_path):
    model = _alive_model()
    bottleneck = next(m for m in model.modules() if type(m).__name__ == "Bottleneck")  # model.2.m.0: 32 -> 32
    _prune_filters(bottleneck.cv1, list(range(16)))  # 16 of 32
    assert modelio.export_fp32(model, tmp_path / "model.onnx", IMGSZ) == 16
    assert modelio.export_fp32(_alive_model(), tmp_path / "dense.onnx", IMGSZ) == 0
    # cv1 loses 16 filters (32 inputs, 1x1, and their bias), cv2 (3x3, 32 filters) 16 inputs
    removed = 16 * 32 + 16 + 32 * 16 * 9
    assert _initializer_size(tmp_path / "dense.onnx") - _initializer_size(tmp_path / "model.onnx") == removed


def test_sparseml_names_the_masked_parameters_as_the_ema_expects():
    """The EMA masking reads SparseML's layer and parameter names: the `thin` recipe's masks name
    parameters of the model (a SparseML that renamed them would leave the EMA's channels alive)."""
    from yolobench import paths, shims

    shims.apply()
    from sparseml.pytorch.optim import ScheduledModifierManager

    model = _alive_model()
    text = (paths.repo_root() / "recipes" / "thin.yaml").read_text()
    manager = ScheduledModifierManager.from_yaml(text)
    manager.initialize(model, epoch=0.0)
    masks = manager.pruning_modifiers[0].module_masks
    names = {f"{layer}.{param}" for layer, param in zip(masks.layer_names, masks.param_names)}
    params = dict(model.named_parameters())
    assert len(names) == 69 and names <= params.keys()
    assert {"model.2.m.0.cv1.bn.bias", "model.24.cv3.2.1.conv.weight"} <= names


def test_the_ema_keeps_every_mask_a_recipe_sets_not_only_conv_weights():
    """A structured recipe masks BatchNorm's scale and shift with the filter: the EMA that is validated
    and saved must carry those zeros too, or the channel comes back alive in the artifact."""
    live, ema = _alive_model(0), _alive_model(1)
    bottleneck = next(m for m in live.modules() if type(m).__name__ == "Bottleneck")
    _prune_filters(bottleneck.cv1, [0, 1])
    name = "model.2.m.0.cv1"
    masks = types.SimpleNamespace(layer_names=[f"{name}.conv", f"{name}.bn", f"{name}.bn"],  # SparseML's
                                  param_names=["weight", "weight", "bias"])  # ModuleParamPruningMask
    trainer = types.SimpleNamespace(model=live, ema=types.SimpleNamespace(enabled=True, ema=ema),
                                    manager=types.SimpleNamespace(pruning_modifiers=[
                                        types.SimpleNamespace(module_masks=masks)]))
    RecipeTrainer._on_epoch_end(trainer)
    params = dict(ema.named_parameters())
    for suffix in ("conv.weight", "bn.weight", "bn.bias"):
        assert params[f"{name}.{suffix}"][:2].abs().sum() == 0, suffix
        assert params[f"{name}.{suffix}"][2:].abs().sum() > 0, suffix
    other = dict(_alive_model(1).named_parameters())  # parameters no modifier masks are untouched
    torch.testing.assert_close(params["model.2.m.0.cv2.bn.bias"], other["model.2.m.0.cv2.bn.bias"])


def _pruned_everywhere(model) -> int:
    """Prune about half the filters of every thinnable producer (Bottleneck cv1s, the head's 3x3s)."""
    bottlenecks, detect = _chains(model)
    count = 0
    for i, producer in enumerate([b.cv1 for b in bottlenecks] + [c for br in (*detect.cv2, *detect.cv3) for c in br[:2]]):
        channels = list(range(i % 2, producer.conv.out_channels, 2))
        _prune_filters(producer, channels)
        count += len(channels)
    return count


def test_thin_model_removes_dead_channels_from_the_training_network_with_the_same_function():
    model = _alive_model()
    removed = _pruned_everywhere(model)
    images = torch.rand(2, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    before, params_before = _raw(model, images), modelio.parameter_count(model)

    widths = modelio.thin_model(model)
    after = _raw(model, images)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    assert len(widths) == 11 + 12  # every Bottleneck cv1 of yolov5su and the head's twelve 3x3 blocks
    full = {n: m.conv.out_channels for n, m in _alive_model().named_modules() if n in widths}
    assert sum(full[n] - widths[n] for n in widths) == removed
    assert modelio.parameter_count(model) < 0.8 * params_before
    assert modelio.thin_model(model) == {}  # nothing dead left

    # a freshly built network given the widths takes the thinned weights strictly, and computes the same
    fresh = modelio.build_model(modelio.model_config("yolov5su"), 3)
    modelio.apply_widths(fresh, widths)
    fresh.load_state_dict(model.state_dict(), strict=True)
    torch.testing.assert_close(_raw(fresh.eval(), images), after, rtol=0, atol=0)


def test_thin_model_keeps_channels_that_carry_a_constant():
    """A zero filter whose BatchNorm shift is not zero outputs act(shift): not dead, not removed."""
    model = _alive_model()
    bottleneck = next(m for m in model.modules() if type(m).__name__ == "Bottleneck")
    with torch.no_grad():
        bottleneck.cv1.conv.weight[:4] = 0
        bottleneck.cv1.bn.weight[:4] = 0  # scale zero, shift kept
    assert modelio.thin_model(model) == {}


def test_widths_that_do_not_fit_the_network_are_refused():
    model = modelio.build_model(modelio.model_config("yolov5su"), 3)
    with pytest.raises(ValueError, match="model.99.cv1"):
        modelio.apply_widths(model, {"model.99.cv1": 4})
    with pytest.raises(ValueError, match="model.2.m.0.cv1 is 999"):
        modelio.apply_widths(model, {"model.2.m.0.cv1": 999})


def test_weights_of_a_thinned_network_reload_from_their_file(tmp_path):
    cfg = modelio.model_config("yolov5su")
    model = _alive_model()
    _pruned_everywhere(model)
    widths = modelio.thin_model(model)
    modelio.save_weights(tmp_path / "weights.pt", model, cfg=cfg, nc=3, names={0: "a", 1: "b", 2: "c"},
                         recipe_text=None, recipe_variables=None, widths=widths)
    loaded, blob = modelio.load_weights_model(tmp_path / "weights.pt")
    assert blob["widths"] == widths
    images = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(_raw(loaded, images), _raw(model, images), rtol=0, atol=0)
    modelio.save_weights(tmp_path / "plain.pt", _alive_model(), cfg=cfg, nc=3, names={}, recipe_text=None,
                         recipe_variables=None)
    assert "widths" not in torch.load(tmp_path / "plain.pt", weights_only=True)  # other files keep their form


@pytest.mark.slow
def test_thin_pq_trains_prunes_and_quantizes_the_thinner_network(tiny_home):
    """End to end on the tiny profile: `thin` masks whole filters, `thin_pq` starts from the network without
    them (fewer parameters than `pruned_quant`, pruned and quantized on the full network), its weights.pt
    reloads (as the PyTorch engine and --source-weights read it), and its integer QDQ export computes what
    PyTorch computes."""
    import numpy as np
    import onnxruntime as ort

    from yolobench import builder, checkpoints
    from yolobench.store import FORM_QDQ, Store

    store = Store(tiny_home / "store")
    thin_pq = builder.build("thin_pq", "tiny", store=store)
    pruned_quant = builder.build("pruned_quant", "tiny", store=store)
    assert thin_pq.meta["channel_widths"] and "channel_widths" not in pruned_quant.meta
    assert thin_pq.meta["parameters"] < 0.9 * pruned_quant.meta["parameters"]
    blob = torch.load(thin_pq.path / "weights.pt", map_location="cpu", weights_only=True)
    assert blob["widths"] == thin_pq.meta["channel_widths"]

    size = thin_pq.imgsz
    images = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    session = ort.InferenceSession(str(thin_pq.onnx_path(FORM_QDQ, size)), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: images})[0]
    torch_out = _raw(thin_pq.load_torch(), torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(torch_out, onnx_out, rtol=1e-3, atol=1e-3)

    given = checkpoints.load_checkpoint(thin_pq.path / "weights.pt")
    assert given.widths == blob["widths"] and given.quantized
    reloaded = _raw(checkpoints.model_from(given), torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(reloaded, torch_out, rtol=1e-5, atol=1e-5)
