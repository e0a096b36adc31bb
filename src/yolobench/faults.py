"""Faults of the machine, not of the input: one line that names what happened, where, and what to do.

A full disk, a folder the user cannot write, a read-only filesystem, memory: the command stops with exit
status 1 (a fault; 2 is bad input) and this one line, not a traceback. ``--debug`` or ``YOLOBENCH_DEBUG=1``
shows the traceback. What the interrupted step leaves is the writer's business: store entries, weights and
training checkpoints, run files, reports, datasets and every other file a command writes are written to a
temporary name (or folder) and renamed when whole, so a fault leaves the previous version or nothing;
docs/faults.md lists each writer and the faults tried on it (tests/test_faults.py).

Must not: decide whether to catch (the command line does), retry, or clean up.
"""

from __future__ import annotations

import errno

EXIT_FAULT = 1
DEBUG_ENV = "YOLOBENCH_DEBUG"
_WHERE = "(--out, --store, or YOLOBENCH_HOME for the store and datasets)"


def describe(err: BaseException) -> str:
    """The one line for a fault (an OSError or MemoryError)."""
    if isinstance(err, MemoryError):
        return "out of memory: close other programs, or build/benchmark fewer variants at once (--variants)"
    path = getattr(err, "filename", None)
    where = f" writing {path}" if path else ""
    code = getattr(err, "errno", None)
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return (f"no space left on the device{where}: free space there or write elsewhere {_WHERE}; "
                "the step that was writing stopped, nothing half-written is kept")
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied{' on ' + str(path) if path else ''}: use a folder you can write {_WHERE}"
    if code == errno.EROFS:
        return f"read-only file system{where}: write elsewhere {_WHERE}"
    detail = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return f"{detail}{': ' + str(path) if path else ''} (run with --debug for the traceback)"
