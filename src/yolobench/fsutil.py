"""Filesystem helpers shared by everything that publishes a finished folder.

Must not: know what the folder holds.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it onto ``path``: a reader sees the
    old file or the new one, never half of one, and an interrupted write leaves no partial file. The
    temporary name is made here, not by mkstemp, so the file gets the user's usual permissions
    (mkstemp's are 0600). The temporary file keeps ``path``'s suffix (writers that pick a format by it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.filename is None and err.errno is not None:  # a write to an open file names no file: name it
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline="\n"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


# torch.save writes through its own C++ zip writer, which reports a short write (a full disk, a quota) as
# ``RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 20614784 vs 20614680`` (seen on
# a 20 MB filesystem) or "... file write failed", not as an OSError: the command line would show it as a bug.
_TORCH_SHORT_WRITE = re.compile(r"unexpected pos \d+ vs \d+|file write failed|PytorchStreamWriter failed writing")


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` through :func:`atomic_write` (no partial file, ever), with torch's
    report of a short write turned into ``OSError(ENOSPC, ..., path)``: the fault it is (one line, exit 1)."""
    import torch

    def save(tmp: Path) -> None:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:
            if not _TORCH_SHORT_WRITE.search(str(err)):
                raise
            raise OSError(errno.ENOSPC, f"No space left on device (torch.save: {str(err).splitlines()[0]})",
                          str(path)) from err

    return atomic_write(path, save)


def replace_dir(new: Path, final: Path) -> None:
    """Move the finished folder ``new`` to ``final`` with renames only (same filesystem).

    An existing ``final`` is first renamed aside and removed after the swap, so a reader sees either
    the old folder or the new one, never a half-written one.
    """
    if final.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.rename(final, aside / "previous")
        os.rename(new, final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(new, final)
