"""Validate a YOLO-format detection dataset before anything trains on it, and hash its content.

``check_dataset(data_yaml)`` resolves the dataset the way ultralytics 8.4 does, reads every image and
label file once, and either returns a :class:`DatasetInfo` or raises :class:`UserError` with one line
that names the file (and line) and says what to fix. What is checked:

- ``data.yaml`` exists, is YAML, is a mapping, has ``train`` and ``val`` and ``names`` (list, or dict
  id -> name with ids 0..nc-1) or ``nc``; ``nc`` matches ``names`` when both are given.
- Paths are resolved like ultralytics: the root is ``path:`` (absolute, or relative to the *current
  directory*), else the folder of ``data.yaml``; ``train:``/``val:`` are a folder of images (searched
  recursively), a ``.txt`` file of image paths (one a line, ``./x`` relative to the text file, other
  relative paths relative to the current directory, as ultralytics reads them), or a list of those; a
  relative entry starting with ``../`` that does not exist is retried without it (Roboflow exports write
  ``train: ../train/images`` next to ``train/images``).
- Labels are found by ultralytics' rule: the last ``/images/`` in an image path becomes ``/labels/`` and
  the extension becomes ``.txt``. So both the ultralytics layout (``images/train`` + ``labels/train``)
  and the Roboflow export layout (``train/images`` + ``train/labels``, ``valid/images`` + ``valid/labels``)
  work.
- An image without a label file (or with an empty one) is a *background* image: allowed, counted.
  A split in which no image has a label file at all is an error (a missing or misplaced labels folder).
- Every image is decoded (Pillow, falling back to OpenCV), so truncated or garbage files are caught.
- Every label line has 5 fields ``class x_center y_center width height`` (polygon rows
  ``class x1 y1 x2 y2 ...`` with >= 3 points are accepted too, as ultralytics converts them to boxes, but
  not mixed with box rows in one file); fields are numbers, the class is an integer in ``names``,
  coordinates lie in [0, 1] (with ultralytics' 0.01 tolerance), width and height are > 0.

The content hash (``DatasetInfo.content_hash``, for the artifact store's key) is a sha256 over, for each
split in order and each image in sorted order, the split name, the relative path and the bytes of the
image and of its label file, plus the class names. It changes when any image, label, split assignment
or class name changes, and not when the dataset folder is moved.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from yolobench.errors import UserError

# The image files of a dataset, for every part of yolobench: the formats ultralytics 8.4 trains on
# (ultralytics.data.utils.IMG_FORMATS) that OpenCV also reads, because evaluation, benchmarks and the
# report decode with OpenCV. `data check` refuses the others ultralytics would train on (an image
# counted here and skipped by evaluation would make mAP silently judge fewer images).
IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
IMG_FORMATS = frozenset(s[1:] for s in IMAGE_SUFFIXES)
TRAIN_ONLY_FORMATS = frozenset({"avif", "dng", "heic", "heif", "jp2", "mpo"})
COORD_TOLERANCE = 0.01  # ultralytics accepts coordinates in [-0.01, 1.01]; so do we
MIN_IMAGE_PX = 10  # ultralytics rejects images under 10 px a side
SPLITS = ("train", "val")
# Keys of a data.yaml that yolobench never lets a library act on, and why. ultralytics' dataset check
# runs ``download:`` when a val folder is missing: a URL it fetches, ``bash ...`` it runs, anything else
# it runs as Python (``exec()``); a data.yaml from elsewhere would run code. The trainer hands
# ultralytics a copy without them (:func:`without_ignored_keys`) and says so in one line.
IGNORED_KEYS = {"download": "yolobench never downloads a dataset or runs a data.yaml's download script; put the "
                            "images in place and point train: and val: at them"}


@dataclass(frozen=True)
class DatasetInfo:
    """What ``check_dataset`` found. Counts are per split; ``*_labels`` counts label files found."""

    yaml_path: Path
    root: Path
    names: dict[int, str]
    train_dirs: tuple[Path, ...]  # folders holding the train images
    val_dirs: tuple[Path, ...]
    train_images: int
    val_images: int
    train_labels: int  # images that have a label file
    val_labels: int
    train_boxes: int  # label rows
    val_boxes: int
    content_hash: str  # "sha256:<hex>"
    class_counts: dict[str, dict[int, int]] = field(default_factory=dict)  # split -> class id -> rows
    # the image files counted, sorted: what evaluation, benchmarks and the report read (nothing else)
    train_files: tuple[Path, ...] = ()
    val_files: tuple[Path, ...] = ()
    ignored: tuple[str, ...] = ()  # the data.yaml's IGNORED_KEYS, each as a one-line note

    @property
    def nc(self) -> int:
        return len(self.names)

    def summary(self) -> str:
        lines = [f"dataset: {self.yaml_path}", f"root:    {self.root}",
                 f"classes: {self.nc} ({', '.join(f'{i}={n}' for i, n in self.names.items())})"]
        for split in SPLITS:
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            boxes = getattr(self, f"{split}_boxes")
            dirs = ", ".join(_show(d) for d in getattr(self, f"{split}_dirs"))
            per_class = self.class_counts.get(split, {})
            pc = " ".join(f"{self.names.get(c, c)}={n}" for c, n in sorted(per_class.items()))
            lines.append(f"{split + ':':7} {images} images ({labels} with labels, {images - labels} background), "
                         f"{boxes} boxes [{pc}] in {dirs}")
        lines.append(f"hash:    {self.content_hash}")
        lines.extend(self.ignored)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------- helpers

def _show(path: Path) -> str:
    """A path as short as is still unambiguous for the user: relative to the cwd when under it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _key_lines(text: str) -> dict[str, int]:
    """Top-level key -> 1-based line number in the YAML text (best effort)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


def _load_yaml(data_yaml: Path) -> tuple[dict, dict[str, int]]:
    shown = _show(data_yaml)
    if not data_yaml.exists():
        raise UserError(f"{shown}: dataset file not found; pass the path of a YOLO data.yaml "
                        "(or omit --data to use the built-in dataset)")
    if data_yaml.is_dir():
        raise UserError(f"{shown} is a folder; pass the data.yaml file inside it")
    try:
        text = data_yaml.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"{shown}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8 YAML")
    except OSError as err:
        raise UserError(f"{shown}: cannot read it ({err.strerror}); check its permissions")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{where}: not valid YAML ({problem}); fix the syntax (keys train, val, names)")
    if not isinstance(data, dict):
        raise UserError(f"{shown}: expected a YAML mapping with keys train, val and names, got "
                        f"{type(data).__name__}; see the ultralytics dataset format")
    return data, _key_lines(text)


def _names(data: dict, shown: str, lines: dict[str, int]) -> dict[int, str]:
    names = data.get("names")
    nc = data.get("nc")
    where = f"{shown}:{lines['names']}" if "names" in lines else shown
    if names is None:
        if nc is None:
            raise UserError(f"{shown}: missing key 'names' (the class names); add e.g. 'names: {{0: person, 1: car}}'")
        n = _int_like(nc)
        if n is None or n < 1:
            raise UserError(f"{shown}:{lines.get('nc', '?')}: nc must be a positive integer, got {nc!r}")
        return {i: f"class_{i}" for i in range(n)}
    if isinstance(names, list):
        out = {i: str(v) for i, v in enumerate(names)}
    elif isinstance(names, dict):
        out = {}
        for k, v in names.items():
            try:
                out[int(k)] = str(v)
            except (TypeError, ValueError):
                raise UserError(f"{where}: class id {k!r} in names is not an integer; use 'names: {{0: a, 1: b}}'")
        if sorted(out) != list(range(len(out))):
            raise UserError(f"{where}: class ids in names must be 0..{len(out) - 1} without gaps, got "
                            f"{sorted(out)}; renumber them")
        out = dict(sorted(out.items()))
    else:
        raise UserError(f"{where}: names must be a list or a mapping id -> name, got {type(names).__name__}")
    if not out:
        raise UserError(f"{where}: names is empty; list the class names")
    if nc is not None and _int_like(nc) != len(out):
        raise UserError(f"{shown}:{lines.get('nc', '?')}: nc is {nc} but names has {len(out)} entries; "
                        "make them agree (or drop nc)")
    return out


def _int_like(value) -> int | None:
    """An integer, or an integer-like float/str ('3', 3.0) as ultralytics accepts for nc; else None."""
    if isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) and f == int(f) else None


def _root(data: dict, data_yaml: Path, shown: str, lines: dict[str, int]) -> Path:
    path = data.get("path")
    if not path:
        return data_yaml.parent.resolve()
    p = Path(str(path)).expanduser()
    if p.is_absolute():
        if not p.is_dir():
            raise UserError(f"{shown}:{lines.get('path', '?')}: path {p} is not a folder; fix it or remove the "
                            "'path:' key to use the folder of the data.yaml")
        return p
    if p.exists():  # ultralytics resolves a relative `path:` against the current directory
        return p.resolve()
    raise UserError(f"{shown}:{lines.get('path', '?')}: path '{path}' does not exist relative to the current "
                    f"directory {Path.cwd()} (ultralytics resolves it from there, not from the data.yaml); "
                    "remove the 'path:' key to use the data.yaml's folder, or make it absolute")


def _ignored_notes(data: dict, data_yaml: Path) -> list[str]:
    return [f"{data_yaml.resolve()}: '{key}:' ignored ({why})" for key, why in IGNORED_KEYS.items() if key in data]


def without_ignored_keys(data_yaml: str | Path, folder: Path) -> tuple[Path, list[str]]:
    """The data.yaml to hand ultralytics, and a one-line note per key left out: ``data_yaml`` itself when it
    has none of :data:`IGNORED_KEYS`, else a copy in ``folder`` without them whose ``path:`` is the root
    ``data_yaml`` resolves to (so every relative entry still means the same files)."""
    from yolobench.fsutil import atomic_write_text

    data_yaml = Path(data_yaml).expanduser()
    data, lines = _load_yaml(data_yaml)
    notes = _ignored_notes(data, data_yaml)
    if not notes:
        return data_yaml, []
    clean = {key: value for key, value in data.items() if key not in IGNORED_KEYS}
    clean["path"] = str(_root(data, data_yaml.resolve(), _show(data_yaml), lines))
    folder.mkdir(parents=True, exist_ok=True)
    copy = atomic_write_text(folder / data_yaml.name, yaml.safe_dump(clean, sort_keys=False, allow_unicode=True))
    return Path(copy), notes


def _resolve_entry(root: Path, entry: str) -> Path:
    x = (root / entry).resolve()
    if not x.exists() and entry.startswith("../"):  # ultralytics' Roboflow fallback
        x = (root / entry[3:]).resolve()
    return x


def _is_image(path: str) -> bool:
    return path.rpartition(".")[-1].lower() in IMG_FORMATS


def _walk_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, skipping hidden files and folders (as ultralytics' glob
    ``**/*.*`` does: macOS ``._x.jpg`` resource forks from a zip are not images)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath) / f for f in filenames if not f.startswith(".") and _is_image(f)]
        other = next((f for f in filenames if f.rpartition(".")[-1].lower() in TRAIN_ONLY_FORMATS), None)
        if other is not None:
            raise UserError(f"{_show(Path(dirpath) / other)}: .{other.rpartition('.')[-1]} images are not read by "
                            f"yolobench's evaluation (OpenCV); convert them to "
                            f"{'/'.join(s[1:] for s in IMAGE_SUFFIXES)}")
    return found


def _collect_images(split: str, spec, root: Path, shown: str, lines: dict[str, int]) -> tuple[list[Path], list[Path]]:
    """(image files sorted, sources) for one split, as ultralytics' loader would list them."""
    where = f"{shown}:{lines[split]}" if split in lines else shown
    entries = spec if isinstance(spec, list) else [spec]
    if not entries or any(not isinstance(e, (str, Path)) or not str(e).strip() for e in entries):
        raise UserError(f"{where}: '{split}:' must be a folder, a .txt file of image paths, or a list of those; "
                        f"got {spec!r}")
    files: list[Path] = []
    sources: list[Path] = []
    for entry in entries:
        p = _resolve_entry(root, str(entry))
        sources.append(p)
        if p.is_dir():
            files += _walk_images(p)
        elif p.is_file():
            if _is_image(p.name):  # a single image file
                files.append(p)
                continue
            try:
                text = p.read_text(encoding="utf-8-sig")
            except (UnicodeDecodeError, OSError) as err:
                raise UserError(f"{_show(p)}: cannot read this list of '{split}' images ({err}); "
                                "it must be UTF-8 text, one image path a line")
            for n, line in enumerate(text.strip().splitlines(), 1):
                line = line.strip()
                if not line or not _is_image(line):
                    continue
                q = Path(str(p.parent) + os.sep + line[2:]) if line.startswith("./") else Path(line)
                if not q.is_file():
                    raise UserError(f"{_show(p)}:{n}: image {line} does not exist (resolved to {_show(q)}); "
                                    "fix the path or remove the line")
                files.append(q)
        else:
            raise UserError(f"{where}: the '{split}' image folder {_show(p)} does not exist (from '{split}: "
                            f"{entry}' resolved against {_show(root)}); fix '{split}:' or the folder name")
    if not files:
        raise UserError(f"{where}: no images in '{split}' ({', '.join(_show(s) for s in sources)}); "
                        f"put {'/'.join(sorted(IMG_FORMATS)[:6])}... files there or fix '{split}:'")
    return sorted(set(files)), sources


