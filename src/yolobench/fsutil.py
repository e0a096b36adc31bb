"""Filesystem helpers shared by everything that publishes a finished folder.

Must not: know what the folder holds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


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
