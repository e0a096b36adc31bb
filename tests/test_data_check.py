"""``yolobench data check``: every kind of bad input gives exit 2 and one line naming file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from yolobench.cli import main
from yolobench.data.check import check_dataset
from yolobench.data.synth import synthesize


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    synthesize(root, seed=7, train=3, val=2, imgsz=64)
    return root


@pytest.fixture
def ds(pristine, tmp_path) -> Path:
    """A fresh, valid copy to break."""
    root = tmp_path / "ds"
    shutil.copytree(pristine, root)
    return root


def _check(path: Path, capsys) -> tuple[int, str, str]:
    rc = main(["data", "check", str(path)])
    out, err = capsys.readouterr()
    return rc, out, err


def _fails(path: Path, capsys, *needles: str) -> str:
    rc, out, err = _check(path, capsys)
    assert rc == 2, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line
    assert lines[0].startswith("yolobench data: error: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _label(root: Path, split="train", i=0) -> Path:
    return root / "labels" / split / f"{split}_{i:06d}.txt"


def _image(root: Path, split="train", i=0) -> Path:
    return root / "images" / split / f"{split}_{i:06d}.png"


# --------------------------------------------------------------------------------------------- good

def test_valid_dataset_prints_a_summary(ds, capsys):
    rc, out, err = _check(ds / "data.yaml", capsys)
    assert rc == 0, err
    assert "3 images" in out and "2 images" in out and "sha256:" in out and "circle" in out


def test_a_download_key_is_reported_as_ignored(ds, capsys):
    """ultralytics runs a data.yaml's `download:` (code) when val is missing; yolobench never does and says so."""
    data_yaml = ds / "data.yaml"
    data_yaml.write_text(data_yaml.read_text() + "download: import os; os.system('true')\n")
    rc, out, err = _check(data_yaml, capsys)
    assert rc == 0, err
    assert [line for line in out.splitlines() if "' ignored" in line] == [
        f"{data_yaml.resolve()}: 'download:' ignored (yolobench never downloads a dataset or runs a data.yaml's "
        "download script; put the images in place and point train: and val: at them)"]


def test_background_images_are_allowed(ds, capsys):
    _label(ds, "train", 1).unlink()  # no label file: a background image
    _label(ds, "train", 2).write_text("")  # empty label file: also background
    info = check_dataset(ds / "data.yaml")
    assert info.train_images == 3 and info.train_labels == 2
    rc, out, _ = _check(ds / "data.yaml", capsys)
    assert rc == 0 and "1 background" in out


def test_hidden_files_are_ignored_like_ultralytics_does(ds):
    (ds / "images" / "train" / "._train_000000.png").write_bytes(b"macOS resource fork")
    assert check_dataset(ds / "data.yaml").train_images == 3


def test_txt_list_of_images_and_list_of_sources(ds):
    (ds / "train.txt").write_text("".join(f"./images/train/{p.name}\n" for p in sorted((ds / "images/train").iterdir())))
    (ds / "data.yaml").write_text("train: train.txt\nval: [images/val]\nnames: [circle, triangle, square]\n")
    info = check_dataset(ds / "data.yaml")
    assert (info.train_images, info.val_images) == (3, 2)


def test_roboflow_export_layout(pristine, tmp_path):
    root = tmp_path / "rf"
    for src, dst in (("train", "train"), ("val", "valid")):
        shutil.copytree(pristine / "images" / src, root / dst / "images")
        shutil.copytree(pristine / "labels" / src, root / dst / "labels")
    # What a Roboflow "YOLOv5/YOLOv8" export writes (relative to a parent folder that does not exist).
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\n\nnc: 3\n"
                                    "names: ['circle', 'triangle', 'square']\n\nroboflow:\n  workspace: x\n")
    info = check_dataset(root / "data.yaml")
    assert (info.train_images, info.val_images, info.val_labels) == (3, 2, 2)
    assert info.val_dirs == ((root / "valid" / "images").resolve(),)
    # Same bytes in another layout: the same images and labels, so only the relative paths differ.
    assert info.content_hash != check_dataset(pristine / "data.yaml").content_hash


# ----------------------------------------------------------------------------------------- data.yaml

def test_missing_data_yaml(tmp_path, capsys):
    _fails(tmp_path / "nope.yaml", capsys, "nope.yaml", "not found")


def test_data_yaml_not_yaml(ds, capsys):
    (ds / "data.yaml").write_text("train: images/train\nval: [images/val\nnames: {0: a}\n")
    _fails(ds / "data.yaml", capsys, "data.yaml:", "not valid YAML")


def test_data_yaml_not_a_mapping(ds, capsys):
    (ds / "data.yaml").write_text("- just\n- a list\n")
    _fails(ds / "data.yaml", capsys, "data.yaml", "expected a YAML mapping")


@pytest.mark.parametrize("key", ["train", "val"])
def test_data_yaml_missing_split_key(ds, capsys, key):
    other = "val" if key == "train" else "train"
    (ds / "data.yaml").write_text(f"{other}: images/{other}\nnames: [a, b, c]\n")
    _fails(ds / "data.yaml", capsys, "data.yaml", f"missing key '{key}'")