def _label_path(img: Path) -> Path:
    """ultralytics' img2label_paths: last /images/ -> /labels/, extension -> .txt."""
    s = os.fspath(img)
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(sb.join(s.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


def _check_image(img: Path, data: bytes) -> None:
    from PIL import Image, ImageFile  # noqa: PLC0415 (keeps `import yolobench.data` light)

    shown = _show(img)
    size = None
    prev = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # someone may have switched it on globally
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # a full decode: truncated files fail here, not in verify()
            size = im.size
    except Exception as err:  # noqa: BLE001 (Pillow raises many kinds)
        pil_error = f"{type(err).__name__}: {err}"
        # Formats Pillow cannot open (e.g. HEIC without a plugin): let OpenCV try before calling it broken.
        if not isinstance(err, Image.UnidentifiedImageError) or not _cv2_decodes(data):
            raise UserError(f"{shown}: image cannot be decoded ({pil_error}); re-export or delete it "
                            "(and its label file)")
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = prev
    if size is not None and min(size) < MIN_IMAGE_PX:
        raise UserError(f"{shown}: image is {size[0]}x{size[1]} px; ultralytics needs at least "
                        f"{MIN_IMAGE_PX} px a side: remove it")


def _cv2_decodes(data: bytes) -> bool:
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return img is not None and min(img.shape[:2]) >= MIN_IMAGE_PX


def _check_labels(lbl: Path, data: bytes, nc: int, counts: dict[int, int]) -> int:
    """Validate one label file; returns the number of rows. Line numbers are 1-based in the raw file."""
    shown = _show(lbl)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UserError(f"{shown}: not UTF-8 text ({err.reason} at byte {err.start}); "
                        "a label file is text, one 'class x_center y_center width height' a line")
    rows = 0
    kinds = set()
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{shown}:{n}"
        if len(fields) == 5:
            kind = "box"
        elif len(fields) >= 7 and len(fields) % 2 == 1:
            kind = "polygon"
        else:
            raise UserError(f"{where}: {len(fields)} fields, expected 5 (class x_center y_center width height); "
                            "fix or delete the line")
        kinds.add(kind)
        if len(kinds) > 1:
            raise UserError(f"{where}: box rows (5 fields) and polygon rows mixed in one file; ultralytics "
                            "drops such an image: use one kind per file")
        values = []
        for i, f in enumerate(fields):
            try:
                v = float(f)
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                raise UserError(f"{where}: field {i + 1} ({f!r}) is not a number; every field must be numeric "
                                "(class x_center y_center width height)")
            values.append(v)
        cls = values[0]
        if cls != int(cls):
            raise UserError(f"{where}: class id {fields[0]} is not an integer; use the class index from names")
        if not 0 <= cls < nc:
            raise UserError(f"{where}: class id {int(cls)} is outside names (0..{nc - 1}); fix the class id "
                            "or add the class to names in data.yaml")
        coords = values[1:]
        bad = [(i, v) for i, v in enumerate(coords) if not -COORD_TOLERANCE <= v <= 1 + COORD_TOLERANCE]
        if bad:
            i, v = bad[0]
            label = ("x_center", "y_center", "width", "height")[i] if kind == "box" else f"coordinate {i + 1}"
            raise UserError(f"{where}: {label} {fields[i + 1]} is outside [0, 1]; coordinates must be normalised "
                            "by the image width/height (pixels / image size)")
        if kind == "box" and (coords[2] <= 0 or coords[3] <= 0):
            raise UserError(f"{where}: box width/height must be > 0 (got {fields[3]} {fields[4]}); "
                            "fix or delete the line")
        counts[int(cls)] = counts.get(int(cls), 0) + 1
        rows += 1
    return rows


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


# ------------------------------------------------------------------------------------------ entry

def check_dataset(data_yaml: str | Path, *, decode_images: bool = True) -> DatasetInfo:
    """Validate the dataset behind ``data_yaml``; raise :class:`UserError` naming the first problem."""
    data_yaml = Path(data_yaml).expanduser()
    shown = _show(data_yaml)
    data, lines = _load_yaml(data_yaml)
    if "val" not in data and "validation" in data:  # ultralytics renames it too
        data["val"] = data.pop("validation")
        lines["val"] = lines.get("validation", 0)
    for key in SPLITS:
        if not data.get(key):
            raise UserError(f"{shown}: missing key '{key}' (folder or .txt list of {key} images); "
                            f"add e.g. '{key}: images/{key}'")
    names = _names(data, shown, lines)
    root = _root(data, data_yaml.resolve(), shown, lines)

    digest = hashlib.sha256()
    digest.update(repr(sorted(names.items())).encode())
    out: dict = {}
    class_counts: dict[str, dict[int, int]] = {}
    for split in SPLITS:
        images, _ = _collect_images(split, data[split], root, shown, lines)
        labels = [_label_path(p) for p in images]
        found = [lb.is_file() for lb in labels]
        if not any(found):
            label_dirs = sorted({lb.parent for lb in labels})
            missing = [d for d in label_dirs if not d.is_dir()]
            if missing:
                raise UserError(f"label folder {_show(missing[0])} does not exist (labels of the {len(images)} "
                                f"'{split}' images in {_show(images[0].parent)}); put one .txt per image there, "
                                "same file name")
            raise UserError(f"no label files in {_show(label_dirs[0])} for the {len(images)} '{split}' images in "
                            f"{_show(images[0].parent)}; put one .txt per image there, same file name")
        counts: dict[int, int] = {}
        boxes = 0
        for img, lbl, has in zip(images, labels, found):
            digest.update(f"\0{split}\0{_rel(img, root)}\0".encode())
            try:
                img_bytes = img.read_bytes()
            except OSError as err:
                raise UserError(f"{_show(img)}: cannot read image ({err.strerror}); check the file")
            digest.update(len(img_bytes).to_bytes(8, "little"))
            digest.update(img_bytes)
            if decode_images:
                _check_image(img, img_bytes)
            if has:
                try:
                    lbl_bytes = lbl.read_bytes()
                except OSError as err:
                    raise UserError(f"{_show(lbl)}: cannot read label file ({err.strerror}); check the file")
                digest.update(f"\0{_rel(lbl, root)}\0".encode())
                digest.update(len(lbl_bytes).to_bytes(8, "little"))
                digest.update(lbl_bytes)
                boxes += _check_labels(lbl, lbl_bytes, len(names), counts)
            del img_bytes
        out[f"{split}_dirs"] = tuple(sorted({p.parent for p in images}))
        out[f"{split}_files"] = tuple(images)
        out[f"{split}_images"] = len(images)
        out[f"{split}_labels"] = sum(found)
        out[f"{split}_boxes"] = boxes
        class_counts[split] = dict(sorted(counts.items()))
    return DatasetInfo(yaml_path=data_yaml.resolve(), root=root, names=names, content_hash=f"sha256:{digest.hexdigest()}",
                       class_counts=class_counts, ignored=tuple(_ignored_notes(data, data_yaml)), **out)
