"""Trust boundaries: what a run file, a folder, a data.yaml or a model file may make yolobench do.

A run file is data from anywhere (a CI artifact, a colleague's machine): the names it carries become
paths (``<store>/<variant>-<key>/``, ``detections/<variant>.png``), so a name that is not a variant name
or a key that is not a store key is refused with one line before it reaches the file system; nothing is
ever unpickled from such a folder. See docs/trust.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from yolobench.cli import main
from yolobench.errors import EXIT_BAD_INPUT, UserError
from yolobench.runfile import cell_extra_info, load_run, run_document, write_run
from yolobench.timer import Latency


class _Marker:
    """Unpickling this creates ``path``: the code a hostile weights.pt would run."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _run_with(tmp_path: Path, variant: str, key: str, engine: str = "torch") -> Path:
    samples = [10.0 + 0.01 * (i % 5) for i in range(20)]
    info = cell_extra_info(Latency.from_samples(samples), variant=variant, engine=engine, engine_version="1",
                           threads=1, imgsz=64, cpu_model="test CPU")
    info["artifact_key"] = key
    return write_run(tmp_path / "run.json", run_document([info]))


def _hostile_folder(tmp_path: Path, store: Path) -> tuple[str, Path]:
    """A folder outside the store that looks like an artifact (a meta.json listing no files) and holds a
    weights.pt that runs code when unpickled; the variant name that reaches it from ``store``."""
    import torch

    evil = tmp_path / "evil"
    folder = evil.parent / f"{evil.name}-k"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"files": {}, "export_imgsz": [64], "forms": []}))
    marker = tmp_path / "marker"
    torch.save({"state_dict": _Marker(marker), "cfg": {}, "nc": 1}, folder / "weights.pt")
    up = "../" * len(store.resolve().parts[1:])  # from the store up to /, then down to the folder
    return up + str(evil.resolve()).lstrip("/"), marker


def test_report_refuses_a_variant_that_leaves_the_store(tmp_path, capsys):
    store = tmp_path / "a" / "b" / "store"
    store.mkdir(parents=True)
    variant, marker = _hostile_folder(tmp_path, store)
    assert (store / f"{variant}-k").resolve() == (tmp_path / "evil-k").resolve()  # the probe reaches it
    run = _run_with(tmp_path, variant, "k")
    out = tmp_path / "out"
    capsys.readouterr()
    code = main(["report", "--run", str(run), "--out", str(out), "--store", str(store), "--engine", "torch",
                 "--quiet"])
    err = capsys.readouterr().err
    assert not marker.exists(), "code from a weights.pt outside the store ran"
    assert not (tmp_path / "detections").exists() and not list(tmp_path.rglob("*.png"))
    assert code == EXIT_BAD_INPUT, err
    assert len(err.strip().splitlines()) == 1 and "variant" in err and "../" in err, err


@pytest.mark.parametrize("variant", ["../dense", "dense/../x", "/tmp/x", "Dense", "a b", "", "dense-x"])
def test_a_run_file_variant_must_be_a_variant_name(tmp_path, variant):
    info = cell_extra_info(Latency.from_samples([10.0] * 20), variant="dense", engine="onnxruntime",
                           engine_version="1", threads=1, imgsz=64, cpu_model="test CPU")
    info["variant"] = variant
    path = write_run(tmp_path / "run.json", run_document([info]))
    with pytest.raises(UserError, match="variant"):
        load_run(path)


@pytest.mark.parametrize("key", ["k", "../../x", "0123456789abcdeg", "0123456789ABCDEF", "0123456789abcde", 7])
def test_a_run_file_artifact_key_must_be_a_store_key(tmp_path, key):
    path = _run_with(tmp_path, "dense", key, engine="onnxruntime")
    with pytest.raises(UserError, match="artifact_key"):
        load_run(path)


def test_a_run_file_with_a_store_key_and_a_model_file_name_loads(tmp_path):
    run = load_run(_run_with(tmp_path, "yolov8n_int8_1a2b3c4d", "0123456789abcdef", engine="onnxruntime"))
    assert [c.variant for c in run.cells.values()] == ["yolov8n_int8_1a2b3c4d"]