def test_data_yaml_missing_names(ds, capsys):
    (ds / "data.yaml").write_text("train: images/train\nval: images/val\n")
    _fails(ds / "data.yaml", capsys, "data.yaml", "missing key 'names'")


def test_data_yaml_nc_disagrees_with_names(ds, capsys):
    (ds / "data.yaml").write_text("train: images/train\nval: images/val\nnc: 4\nnames: [a, b, c]\n")
    _fails(ds / "data.yaml", capsys, "data.yaml:3", "nc is 4 but names has 3")


# ------------------------------------------------------------------------------------------- folders

def test_missing_image_folder(ds, capsys):
    shutil.rmtree(ds / "images" / "val")
    _fails(ds / "data.yaml", capsys, "data.yaml:", "'val' image folder", "images/val", "does not exist")


def test_missing_label_folder(ds, capsys):
    shutil.rmtree(ds / "labels" / "train")
    _fails(ds / "data.yaml", capsys, "label folder", "labels/train", "does not exist")


def test_txt_list_naming_a_missing_image(ds, capsys):
    (ds / "train.txt").write_text("./images/train/train_000000.png\n./images/train/gone.png\n")
    (ds / "data.yaml").write_text("train: train.txt\nval: images/val\nnames: [a, b, c]\n")
    _fails(ds / "data.yaml", capsys, "train.txt:2", "gone.png", "does not exist")


# -------------------------------------------------------------------------------------------- images

def test_truncated_image(ds, capsys):
    img = _image(ds, "val", 1)
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])
    _fails(ds / "data.yaml", capsys, "val_000001.png", "cannot be decoded")


def test_garbage_image(ds, capsys):
    _image(ds, "train", 2).write_bytes(b"this is not a png at all" * 10)
    _fails(ds / "data.yaml", capsys, "train_000002.png", "cannot be decoded")


# -------------------------------------------------------------------------------------------- labels

def _break_label(ds: Path, line2: str) -> None:
    lbl = _label(ds, "train", 1)
    lines = lbl.read_text().splitlines() or ["0 0.5 0.5 0.2 0.2"]
    lbl.write_text("\n".join([lines[0], line2, *lines[1:]]) + "\n")


def test_label_wrong_number_of_fields(ds, capsys):
    _break_label(ds, "0 0.5 0.5 0.2")
    _fails(ds / "data.yaml", capsys, "train_000001.txt:2", "4 fields, expected 5")


def test_label_non_numeric_field(ds, capsys):
    _break_label(ds, "0 0.5 abc 0.2 0.2")
    _fails(ds / "data.yaml", capsys, "train_000001.txt:2", "field 3 ('abc') is not a number")


def test_label_class_outside_names(ds, capsys):
    _break_label(ds, "3 0.5 0.5 0.2 0.2")
    _fails(ds / "data.yaml", capsys, "train_000001.txt:2", "class id 3 is outside names (0..2)")


def test_label_non_integer_class(ds, capsys):
    _break_label(ds, "1.5 0.5 0.5 0.2 0.2")
    _fails(ds / "data.yaml", capsys, "train_000001.txt:2", "not an integer")


def test_label_coordinate_outside_unit_interval(ds, capsys):
    _break_label(ds, "1 0.5 0.5 120 0.2")  # pixels instead of normalised
    _fails(ds / "data.yaml", capsys, "train_000001.txt:2", "width 120 is outside [0, 1]", "normalised")


def test_label_negative_coordinate(ds, capsys):
    _break_label(ds, "1 -0.3 0.5 0.1 0.2")
    _fails(ds / "data.yaml", capsys, "train_000001.txt:2", "x_center -0.3 is outside [0, 1]")


@pytest.mark.parametrize("wh", ["0 0.2", "0.2 0"])
def test_label_zero_size_box(ds, capsys, wh):
    _break_label(ds, f"2 0.5 0.5 {wh}")
    _fails(ds / "data.yaml", capsys, "train_000001.txt:2", "width/height must be > 0")


def test_polygon_rows_are_accepted(ds):
    _label(ds, "val", 0).write_text("1 0.1 0.1 0.4 0.1 0.3 0.5\n")
    assert check_dataset(ds / "data.yaml").val_boxes >= 1


def test_images_evaluation_cannot_read_are_refused_not_skipped(ds, capsys):
    (_image(ds).parent / "extra.heic").write_bytes(b"not decoded")
    _fails(ds / "data.yaml", capsys, "extra.heic", "not read by yolobench's evaluation")


def test_evaluation_reads_exactly_the_images_the_check_counted(ds):
    from yolobench.evaluate import validation_set

    info = check_dataset(ds / "data.yaml", decode_images=False)
    images, labels, _ = validation_set(ds / "data.yaml")
    assert images == list(info.val_files) and len(images) == info.val_images == len(labels)
