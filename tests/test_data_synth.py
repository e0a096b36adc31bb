"""The synthetic dataset: deterministic, domain-specific, valid labels, loadable by ultralytics."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
import yaml

import yolobench  # noqa: F401 (offline settings before ultralytics)
from yolobench.cli import main
from yolobench.data import builtin as builtin_mod
from yolobench.data.check import check_dataset
from yolobench.data.synth import BROAD_NAMES, DOMAIN_NAMES, MAX_OBJECTS, MAX_OBJECTS_BROAD, render_image, synthesize

SMALL = dict(train=6, val=3, imgsz=96)


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def target_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("target")
    synthesize(root, seed=3, **SMALL)
    return root


def test_same_arguments_give_identical_files(target_set, tmp_path):
    again = tmp_path / "again"
    assert main(["data", "synth", "--out", str(again), "--seed", "3", "--train", "6", "--val", "3",
                 "--imgsz", "96", "--quiet"]) == 0
    first, second = _digests(target_set), _digests(again)
    assert first == second
    assert sum(k.endswith(".png") for k in first) == 9
    assert sum(k.endswith(".txt") for k in first) == 9


def test_other_seed_gives_other_files(target_set, tmp_path):
    synthesize(tmp_path, seed=4, **SMALL)
    a, b = _digests(target_set), _digests(tmp_path)
    assert a.keys() == b.keys()
    images = [k for k in a if k.endswith(".png")]
    assert all(a[k] != b[k] for k in images)


def test_source_domain_differs_from_target(target_set, tmp_path):
    synthesize(tmp_path, seed=3, domain="source", **SMALL)
    a, b = _digests(target_set), _digests(tmp_path)
    assert all(a[k] != b[k] for k in a if k.endswith(".png"))
    src = yaml.safe_load((tmp_path / "data.yaml").read_text())
    tgt = yaml.safe_load((target_set / "data.yaml").read_text())
    assert src["nc"] == tgt["nc"] == 3  # same number of classes: fine-tuning source -> target makes sense
    assert set(src["names"].values()).isdisjoint(tgt["names"].values())
    assert list(src["names"].values()) == list(DOMAIN_NAMES["source"])


@pytest.mark.parametrize("domain", ["target", "source"])
def test_labels_are_normalised_and_classes_valid(domain):
    seen = set()
    for i in range(12):
        img, labels = render_image(domain, 0, "train", i, 128)
        assert img.shape == (128, 128, 3) and img.dtype.name == "uint8"
        assert 1 <= len(labels) <= MAX_OBJECTS
        for cls, x, y, w, h in labels:
            seen.add(cls)
            assert 0 <= cls < 3
            assert 0 < w <= 1 and 0 < h <= 1
            assert 0 <= x - w / 2 + 1e-9 and x + w / 2 <= 1 + 1e-9
            assert 0 <= y - h / 2 + 1e-9 and y + h / 2 <= 1 + 1e-9
    assert seen == {0, 1, 2}


def test_broad_domain_has_many_classes_none_of_them_a_target_class():
    seen = set()
    for i in range(40):
        img, labels = render_image("broad", 0, "train", i, 96)
        assert img.shape == (96, 96, 3) and 1 <= len(labels) <= MAX_OBJECTS_BROAD
        for cls, x, y, w, h in labels:
            seen.add(cls)
            assert 0 < w <= 1 and 0 < h <= 1 and 0 <= x - w / 2 + 1e-9 and x + w / 2 <= 1 + 1e-9
    assert len(BROAD_NAMES) == 14 and set(BROAD_NAMES).isdisjoint(DOMAIN_NAMES["target"])
    assert seen == set(range(len(BROAD_NAMES)))  # every class drawn within 40 images
    assert render_image("broad", 0, "train", 3, 96)[0].tobytes() == render_image("broad", 0, "train", 3, 96)[0].tobytes()


def test_existing_domains_images_are_pinned():
    """Adding a domain must not change the images of the existing ones: their datasets' hashes are in
    every artifact key (a change would rebuild the whole store)."""
    digest = hashlib.sha256()
    for domain in ("target", "source"):
        for i in range(6):
            img, labels = render_image(domain, 0, "train", i, 160)
            digest.update(img.tobytes())
            digest.update(repr(labels).encode())
    assert digest.hexdigest() == "a2cbbec37c72b19a952030689a4b08c687bb5a114182ed8d633a98a69e06bd04"


def test_written_labels_parse(target_set):
    for f in (target_set / "labels").rglob("*.txt"):
        for line in f.read_text().splitlines():
            fields = line.split()
            assert len(fields) == 5
            assert int(fields[0]) in (0, 1, 2)
            assert all(0 <= float(v) <= 1 for v in fields[1:])


def test_boxes_are_tight_around_the_visible_shape(monkeypatch):
    """On a black background without clutter, a lone shape's box is the box of its bright pixels."""
    import numpy as np

    from yolobench.data import synth

    monkeypatch.setattr(synth, "_background", lambda rng, z: np.zeros((z, z, 3), np.float64))
    monkeypatch.setattr(synth, "_clutter", lambda img, rng: None)
    z, checked = 160, 0
    for i in range(60):
        img, labels = synth.render_image("target", 5, "train", i, z)
        if len(labels) != 1:
            continue
        ys, xs = np.nonzero(img.max(2) > 45)  # pixel noise is sigma <= 8, shapes are far brighter
        _, x, y, w, h = labels[0]
        box = np.array([(x - w / 2) * z, (y - h / 2) * z, (x + w / 2) * z, (y + h / 2) * z])
        seen = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        assert np.abs(box - seen).max() <= 1.5, (i, box, seen)  # anti-aliased edge / blur: about a pixel
        checked += 1
        if checked == 4:
            break
    assert checked >= 3