def test_the_store_refuses_names_and_keys_that_are_not_its_own(tmp_path):
    from yolobench.store import Store

    store = Store(tmp_path / "store")
    for name, key in (("../x", "0123456789abcdef"), ("dense", "../../x"), ("dense", "k"), ("a/b", "0" * 16)):
        with pytest.raises(UserError, match="store"):
            store.get(name, key)
        with pytest.raises(UserError, match="store"):
            store.state(name, key)
    assert store.get("dense", "0123456789abcdef") is None  # a well-formed name that is not built


def test_no_unjustified_unpickling_in_the_library():
    """Every ``torch.load`` in src/ reads with ``weights_only=True``, or says on its line (``trusted:``)
    why the file it reads can only be yolobench's own."""
    import ast

    src = Path(__file__).resolve().parents[1] / "src" / "yolobench"
    loads, unjustified = 0, []
    for path in sorted(src.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                continue
            loads += 1
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
            if not safe and "trusted:" not in lines[node.lineno - 1]:
                unjustified.append(f"{path.relative_to(src)}:{node.lineno}")
    assert loads >= 3  # the scan sees the library's loads (modelio, builder, checkpoints, training)
    assert not unjustified, f"torch.load without weights_only=True or a 'trusted:' reason: {unjustified}"


def test_the_network_guard_refuses_name_lookups_too(no_network):
    """A DNS query leaves the machine: ultralytics' is_url swallows a failed connect, not the lookup before it."""
    import socket

    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)
    with pytest.raises(AssertionError, match="network access attempted"):
        socket.getaddrinfo("github.com", 443)
    with pytest.raises(AssertionError, match="network access attempted"):
        socket.gethostbyname("github.com")
    assert no_network == [("getaddrinfo", "github.com"), ("gethostbyname", "github.com")]


def _trainer_for(data_yaml: Path, work: Path):
    """yolobench's trainer as far as its dataset check needs (no model, no training)."""
    from types import SimpleNamespace

    from yolobench.training import RecipeTrainer

    trainer = RecipeTrainer.__new__(RecipeTrainer)
    trainer.args = SimpleNamespace(data=str(data_yaml), task="detect", split="val", fraction=1.0, single_cls=False)
    trainer.checkpoint_dir = work / "checkpoint"
    return trainer


@pytest.mark.parametrize("script", ["python", "bash"])
def test_the_trainer_never_runs_a_data_yamls_download(tmp_path, capsys, no_network, script):
    """ultralytics runs a data.yaml's `download:` (Python through exec(), a `bash ...` command, or a URL)
    when its val folder is missing: the yaml the trainer hands ultralytics has no `download:`."""
    from yolobench import shims

    shims.apply()
    marker = tmp_path / "marker"
    (tmp_path / "data" / "images" / "train").mkdir(parents=True)
    (tmp_path / "dl.sh").write_text(f"touch {marker}\n")
    download = f"open({str(marker)!r}, 'w')" if script == "python" else f"bash {tmp_path / 'dl.sh'}"
    data_yaml = tmp_path / "data" / "data.yaml"
    data_yaml.write_text(json.dumps({"train": "images/train", "val": "images/val", "names": ["a"],
                                     "download": download}))
    trainer = _trainer_for(data_yaml, tmp_path / "work")
    with pytest.raises(RuntimeError, match="images not found"):
        trainer.get_dataset()
    assert not marker.exists(), "ultralytics ran the data.yaml's download script"
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "' ignored" in line] == [
        f"{data_yaml.resolve()}: 'download:' ignored (yolobench never downloads a dataset or runs a data.yaml's "
        "download script; put the images in place and point train: and val: at them)"]
    assert no_network == []


def test_the_trainer_hands_ultralytics_the_same_dataset_without_download(tmp_path, no_network):
    """With `download:` dropped the paths still resolve as the user's data.yaml says (root: its folder)."""
    from yolobench import shims

    shims.apply()
    root = tmp_path / "data"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
    data_yaml = root / "data.yaml"
    data_yaml.write_text("train: images/train\nval: images/val\nnames: [a, b]\ndownload: https://example.com/x.zip\n")
    data = _trainer_for(data_yaml, tmp_path / "work").get_dataset()
    assert "download" not in data and data["names"] == {0: "a", 1: "b"}
    assert Path(data["val"]) == (root / "images" / "val").resolve()
    assert Path(data["train"]) == (root / "images" / "train").resolve()
    plain = root / "plain.yaml"
    plain.write_text("train: images/train\nval: images/val\nnames: [a, b]\n")
    trainer = _trainer_for(plain, tmp_path / "work")
    trainer.get_dataset()
    assert Path(trainer.args.data) == plain  # a data.yaml without the key goes to ultralytics as it is
    assert no_network == []


