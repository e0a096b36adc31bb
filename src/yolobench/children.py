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

The same own group puts a child outside its parent's group, so stopping the parent's group (what
`yolobench bench` does to its pytest) no longer reaches the grandchildren: a process that starts
children here and may be stopped by a signal must stop them itself. :func:`run` keeps every child it
is waiting on in a registry, and :func:`stop_all` stops all of them (from any thread's waits); the
command line calls it on SIGTERM and Ctrl-C, and the project's pytest (``fixtures/stopping.py``) has a
SIGTERM handler that calls it before pytest ends, so a cancelled `bench` leaves no preflight, memory
or DeepSparse process behind. (SIGKILL cannot be handled: whatever a killed process started lives on.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
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


# Every child run() is waiting on, whichever thread waits: what stop_all() stops. No lock: a signal
# handler reads it in the main thread, which may be the one adding to it (a lock would deadlock there);
# a set's add, discard and copy are each atomic in CPython.
_RUNNING: set[subprocess.Popen] = set()


def running() -> list[subprocess.Popen]:
    """The children :func:`run` is waiting on now."""
    return list(_RUNNING)


def stop_all(grace_s: float = GRACE_S) -> None:
    """Stop every child :func:`run` is waiting on, and their groups: SIGTERM to all, SIGKILL after ``grace_s``
    to whatever is left. Safe in a signal handler: it never blocks on a lock a waiting thread holds."""
    procs = running()
    for proc in procs:
        _kill_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:  # with a timeout, Popen.wait never blocks on the lock another wait may hold
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in procs:
        _kill_group(proc.pid, signal.SIGKILL)


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
    _RUNNING.add(proc)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        proc.communicate()
        raise
    except BaseException:
        stop_group(proc)
        raise
    finally:
        _RUNNING.discard(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
