"""The artifact store: content-addressed, atomic, locked, self-checking.

An artifact is a directory ``<root>/<variant>-<key>/`` holding the trained weights, the exported ONNX
files and ``meta.json``. ``key`` hashes everything that decides the artifact's content (variant spec,
recipe text, parent key, dataset hash, profile, library versions): change any of them and a new
artifact is built, the old one stays until pruned.

Guarantees:
- written atomically: built in ``<root>/.tmp-...`` and renamed into place, so a reader never sees a
  half-written artifact (a killed build's ``.tmp-`` folder is removed by the next build of its key);
- built once: a file lock per key; a second process waiting on it finds the finished artifact;
- self-checking: ``meta.json`` (written last) lists every file with its size and sha256; an entry whose
  files do not match is corrupt, moved aside and rebuilt, never used;
- resumable: the builder's work directory (``<root>/work/<variant>-<key>/``, checkpoints) survives
  an interrupted build and is removed only after the artifact is complete.

Must not: know how to build anything (the builder passes a function) or import torch at module level.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from yolobench import paths
from yolobench.errors import UserError

META_NAME = "meta.json"
WEIGHTS_NAME = "weights.pt"
MODEL_CFG_NAME = "model.yaml"
RECIPE_NAME = "recipe.yaml"

# ONNX forms: which graph each engine is fast on (OpenVINO runs sparseml's converted INT8 graph 3x slower than QDQ; DeepSparse is fast only on the converted one).
from yolobench.forms import FORM_DEEPSPARSE, FORM_FP32, FORM_QDQ  # noqa: E402,F401 (re-exported)
from yolobench.forms import ONNX_FORMS as FORMS  # noqa: E402


# What the store's names and keys look like, and so the only ones it turns into paths. A name is a variant
# name: the catalogue's (``pruned_quant``) or a model file's (``modelfiles.model_variant_name``,
# ``yolov8n_int8_1a2b3c4d``): lower case letters, digits and ``_``, never ``-`` (a cell name is
# ``<variant>-<engine>-<imgsz>``), ``/`` or ``.``. A key is :func:`content_key`'s hex digest prefix. A run
# file carries both (``variant``, ``artifact_key``); without this check ``../`` in either would make the
# report read an "artifact" (and its pickled weights.pt) from any folder and write beside it.
KEY_LENGTH = 16
NAME_PATTERN = re.compile(r"[a-z0-9_]+")
KEY_PATTERN = re.compile(rf"[0-9a-f]{{{KEY_LENGTH}}}")


def is_store_name(name: Any) -> bool:
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def is_store_key(key: Any) -> bool:
    return isinstance(key, str) and KEY_PATTERN.fullmatch(key) is not None


def onnx_filename(form: str, imgsz: int) -> str:
    suffix = "" if form == FORM_FP32 else f".{form}"
    return f"model-{imgsz}{suffix}.onnx"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def content_key(parts: dict[str, Any]) -> str:
    """Stable short hash of a JSON-serialisable description of an artifact."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:KEY_LENGTH]


@dataclass
class Artifact:
    """A finished, verified artifact. ``meta`` is the parsed meta.json."""

    name: str
    key: str
    path: Path
    meta: dict = field(repr=False)

    @property
    def quantized(self) -> bool:
        return bool(self.meta.get("quantized"))

    @property
    def export_sizes(self) -> list[int]:
        return list(self.meta.get("export_imgsz", []))

    @property
    def imgsz(self) -> int:
        """The primary export size (the first of the profile's sizes)."""
        return self.export_sizes[0]

    def forms(self) -> list[str]:
        return list(self.meta.get("forms", []))

    def onnx_path(self, form: str = FORM_FP32, imgsz: int | None = None) -> Path:
        imgsz = self.imgsz if imgsz is None else imgsz
        path = self.path / onnx_filename(form, imgsz)
        if form not in self.forms() or not path.exists():
            raise FileNotFoundError(f"{self.name} has no {form} ONNX at {imgsz} px (forms: {self.forms()})")
        return path

    def eval_data_yaml(self, imgsz: int | None = None) -> str:
        """data.yaml whose validation split judges this artifact at ``imgsz`` (rendered at that size for
        the built-in data; artifacts built before per-size sets existed have one set for every size)."""
        imgsz = self.imgsz if imgsz is None else int(imgsz)
        dataset = self.meta.get("dataset") or {}
        return (dataset.get("eval_data_yaml") or {}).get(str(imgsz)) or dataset["data_yaml"]

    def metrics_at(self, imgsz: int | None = None) -> dict:
        """The builder's accuracy at ``imgsz`` ({} where it was not measured at that size)."""
        imgsz = self.imgsz if imgsz is None else int(imgsz)
        by_size = self.meta.get("metrics_by_imgsz")
        if by_size is None:  # built before per-size metrics: one measurement, at the primary size
            return dict(self.meta.get("metrics") or {}) if imgsz == self.imgsz else {}
        return dict(by_size.get(str(imgsz)) or {})

    def changed_since_verified(self, path: Path | str) -> str | None:
        """Why ``path`` (one of this entry's files) is no longer the file ``meta.json`` lists, or None.

        The store verifies an entry when it is opened; an engine loads its file later (a benchmark session
        minutes into the run). A file replaced or rewritten in between would be timed under the key of a
        model it is not. Files the entry does not list (a model file run from elsewhere) are not judged."""
        try:
            rel = str(Path(path).resolve().relative_to(self.path.resolve()))
        except ValueError:
            return None
        info = (self.meta.get("files") or {}).get(rel)
        if not isinstance(info, dict):
            return None
        try:
            size = Path(path).stat().st_size
        except OSError as err:
            return f"{path} is gone ({err.strerror})"
        if size != info.get("size"):
            return f"{path} is {size} bytes, {info.get('size')} in its meta.json"
        if sha256_file(Path(path)) != info.get("sha256"):
            return f"{path} no longer has the sha256 in its meta.json"
        return None

    def load_torch(self):
        """The trained model in eval mode, returning the raw head output (B, 4+nc, N)."""
        from yolobench.modelio import load_artifact_model  # torch-heavy, imported on demand

        return load_artifact_model(self)

    def summary(self) -> dict:
        meta = self.meta
        return {
            "variant": self.name,
            "key": self.key,
            "sparsity": meta.get("sparsity", {}).get("overall"),
            "map50": meta.get("metrics", {}).get("map50"),
            "map50_95": meta.get("metrics", {}).get("map50_95"),
        }


