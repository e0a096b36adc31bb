"""Root conftest: registers yolobench's pytest plugins (fixtures/) for tests/ and benchmarks/."""

from pathlib import Path

import pytest

import yolobench  # noqa: F401  (first: keeps every library offline before anything imports them)
from yolobench import paths

pytest_plugins = ["fixtures.variants", "fixtures.parity_log"]


def pytest_configure(config):
    # One environment serves every clone; its editable yolobench is the clone that last ran tox. Tests
    # of this checkout must run this checkout's code (and read its recipes and results/).
    here = Path(__file__).resolve().parent
    if paths.installed_root() != here:
        raise pytest.UsageError(paths.other_checkout_message(here))
