"""Root conftest: registers yolobench's pytest plugins (fixtures/) for tests/ and benchmarks/."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

# One environment serves every clone, and it installs yolobench in editable mode from the clone that
# last ran tox. pytest run in this checkout must test this checkout's code (and read its recipes and
# results/): put its src/ first on the import path, for this process and every child it starts,
# before anything imports yolobench.
_HERE = Path(__file__).resolve().parent
_SRC = _HERE / "src"
_found = importlib.util.find_spec("yolobench")
if (_SRC / "yolobench").is_dir() and (_found is None or Path(_found.origin).resolve().parents[1] != _SRC):
    for _name in [m for m in sys.modules if m == "yolobench" or m.startswith("yolobench.")]:
        del sys.modules[_name]
    sys.path.insert(0, str(_SRC))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(_SRC), *filter(None, [os.environ.get("PYTHONPATH")])])

import yolobench  # noqa: E402,F401  (first of the library: keeps every library offline before anything imports them)
from yolobench import paths  # noqa: E402

pytest_plugins = ["fixtures.variants", "fixtures.parity_log", "fixtures.stopping"]


def pytest_configure(config):
    here = Path(__file__).resolve().parent
    if paths.installed_root() != here:  # only when this checkout has no src/yolobench to run
        raise pytest.UsageError(paths.other_checkout_message(here))
