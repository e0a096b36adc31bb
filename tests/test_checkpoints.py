"""``yolobench.checkpoints``: the user's model (``--weights``) read safely into what the builder needs.

The accepted checkpoints are made here by ultralytics' own trainer (what ``yolo train`` runs: yolov8n,
yolov5nu and yolo11n, one epoch at 64 px on a few synthetic images, offline); the refused other-task and
end-to-end ones are built from ultralytics' YAML and written in the trainer's layout by its own
``strip_optimizer``.
Every bad input must be a one-line UserError naming the file, with nothing written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import socket
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import yolobench  # noqa: F401 (offline settings before ultralytics)
from yolobench import checkpoints, modelio
from yolobench.checkpoints import check_names, load_checkpoint, model_from
from yolobench.errors import UserError

IMGSZ = 64
NAMES = {0: "circle", 1: "triangle", 2: "square"}  # the synthetic target domain's classes


# --- fixtures ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _offline_guard():
    """Fail any connection to a non-loopback address or name lookup (session-scoped twin of conftest's
    no_network)."""
    attempts = []
    real = socket.socket.connect

    def guard(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(address)
            raise AssertionError(f"network connection attempted to {address!r}")
        return real(self, address)

    real_getaddrinfo = socket.getaddrinfo

    def guard_getaddrinfo(host, *args, **kwargs):  # a name lookup is a network access too (DNS)
        if host not in (None, "127.0.0.1", "::1", "localhost", b"localhost"):
            attempts.append(host)
            raise AssertionError(f"name lookup attempted for {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", guard)
        mp.setattr(socket, "getaddrinfo", guard_getaddrinfo)
        yield attempts


def _trainer_layout(yaml_name: str, path: Path) -> Path:
    """A checkpoint as `yolo train` leaves it (80 classes, as the YAML says): the EMA model saved the way
    the trainer saves it, then ultralytics' own strip_optimizer (EMA -> model, half, args as a dict)."""
    import torch
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import strip_optimizer

    yolo = YOLO(yaml_name, verbose=False)
    model = yolo.model
    model.names = {i: f"class{i}" for i in range(model.yaml["nc"])}
    model.args = {"task": yolo.task, "imgsz": IMGSZ}
    torch.save({"epoch": 0, "best_fitness": None, "model": None, "ema": model, "updates": 1, "optimizer": None,
                "train_args": {"task": yolo.task, "imgsz": IMGSZ, "model": yaml_name}}, path)
    strip_optimizer(path)
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Real `yolo train` checkpoints (ultralytics' own trainer, offline, 1 epoch at 64 px) of yolov8n,
    yolov5nu and yolo11n, and yolov8n's last.pt as the trainer wrote it before stripping it."""
    from ultralytics import YOLO

    from yolobench.data.synth import synthesize
    from yolobench.offline import configure_ultralytics

    configure_ultralytics()
    root = tmp_path_factory.mktemp("checkpoints")
    synthesize(root / "data", seed=0, train=8, val=2, imgsz=IMGSZ)

    def keep_unstripped(trainer):  # last.pt as an interrupted run leaves it: "ema" set, "model" None
        if not (root / "unstripped.pt").exists():
            shutil.copy(trainer.last, root / "unstripped.pt")

    weights = {}
    with _offline_guard() as attempts:
        for family in ("yolov8n", "yolov5nu", "yolo11n"):
            yolo = YOLO(f"{family}.yaml")
            if family == "yolov8n":
                yolo.add_callback("on_model_save", keep_unstripped)
            yolo.train(data=str(root / "data" / "data.yaml"), epochs=1, imgsz=IMGSZ, batch=4, workers=0,
                       device="cpu", plots=False, val=False, project=str(root / "runs"), name=family, amp=False,
                       verbose=False, exist_ok=True, seed=0)
            weights[family] = root / "runs" / family / "weights"
    assert attempts == []
    return SimpleNamespace(root=root, best=weights["yolov8n"] / "best.pt", last=weights["yolov8n"] / "last.pt",
                           unstripped=root / "unstripped.pt", data_yaml=root / "data" / "data.yaml",
                           v5=weights["yolov5nu"] / "best.pt", v11=weights["yolo11n"] / "last.pt")


def _torch_load_trusted(path):
    """Our own test files: read them the ordinary way to compare against."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _outputs(model, x):
    import torch

    with torch.no_grad():
        out = model.eval()(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def _snapshot(*roots: Path):
    return [sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")) for root in roots]


def _refused(path, tmp_path, *needles: str) -> str:
    """load_checkpoint(path) is a one-line UserError naming the file, and writes nothing."""
    before = _snapshot(tmp_path)
    cwd_before = sorted(os.listdir("."))
    with pytest.raises(UserError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    assert Path(path).name in message, message
    for needle in needles:
        assert needle in message, message
    assert _snapshot(tmp_path) == before
    assert sorted(os.listdir(".")) == cwd_before
    return message


# --- accepted inputs -----------------------------------------------------------------------------------
def test_trained_yolov8_checkpoint_round_trips(made):
    import torch

    ckpt = load_checkpoint(made.best)
    assert ckpt.kind == "ultralytics" and ckpt.path == made.best.resolve()
    assert ckpt.sha256 == hashlib.sha256(made.best.read_bytes()).hexdigest()
    assert ckpt.nc == 3 and ckpt.names == NAMES
    assert ckpt.family == "yolov8n" and ckpt.train_imgsz == IMGSZ
    assert ckpt.recipe is None and ckpt.recipe_variables == {} and not ckpt.quantized
    assert all(v.dtype == torch.float32 for v in ckpt.state_dict.values() if v.is_floating_point())
    modelio.build_model(ckpt.cfg, ckpt.nc).load_state_dict(ckpt.state_dict, strict=True)

    rebuilt = model_from(ckpt)
    assert rebuilt.names == NAMES and not rebuilt.training
    original = _torch_load_trusted(made.best)["model"].float()
    torch.manual_seed(0)
    x = torch.rand(2, 3, IMGSZ, IMGSZ)
    torch.testing.assert_close(_outputs(rebuilt, x), _outputs(original, x), atol=1e-4, rtol=0)


def test_unstripped_last_pt_takes_the_ema_weights(made, tmp_path):
    """An interrupted run's last.pt: "ema" holds the model (and its IterableSimpleNamespace args),
    "model" is None; where both are set the EMA is what ultralytics uses, so it is what we take."""
    import torch

    blob = _torch_load_trusted(made.unstripped)
    assert blob["model"] is None and blob["ema"] is not None
    ckpt = load_checkpoint(made.unstripped)
    assert ckpt.names == NAMES and ckpt.family == "yolov8n"

    decoy = _torch_load_trusted(made.best)["model"]
    with torch.no_grad():
        for p in decoy.parameters():
            p.add_(1.0)
    blob["model"] = decoy
    both = tmp_path / "both.pt"
    torch.save(blob, both)
    taken = load_checkpoint(both).state_dict
    ema = blob["ema"].float().state_dict()
    assert all(torch.equal(taken[k], ema[k]) for k in ema)


@pytest.mark.parametrize("which, family, head", [("v5", "yolov5nu", 24), ("v11", "yolo11n", 23)])
def test_other_families_load_and_match(made, which, family, head):
    import torch

    path = getattr(made, which)
    ckpt = load_checkpoint(path)
    assert ckpt.kind == "ultralytics" and ckpt.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ckpt.family == family and ckpt.nc == 3 and ckpt.names == NAMES and ckpt.train_imgsz == IMGSZ
    rebuilt = model_from(ckpt)
    assert type(rebuilt.model[-1]).__name__ == "Detect" and len(rebuilt.model) == head + 1
    torch.manual_seed(1)
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    original = _torch_load_trusted(path)["model"].float()
    torch.testing.assert_close(_outputs(rebuilt, x), _outputs(original, x), atol=1e-4, rtol=0)


def test_yolobench_weights_file_and_artifact_folder(made, tmp_path):
    import torch

    source = load_checkpoint(made.best)
    model = model_from(source)
    artifact = tmp_path / "dense-abc123"
    artifact.mkdir()
    modelio.save_weights(artifact / "weights.pt", model, cfg=source.cfg, nc=source.nc, names=source.names,
                         recipe_text=None, recipe_variables=None)
    for given in (artifact, artifact / "weights.pt"):
        ckpt = load_checkpoint(given)
        assert ckpt.kind == "yolobench" and ckpt.path == (artifact / "weights.pt").resolve()
        assert ckpt.sha256 == hashlib.sha256((artifact / "weights.pt").read_bytes()).hexdigest()
        assert ckpt.names == NAMES and ckpt.nc == 3 and ckpt.family == "yolov8n" and ckpt.train_imgsz is None
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    torch.testing.assert_close(_outputs(model_from(ckpt), x), _outputs(model, x), atol=1e-4, rtol=0)


def test_quantized_yolobench_weights_rebuild_with_their_recipe(made, tmp_path, monkeypatch):
    import torch
    from ultralytics.nn.modules.conv import Conv

    # ultralytics' Conv layers share one activation instance (Conv.default_act); QAT leaves a qconfig on it,
    # after which no ultralytics model built later in this process pickles. Give this test its own.
    monkeypatch.setattr(Conv, "default_act", torch.nn.SiLU())

    from yolobench import paths, recipes

    source = load_checkpoint(made.best)
    text = recipes.adapt_to_network((paths.repo_root() / "recipes" / "oneshot.yaml").read_text(),
                                    recipes.head_index(source.cfg), "oneshot.yaml")
    model = model_from(source).train()  # Conv+BN fuse for QAT in train(), as the builder does
    modelio.apply_recipe_structure(model, text, {})
    model.eval()
    with torch.no_grad():
        model(torch.rand(2, 3, IMGSZ, IMGSZ))  # observers see data: scales are not their initial values
    modelio.save_weights(tmp_path / "weights.pt", model, cfg=source.cfg, nc=source.nc, names=source.names,
                         recipe_text=text, recipe_variables={})
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.kind == "yolobench" and ckpt.quantized and ckpt.recipe == text
    rebuilt = model_from(ckpt)
    for m in (model, rebuilt):
        modelio.disable_observers(m)
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    torch.testing.assert_close(_outputs(rebuilt, x), _outputs(model, x), atol=1e-4, rtol=0)


# --- the weights_only path -----------------------------------------------------------------------------
def test_every_load_is_weights_only(made, tmp_path, monkeypatch):
    import torch

    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_checkpoint(made.best)
    load_checkpoint(made.unstripped)
    assert calls and all(flag is True for flag in calls), calls


def test_allowlist_holds_only_layer_classes():
    import torch.nn as nn

    allowed = checkpoints.allowlist()
    assert "ultralytics.nn.tasks.DetectionModel" in allowed and "ultralytics.nn.modules.head.Detect" in allowed
    assert "torch.nn.modules.conv.Conv2d" in allowed and "ultralytics.utils.IterableSimpleNamespace" in allowed
    assert "ultralytics.nn.tasks.SegmentationModel" not in allowed
    assert "ultralytics.nn.modules.block.TorchVision" not in allowed  # its constructor downloads weights
    for name, obj in allowed.items():
        assert isinstance(obj, type), name
        assert issubclass(obj, nn.Module) or name == "ultralytics.utils.IterableSimpleNamespace", name
        assert name.startswith(("ultralytics.nn.modules.", "torch.nn.modules.", "ultralytics.nn.tasks.",
                                "ultralytics.utils.")), name


class Marker:
    """A class outside the allowlist, smuggled into a real checkpoint."""


class CreatesFile:
    """Unpickling this would create a file (what a malicious .pt does with os.system instead)."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_a_foreign_global_in_a_real_checkpoint_is_refused(made, tmp_path):
    import torch

    blob = _torch_load_trusted(made.best)
    blob["train_args"]["extra"] = Marker()
    path = tmp_path / "best.pt"
    torch.save(blob, path)
    _refused(path, tmp_path, "test_checkpoints.Marker", "without running code", "format=onnx")


@pytest.mark.parametrize("static_scan", [True, False])
def test_a_pickle_that_would_create_a_file_is_refused(made, tmp_path, monkeypatch, static_scan):
    """Refused by the static scan; and with that scan blinded, by torch.load(weights_only=True) itself."""
    import torch

    target = tmp_path / "pwned.txt"
    blob = _torch_load_trusted(made.best)
    blob["train_args"]["payload"] = CreatesFile(target)
    path = tmp_path / "evil.pt"
    torch.save(blob, path)
    if not static_scan:  # the scan misses what it cannot see statically: torch.load must refuse it then
        real_scan = torch.serialization.get_unsafe_globals_in_checkpoint
        allowed = checkpoints.allowlist()
        monkeypatch.setattr(torch.serialization, "get_unsafe_globals_in_checkpoint",
                            lambda f: [name for name in real_scan(f) if name in allowed])
    _refused(path, tmp_path, "open", "without running code")
    assert not target.exists()


def _yolobench_blob(made) -> dict:
    source = load_checkpoint(made.best)
    return {"state_dict": dict(source.state_dict), "cfg": dict(source.cfg), "nc": source.nc,
            "names": dict(source.names), "recipe": None, "recipe_variables": {}}


@pytest.mark.parametrize("field, value, needle", [
    ("activation", "__import__('pathlib').Path('{target}').touch()", "activation"),
    ("activation", "nn.Module.__subclasses__()", "activation"),
    ("layer", "torch_safe_load", "torch_safe_load"),
    ("layer", "TorchVision", "TorchVision"),
])
def test_a_model_yaml_that_would_run_code_is_refused(made, tmp_path, field, value, needle):
    """ultralytics' parse_model eval()s `activation` and looks layer names up in its module globals."""
    import torch

    target = tmp_path / "pwned.txt"
    blob = _yolobench_blob(made)
    if field == "activation":
        blob["cfg"]["activation"] = value.format(target=target)
    else:
        blob["cfg"]["backbone"] = [list(row) for row in blob["cfg"]["backbone"]]
        blob["cfg"]["backbone"][0] = [-1, 1, value, [str(target)]]
    path = tmp_path / "weights.pt"
    torch.save(blob, path)
    _refused(path, tmp_path, needle)
    assert not target.exists()


# --- bad input -----------------------------------------------------------------------------------------
def test_missing_file_and_folder_without_weights(tmp_path):
    _refused(tmp_path / "nope.pt", tmp_path, "no such file")
    (tmp_path / "artifact").mkdir()
    _refused(tmp_path / "artifact", tmp_path, "weights.pt")


@pytest.mark.parametrize("kind", ["random", "text", "empty", "truncated", "zip"])
def test_files_that_are_not_checkpoints(made, tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    if kind == "random":
        path.write_bytes(os.urandom(4096))
    elif kind == "text":
        path.write_text("train: images/train\nval: images/val\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = made.best.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("notes/readme.txt", "not a checkpoint")
        path.write_bytes(buffer.getvalue())
    _refused(path, tmp_path)


@pytest.mark.parametrize("yaml_name, task", [
    ("yolov8n-seg.yaml", "is a segmentation model"), ("yolov8n-pose.yaml", "is a pose model"),
    ("yolov8n-obb.yaml", "is an oriented-box (OBB) model"), ("yolov8n-cls.yaml", "is a classification model"),
])
def test_other_tasks_are_refused(tmp_path_factory, yaml_name, task):
    folder = tmp_path_factory.mktemp("task")
    path = _trainer_layout(yaml_name, folder / "best.pt")
    _refused(path, folder, task, "yolobench takes detection models")


@pytest.mark.parametrize("yaml_name", ["yolov10n.yaml", "yolo26n.yaml"])
def test_end_to_end_heads_are_refused(tmp_path_factory, yaml_name):
    folder = tmp_path_factory.mktemp("e2e")
    path = _trainer_layout(yaml_name, folder / "best.pt")
    _refused(path, folder, "end-to-end (NMS-free)")


def test_yolobench_weights_with_missing_keys(made, tmp_path):
    import torch

    blob = _yolobench_blob(made)
    del blob["cfg"]
    torch.save(blob, tmp_path / "weights.pt")
    _refused(tmp_path / "weights.pt", tmp_path, "'cfg'")

    blob = _yolobench_blob(made)
    dropped = sorted(blob["state_dict"])[5]
    del blob["state_dict"][dropped]
    torch.save(blob, tmp_path / "weights.pt")
    _refused(tmp_path / "weights.pt", tmp_path, "1 missing", dropped)


def test_fused_ultralytics_model_is_refused(made, tmp_path):
    """A model saved after model.fuse() pickles bound methods (builtins.getattr) and has no BatchNorm left:
    refused for the one, and, with the methods removed, for its weights not fitting its own YAML."""
    import torch

    blob = _torch_load_trusted(made.best)
    blob["model"] = blob["model"].float().fuse(verbose=False)
    torch.save(blob, tmp_path / "fused.pt")
    _refused(tmp_path / "fused.pt", tmp_path, "builtins.getattr", ".fuse()")
    for module in blob["model"].modules():
        vars(module).pop("forward", None)
    torch.save(blob, tmp_path / "fused.pt")
    _refused(tmp_path / "fused.pt", tmp_path, "do not fit", "missing", "bn")


# --- check_names ---------------------------------------------------------------------------------------
def test_check_names(made):
    ckpt = load_checkpoint(made.best)
    check_names(ckpt, dict(NAMES), "data.yaml")
    check_names(ckpt, {"0": "circle", "1": "triangle", "2": "square"}, "data.yaml")

    with pytest.raises(UserError) as info:
        check_names(ckpt, {0: "circle", 1: "triangle"}, "my/data.yaml")
    assert str(info.value) == (f"{ckpt.path} was trained on 3 classes (circle, triangle, square); my/data.yaml has 2 "
                               "(circle, triangle): they must be the same classes in the same order")

    with pytest.raises(UserError) as info:
        check_names(ckpt, {0: "circle", 1: "square", 2: "triangle"}, "my/data.yaml")
    message = str(info.value)
    assert "has 3 (circle, square, triangle)" in message and "class 1 is 'triangle'" in message
    assert "\n" not in message