@pytest.mark.parametrize("files", [[], "x", {"weights.pt": 5}, {"weights.pt": {"size": "big"}}])
def test_a_meta_json_whose_files_are_not_a_file_table_is_a_corrupt_entry(tmp_path, files):
    """meta.json lists {file: {size, sha256}}; anything else marks an entry the store never uses (it was a
    traceback: 'list' object has no attribute 'items')."""
    from yolobench.store import Store

    store = Store(tmp_path / "store")
    entry = store.entry_dir("dense", "0" * 16)
    entry.mkdir(parents=True)
    (entry / "weights.pt").write_bytes(b"12345")
    (entry / "meta.json").write_text(json.dumps({"files": files}))
    assert store.get("dense", "0" * 16) is None
    assert store.state("dense", "0" * 16) == "corrupt"


@pytest.mark.parametrize("names", ["{[]: 1}", "{{}: 'a'}", "{'a': 'b'}", "[" * 200 + "]" * 200, "None", "[]"])
def test_a_model_files_names_metadata_that_is_no_class_table_is_ignored(names):
    """An ONNX file's ``names`` metadata is text from the file's author; one that is not {id: name} (or a
    list of names) is read as no names, never a traceback (``{[]: 1}`` raised TypeError)."""
    import onnx
    from onnx import helper

    from yolobench import modelfiles
    from yolobench.engines import base

    model = helper.make_model(helper.make_graph([], "g", [], []))
    onnx.helper.set_model_props(model, {"names": names})
    assert base.class_names(names) is None
    assert modelfiles._onnx_names(model) == {}
    assert base._nc_from_metadata({"names": names}) is None


@pytest.mark.parametrize("names", ["{0: 'a', 1: 'b'}", "['a', 'b']", '{"0": "a", "1": "b"}'])
def test_a_model_files_class_table_is_read(names):
    from yolobench.engines import base

    assert base.class_names(names) == {0: "a", 1: "b"}
    assert base._nc_from_metadata({"names": names}) == 2


def test_a_run_files_cpu_vendor_does_not_take_the_report_out_of_results(tmp_path, monkeypatch, capsys):
    # The CPU generation names folders (results/report-<profile>-<generation>, the asv machine, the baseline):
    # a vendor of "../../../../escaped" wrote the report beside the checkout.
    from yolobench import paths
    from yolobench.timer import cpu_generation

    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    monkeypatch.setattr(paths, "repo_root", lambda: repo)
    info = cell_extra_info(Latency.from_samples([10.0 + 0.01 * (i % 5) for i in range(20)]), variant="dense",
                           engine="torch", engine_version="1", threads=1, imgsz=64, cpu_model="test CPU")
    info["profile"] = "smoke"
    machine = {"yolobench": {"cpu_vendor": "../" * 4 + "escaped", "cpu_family": 26, "cpu_model_id": 2}}
    run = write_run(tmp_path / "run.json", run_document([info], machine=machine))
    code = main(["report", "--quiet", "--run", str(run), "--out", "auto", "--no-detections",
                 "--store", str(tmp_path / "store")])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "run.json"]
    assert [p.name for p in (repo / "results").iterdir()] == ["report-smoke-escaped-family26-model2"]
    assert cpu_generation(machine) == "escaped family 26 model 2"  # the vendor's letters and digits only
    assert cpu_generation({"cpu_vendor": ["not", "a", "name"], "cpu_family": 1, "cpu_model_id": 2}) == "CPU family 1 model 2"
    # the vendors real CPUs report keep their names
    assert cpu_generation({"cpu_vendor": "AuthenticAMD", "cpu_family": 26, "cpu_model_id": 2}) == \
        "AMD family 26 model 2 (Zen 5)"
    assert cpu_generation({"cpu_vendor": "  Shanghai  ", "cpu_family": 7, "cpu_model_id": 59}) == \
        "Shanghai family 7 model 59"
