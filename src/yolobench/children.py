"""Child processes that end with their parent: every command that starts one goes through here.

A CI runner or a supervisor cancels a job by sending SIGTERM to the process it started. Python's
default for SIGTERM ends the parent at once and leaves its children running: `yolobench bench` would
die while its pytest child goes on measuring and writes the run file minutes later.

So the command line (``yolobench.cli``) turns SIGTERM into :class:`Terminated` (raised in the main
thread, like KeyboardInterrupt for SIGINT), and :func:`run` starts each child in a process group of its
own and, when the wait is interrupted by anything, stops the whole group: SIGTERM first, SIGKILL for
whatever is left after a grace period. The group matters because children have children (pytest
loads engines in preflight processes; DeepSparse compiles in one): stopping only the direct child
would orphan them.

A child in its own group does not receive the terminal's Ctrl-C itself; the parent does, and stops
the group on its way out, so Ctrl-C still ends everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Sequence

# Time a stopped child gets to exit after SIGTERM before its group is killed.
GRACE_S = 5.0
EXIT_TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so `except Exception` cannot swallow it."""


def _raise_terminated(signum, frame):  # noqa: ARG001 - a signal handler's signature
    raise Terminated()


def install_sigterm_handler():
    """Make SIGTERM raise :class:`Terminated` in the main thread (the command line calls this).

    Returns the handler it replaced, for ``signal.signal(signal.SIGTERM, previous)``.
    """
    return signal.signal(signal.SIGTERM, _raise_terminated)


def stop_group(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """End ``proc`` and every process in its group: SIGTERM, then SIGKILL after ``grace_s``."""
    if proc.poll() is not None:
        _kill_group(proc.pid, signal.SIGKILL)  # the child is gone; its own children may not be
        return
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _kill_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already empty


def run(command: Sequence[str], *, timeout: float | None = None, capture_output: bool = False,
        text: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` whose child, and the child's children, never outlive an interrupted wait.

    A timeout stops the group and raises ``subprocess.TimeoutExpired`` as ``subprocess.run`` does; an
    interrupt (Terminated, KeyboardInterrupt, any exception) stops the group and propagates.
    """
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    proc = subprocess.Popen(list(command), start_new_session=True, text=text if capture_output else None,
                            **kwargs)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        proc.communicate()
        raise
    except BaseException:
        stop_group(proc)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