def test_check_dataset_accepts_the_synthetic_set(target_set):
    info = check_dataset(target_set / "data.yaml")
    assert info.names == {0: "circle", 1: "triangle", 2: "square"}
    assert (info.train_images, info.val_images) == (6, 3)
    assert (info.train_labels, info.val_labels) == (6, 3)
    assert info.train_boxes >= 6
    assert info.content_hash.startswith("sha256:")
    assert info.root == target_set.resolve()


def test_content_hash_ignores_location_and_sees_changes(target_set, tmp_path):
    import shutil

    copy = tmp_path / "moved"
    shutil.copytree(target_set, copy)
    assert check_dataset(copy / "data.yaml").content_hash == check_dataset(target_set / "data.yaml").content_hash
    label = next((copy / "labels" / "val").glob("*.txt"))
    label.write_text(label.read_text().replace("0.", "0.0", 1))
    assert check_dataset(copy / "data.yaml").content_hash != check_dataset(target_set / "data.yaml").content_hash


def test_synth_refuses_to_mix_into_an_existing_dataset(target_set, capsys):
    assert main(["data", "synth", "--out", str(target_set), "--train", "1", "--val", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and "Traceback" not in err


def test_ultralytics_loader_accepts_the_data_yaml_offline(target_set, monkeypatch, tmp_path, no_network):
    import shutil

    from ultralytics.data import utils as ul_utils

    # A copy: ultralytics' loader writes labels/*.cache files into the dataset folder.
    target_set = shutil.copytree(target_set, tmp_path / "copy")

    # check_det_dataset ends with check_font(), which fetches Arial.ttf when no font is cached: the
    # trainer runs it after shims.apply() (shim 7 answers it offline), so does this test; the config folder
    # is an empty one, as on a fresh machine, and no_network fails on any attempt, DNS included.
    from ultralytics.utils import checks as ul_checks

    from yolobench import shims

    shims.apply()
    monkeypatch.setattr(ul_checks, "USER_CONFIG_DIR", tmp_path / "ultralytics-config")
    monkeypatch.chdir(tmp_path)  # the yaml has no `path:`: it must resolve against its own folder
    data = ul_utils.check_det_dataset(str(target_set / "data.yaml"), autodownload=False)
    assert data["nc"] == 3
    assert data["names"] == {0: "circle", 1: "triangle", 2: "square"}
    assert Path(data["train"]) == (target_set / "images" / "train").resolve()
    assert Path(data["val"]) == (target_set / "images" / "val").resolve()
    assert no_network == []

    from ultralytics.data.dataset import YOLODataset

    ds = YOLODataset(img_path=data["val"], data=data, imgsz=96, augment=False, task="detect")
    assert len(ds.labels) == 3
    assert sum(len(lb["cls"]) for lb in ds.labels) == check_dataset(target_set / "data.yaml").val_boxes


def test_builtin_dataset_is_cached_and_atomic(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOBENCH_HOME", str(tmp_path / "home"))
    calls = []
    from yolobench.data import synth

    original = synth.synthesize

    def counting(*a, **k):
        calls.append(1)
        return original(*a, **k)

    monkeypatch.setattr(synth, "synthesize", counting)
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        builtin_mod.builtin_dataset("source", seed=1, train=3, val=2, imgsz=64))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = tmp_path / "home" / "datasets" / "source-s1-3-2-64" / "data.yaml"
    assert results == [expected, expected]
    assert len(calls) == 1  # the second caller waited on the lock and found it made
    assert not [p for p in expected.parent.parent.iterdir() if ".tmp-" in p.name]
    assert check_dataset(expected).train_images == 3
    # Cached: no regeneration.
    assert builtin_mod.builtin_dataset("source", seed=1, train=3, val=2, imgsz=64) == expected
    assert len(calls) == 1


def test_builtin_regenerates_a_stale_generator_version(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOBENCH_HOME", str(tmp_path / "home"))
    path = builtin_mod.builtin_dataset(seed=2, train=2, val=1, imgsz=64)
    meta = path.parent / "synth.json"
    meta.write_text(meta.read_text().replace('"generator_version": ', '"generator_version": 1000'))
    assert builtin_mod.builtin_dataset(seed=2, train=2, val=1, imgsz=64) == path
    assert '"generator_version": 1000' not in meta.read_text()


def test_a_built_in_dataset_locked_too_long_by_another_process_is_one_line(tmp_path, monkeypatch):
    """filelock.Timeout was a traceback: the message names the lock and what holds it."""
    from filelock import FileLock

    from yolobench.errors import UserError

    monkeypatch.setenv("YOLOBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(builtin_mod, "LOCK_TIMEOUT_S", 0.2)
    final = builtin_mod.builtin_dir("target", seed=3, train=2, val=1, imgsz=32)
    final.parent.mkdir(parents=True)
    with FileLock(str(final) + ".lock"):  # held here, as by another process making the same set
        with pytest.raises(UserError, match=r"waited 0\.2 s for .*\.lock"):
            builtin_mod.builtin_dataset("target", seed=3, train=2, val=1, imgsz=32)
    assert not final.exists()
