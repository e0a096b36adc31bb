"""The built-in dataset: generated once per (domain, seed, sizes) into the cache, then reused.

``builtin_dataset()`` returns the ``data.yaml`` of
``paths.datasets_root()/<domain>-s<seed>-<train>-<val>-<imgsz>/``. A missing dataset is generated into a
temporary folder next to it and renamed into place, under a file lock, so a reader never sees a partial
dataset and two processes never both generate it. A cached folder made by another generator version
(``synth.json``) is regenerated and swapped in the same way.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock, Timeout

from yolobench import paths
from yolobench.errors import UserError
from yolobench.fsutil import replace_dir

# The CI smoke profile: small enough to generate in seconds and train on a CPU in minutes.
SMOKE_TRAIN = 256
SMOKE_VAL = 64
SMOKE_IMGSZ = 256
DEFAULT_SEED = 0
DEFAULT_DOMAIN = "target"

LOCK_TIMEOUT_S = 600  # generating the largest sensible built-in set takes far less


def builtin_dir(domain: str = DEFAULT_DOMAIN, *, seed: int = DEFAULT_SEED, train: int = SMOKE_TRAIN,
                val: int = SMOKE_VAL, imgsz: int = SMOKE_IMGSZ) -> Path:
    return paths.datasets_root() / f"{domain}-s{seed}-{train}-{val}-{imgsz}"


def _is_current(folder: Path) -> bool:
    from yolobench.data.synth import GENERATOR_VERSION  # noqa: PLC0415

    try:
        meta = json.loads((folder / "synth.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("generator_version") == GENERATOR_VERSION and (folder / "data.yaml").is_file()


def builtin_dataset(domain: str = DEFAULT_DOMAIN, *, seed: int = DEFAULT_SEED, train: int = SMOKE_TRAIN,
                    val: int = SMOKE_VAL, imgsz: int = SMOKE_IMGSZ, progress: bool = False) -> Path:
    """Path of the built-in dataset's ``data.yaml``, generating the dataset first if needed."""
    from yolobench.data.synth import _validate, synthesize  # noqa: PLC0415

    _validate(domain, seed, train, val, imgsz)
    final = builtin_dir(domain, seed=seed, train=train, val=val, imgsz=imgsz)
    if _is_current(final):
        return final / "data.yaml"
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(final) + ".lock", timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"waited {LOCK_TIMEOUT_S:g} s for {lock.lock_file}, held by another yolobench process making "
                        f"the built-in dataset {final.name}; let it finish (or stop it) and run again") from None
    try:
        if _is_current(final):  # another process made it while we waited
            return final / "data.yaml"
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            synthesize(tmp, seed=seed, train=train, val=val, imgsz=imgsz, domain=domain, progress=progress)
            replace_dir(tmp, final)  # a stale (older generator) or damaged set is swapped out
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lock.release()
    return final / "data.yaml"
