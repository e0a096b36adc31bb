#!/bin/sh
# Run the pinned tox from a small virtual environment of its own, so that set-up works on a stock
# Debian or Ubuntu python3 too: PEP 668 makes their `python3 -m pip install tox` stop with
# "externally-managed-environment", and Debian ships venv's pip bootstrap (ensurepip) separately.
# The runner venv is made without pip, and the system's own pip installs tox into it (`pip --python`,
# pip >= 22.3); where that pip is older, a venv with its own pip is made instead.
#   ./tox.sh [tox arguments]        e.g. ./tox.sh -e deepsparse
# PYTHON (default python3) is the interpreter; YOLOBENCH_TOX_RUNNER (default
# ~/.cache/yolobench/tox-runner) where the runner lives. tox's own environments are set in tox.ini.
set -eu
TOX_VERSION=4.67.15
PY=${PYTHON:-python3}
RUNNER=${YOLOBENCH_TOX_RUNNER:-${YOLOBENCH_HOME:-$HOME/.cache/yolobench}/tox-runner}

if ! "$RUNNER/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('tox') != '$TOX_VERSION')" 2>/dev/null; then
    echo "tox.sh: installing tox $TOX_VERSION into $RUNNER" >&2
    mkdir -p "$(dirname "$RUNNER")"
    if "$PY" -m venv --clear --without-pip "$RUNNER" && \
       "$PY" -m pip --python "$RUNNER/bin/python" install -q --disable-pip-version-check "tox==$TOX_VERSION"; then
        :
    elif "$PY" -m venv --clear "$RUNNER" && \
         "$RUNNER/bin/python" -m pip install -q --disable-pip-version-check "tox==$TOX_VERSION"; then
        :
    else
        echo "tox.sh: cannot make a virtual environment with $PY: install its venv and pip packages" \
             "(Debian/Ubuntu: sudo apt install python3-venv python3-pip) and run again" >&2
        exit 2
    fi
fi
exec "$RUNNER/bin/python" -m tox "$@"
