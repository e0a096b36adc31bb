"""The README's set-up works where pip may not install into the system Python (PEP 668).

Debian's and Ubuntu's python3 refuse `python3 -m pip install tox` ("externally-managed-environment").
pip's own PIP_REQUIRE_VIRTUALENV refuses installs into any interpreter that is not a virtual
environment in the same way, so the check runs on this machine's plain interpreter: the old README
command fails under it, ./tox.sh (what the README and .ci/run call) does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)  # the interpreter under any venv
TOX_VERSION = "4.67.15"


@pytest.fixture
def no_system_installs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PIP_USER")}
    return {**env, "PIP_REQUIRE_VIRTUALENV": "1", "PYTHON": BASE_PYTHON,
            "YOLOBENCH_TOX_RUNNER": str(tmp_path / "runner")}


def test_installing_into_the_system_python_is_refused_here(no_system_installs):
    done = subprocess.run([BASE_PYTHON, "-m", "pip", "install", f"tox=={TOX_VERSION}"], env=no_system_installs,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "virtualenv" in (done.stdout + done.stderr).lower()


@pytest.mark.slow
def test_tox_sh_sets_up_without_installing_into_the_system_python(no_system_installs, tmp_path):
    for _ in range(2):  # the second call finds the runner and installs nothing
        done = subprocess.run([str(REPO / "tox.sh"), "--version"], env=no_system_installs, cwd=REPO,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{TOX_VERSION} from {tmp_path / 'runner'}")
    assert "installing tox" not in done.stderr


def test_readme_and_ci_use_the_script():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "./tox.sh -e deepsparse" in readme and "\n./tox.sh\n" in readme
    assert "./tox.sh" in ci and "pip install" not in ci
