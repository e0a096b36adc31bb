"""The one place that keeps every library offline and silent.

yolobench never downloads weights, datasets or fonts and never sends analytics. ``apply()`` must run
before ultralytics, sparseml, sparsezoo or deepsparse is imported (it is called from
``yolobench/__init__.py``). It only sets defaults the user has not set, except the analytics switches,
which are always forced off.

Must not: import any of the heavy libraries itself (that would defeat the order above).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

# Forced: these libraries phone home otherwise.
FORCED_ENV = {
    "NM_DISABLE_ANALYTICS": "1",  # sparseml / sparsezoo / deepsparse usage analytics
    "SPARSEZOO_API_URL": "http://127.0.0.1:9",  # any accidental zoo lookup fails fast on loopback
    "YOLO_OFFLINE": "1",  # ultralytics: no hub, no GitHub asset downloads, no version checks
    "HF_HUB_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
}

# Defaults: quiet logs; the user may override.
DEFAULT_ENV = {
    "YOLO_VERBOSE": "False",
    "TQDM_DISABLE": "1",
    "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore::DeprecationWarning"),
}

# ultralytics settings written to its settings file; sync=False stops its Events telemetry.
ULTRALYTICS_SETTINGS = {"sync": False, "hub": False, "wandb": False, "tensorboard": False,
                        "mlflow": False, "clearml": False, "comet": False, "dvc": False,
                        "neptune": False, "raytune": False}

_applied = False


def apply() -> None:
    """Set the environment so that nothing reaches the network. Idempotent."""
    global _applied
    for key, value in FORCED_ENV.items():
        os.environ[key] = value
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    # ultralytics keeps its settings (and would keep downloaded fonts) in YOLO_CONFIG_DIR; point it at
    # our own cache so that the user's global settings are not rewritten by a test run.
    if "YOLO_CONFIG_DIR" not in os.environ:
        config_dir = Path(os.environ.get("YOLOBENCH_HOME", Path.home() / ".cache" / "yolobench")) / "ultralytics"
        try:
            config_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            config_dir = Path(tempfile.gettempdir()) / "yolobench-ultralytics"
            config_dir.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    # sparseml writes modifier logs to ./sparse_logs (the checkout) unless in its "test mode", whose
    # only effect is to take the log folder from NM_TEST_LOG_DIR.
    os.environ.setdefault("NM_TEST_MODE", "1")
    os.environ.setdefault("NM_TEST_LOG_DIR", str(Path(os.environ.get(
        "YOLOBENCH_HOME", Path.home() / ".cache" / "yolobench")) / "logs" / "sparseml"))
    # sparseml's ONNX conversion logs every transform at INFO: keep only warnings and errors. Its own
    # import (sparseml/log.py) sets the "sparseml" logger back to INFO, so the levels go on the child
    # loggers it never touches.
    for name in ("sparseml", "sparseml.exporters", "sparseml.pytorch", "sparseml.onnx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # sparseml imports pkg_resources at import time; the deprecation warning is noise for users.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    _applied = True


def configure_ultralytics() -> None:
    """Turn off ultralytics' telemetry and integrations (call after importing ultralytics)."""
    from ultralytics.utils import SETTINGS  # noqa: PLC0415 (must follow apply())

    # Only keys this ultralytics version knows; settings differ between releases.
    changed = {k: v for k, v in ULTRALYTICS_SETTINGS.items() if k in SETTINGS and SETTINGS[k] != v}
    if changed:
        SETTINGS.update(changed)
