"""Faults of the machine (a full disk, a folder that cannot be written, memory) are one line and exit 1,
not a traceback; ``--debug`` / ``YOLOBENCH_DEBUG=1`` shows the traceback (yolobench.faults, yolobench.cli)."""

from __future__ import annotations

import errno

import pytest

from yolobench import cli, faults
from yolobench.commands import machines as machines_command


@pytest.fixture
def failing(monkeypatch):
    """`yolobench machines` replaced by one that raises the error the test sets."""
    state = {}

    def run(args):
        raise state["error"]

    monkeypatch.setattr(machines_command, "run", run)
    monkeypatch.delenv(faults.DEBUG_ENV, raising=False)
    return state


@pytest.mark.parametrize("error, words", [
    (OSError(errno.ENOSPC, "No space left on device", "/out/fps.png"), ["no space left", "/out/fps.png", "--out"]),
    (PermissionError(errno.EACCES, "Permission denied", "/store/x"), ["permission denied on /store/x"]),
    (OSError(errno.EROFS, "Read-only file system", "/ro/run.json"), ["read-only file system", "/ro/run.json"]),
    (MemoryError(), ["out of memory"]),
    (OSError(errno.EIO, "Input/output error", "/disk/a"), ["Input/output error: /disk/a", "--debug"]),
])
def test_a_fault_is_one_line_and_exit_1(failing, capsys, error, words):
    failing["error"] = error
    assert cli.main(["machines", "run.json"]) == faults.EXIT_FAULT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("yolobench machines: ") and "Traceback" not in err
    assert all(word in err for word in words), err


def test_debug_shows_the_traceback(failing, monkeypatch):
    failing["error"] = OSError(errno.ENOSPC, "No space left on device", "/out/x")
    with pytest.raises(OSError):
        cli.main(["--debug", "machines", "run.json"])
    monkeypatch.setenv(faults.DEBUG_ENV, "1")
    with pytest.raises(OSError):
        cli.main(["machines", "run.json"])


def test_a_bug_keeps_its_traceback(failing):
    failing["error"] = ZeroDivisionError("a bug")
    with pytest.raises(ZeroDivisionError):
        cli.main(["machines", "run.json"])
