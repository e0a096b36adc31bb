"""Where yolobench keeps things outside the checkout.

``YOLOBENCH_HOME`` (default ``~/.cache/yolobench``) holds the artifact store, built-in datasets and
ultralytics' settings. ``YOLOBENCH_STORE`` overrides the store alone.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("YOLOBENCH_HOME", Path.home() / ".cache" / "yolobench")).expanduser()


def store_root() -> Path:
    return Path(os.environ.get("YOLOBENCH_STORE", home() / "store")).expanduser()


def datasets_root() -> Path:
    return home() / "datasets"


def repo_root() -> Path:
    """The checkout (recipes/, results/ live here)."""
    return Path(__file__).resolve().parents[2]