class Store:
    """A directory of artifacts; see the module docstring for the guarantees."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else paths.store_root()

    # layout
    def _entry_name(self, name: str, key: str) -> str:
        """``<name>-<key>``, for a name and key of the store's own shapes only (see NAME_PATTERN)."""
        if not is_store_name(name):
            raise UserError(f"{name!r} is not a variant name of the store {self.root} (lower case letters, digits "
                            "and _ only, e.g. pruned_quant); a run file naming it was edited or is not yolobench's")
        if not is_store_key(key):
            raise UserError(f"{key!r} is not an artifact key of the store {self.root} ({KEY_LENGTH} hex digits, "
                            "e.g. 06ee3d074f5994cf); a run file naming it was edited or is not yolobench's")
        return f"{name}-{key}"

    def entry_dir(self, name: str, key: str) -> Path:
        return self.root / self._entry_name(name, key)

    def work_dir(self, name: str, key: str) -> Path:
        return self.root / "work" / self._entry_name(name, key)

    def _lock(self, name: str, key: str) -> FileLock:
        self._entry_name(name, key)
        lock_dir = self.root / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(lock_dir / f"{name}-{key}.lock"))

    # reading
    def verify(self, entry: Path, *, deep: bool = True) -> dict | None:
        """meta.json of a complete entry whose files all match it, else None."""
        meta_path = entry / META_NAME
        try:
            meta = json.loads(meta_path.read_text())
            files = meta["files"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return None
        if not isinstance(files, dict):  # {relative path: {"size": bytes, "sha256": hex}}, nothing else
            return None
        for rel, info in files.items():
            if not (isinstance(info, dict) and type(info.get("size")) is int and isinstance(info.get("sha256"), str)):
                return None
            path = entry / rel
            try:
                if path.stat().st_size != info["size"]:
                    return None
            except OSError:
                return None
            if deep and sha256_file(path) != info["sha256"]:
                return None
        return meta

    def get(self, name: str, key: str, *, deep: bool = True) -> Artifact | None:
        entry = self.entry_dir(name, key)
        if not entry.exists():
            return None
        meta = self.verify(entry, deep=deep)
        if meta is None:
            return None
        return Artifact(name=name, key=key, path=entry, meta=meta)

    def state(self, name: str, key: str) -> str:
        """'built', 'partial' (a resumable build was interrupted), 'corrupt' or 'missing'."""
        entry = self.entry_dir(name, key)
        if entry.exists():
            return "built" if self.verify(entry, deep=False) is not None else "corrupt"
        return "partial" if self.work_dir(name, key).exists() else "missing"

    # writing
    def build(self, name: str, key: str, build_fn: Callable[[Path, Path], dict]) -> Artifact:
        """Return the artifact, building it under the lock if it is missing or corrupt.

        ``build_fn(work_dir, out_dir)`` writes the artifact's files into ``out_dir`` (using
        ``work_dir`` for resumable state) and returns the meta dict; the store adds the file list.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock(name, key):
            found = self.get(name, key)
            if found is not None:
                return found
            entry = self.entry_dir(name, key)
            if entry.exists():  # corrupt or partial: keep it aside for inspection, never use it
                aside = self.root / "corrupt" / f"{entry.name}-{int(time.time())}"
                aside.parent.mkdir(parents=True, exist_ok=True)
                os.replace(entry, aside)
            work = self.work_dir(name, key)
            work.mkdir(parents=True, exist_ok=True)
            # A build killed outright (SIGKILL, power loss) leaves its .tmp folder: never an entry (no rename
            # happened), and removed here, under this key's lock, so no live build of this key owns one.
            for stale in self.root.glob(f".tmp-{name}-{key}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = self.root / f".tmp-{name}-{key}-{os.getpid()}"
            tmp.mkdir(parents=True)
            try:
                meta = dict(build_fn(work, tmp))
                meta["files"] = {
                    str(p.relative_to(tmp)): {"size": p.stat().st_size, "sha256": sha256_file(p)}
                    for p in sorted(tmp.rglob("*"))
                    if p.is_file() and p.name != META_NAME
                }
                meta.setdefault("variant", name)
                meta["key"] = key
                meta_tmp = tmp / (META_NAME + ".tmp")
                meta_tmp.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
                os.replace(meta_tmp, tmp / META_NAME)  # meta.json last: it marks the entry complete
                os.replace(tmp, entry)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)  # work dir (checkpoints) is kept for resume
                raise
            shutil.rmtree(work, ignore_errors=True)
        artifact = self.get(name, key)
        if artifact is None:  # pragma: no cover - would mean the filesystem lied to us
            raise UserError(f"artifact {entry} failed verification right after it was written; "
                            f"check the disk under {self.root}")
        return artifact
