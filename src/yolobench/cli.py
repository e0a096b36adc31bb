"""The ``yolobench`` command: a thin dispatcher over ``yolobench.commands.<name>`` modules.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Adding a command is adding a module and one line in ``COMMANDS``. User errors (``UserError``) are
printed as one line and exit 2. Faults of the machine, not of the input (a full disk, a folder that
cannot be written, memory) are one line too and exit 1 (``faults.describe``); ``--debug`` or
``YOLOBENCH_DEBUG=1`` shows their traceback. Nothing else is caught, so bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

import yolobench
from yolobench.errors import EXIT_BAD_INPUT, UserError

# Order is the order shown by --help.
COMMANDS = ("data", "build", "parity", "bench", "gate", "ab", "report", "history", "machines", "profile", "peak", "annotate")


def _load(name: str):
    try:
        return importlib.import_module(f"yolobench.commands.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"yolobench.commands.{name}":
            return None  # not part of this version
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yolobench",
        description="YOLOv5 on CPUs: build the sparsification ladder, check engine parity, benchmark, gate.",
    )
    parser.add_argument("--version", action="version", version=f"yolobench {yolobench.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of a fault (a full disk, a read-only folder); also YOLOBENCH_DEBUG=1")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from yolobench import children

    previous = children.install_sigterm_handler()  # a cancelled job's SIGTERM stops our children too
    try:
        return _main(argv)
    except children.Terminated:
        children.stop_all()  # children waited on by other threads (the main thread's were stopped on the way)
        command = (argv if argv is not None else sys.argv[1:])[:1] or [""]
        print(f"yolobench {command[0]}: terminated (SIGTERM); child processes stopped, finished work is kept, "
              "partial work was discarded", file=sys.stderr)
        return children.EXIT_TERMINATED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _rerun_in(checkout, argv: list[str] | None) -> int:
    """Run this command with ``checkout``'s own code (and so its recipes, thresholds and results/).

    One environment serves every clone (it is large) and installs yolobench in editable mode from the
    clone that last ran tox; a command typed in another clone must act on that clone, not on the
    installed one. Only a git checkout of the project is run so (``paths.not_runnable_reason``), and
    always with this one line first. The process is replaced, so signals, output and the exit status
    are the command's own.
    """
    from yolobench import paths

    args = list(sys.argv[1:] if argv is None else argv)
    print(f"yolobench: running the code of {checkout} (this environment's yolobench is installed from "
          f"{paths.installed_root()})", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "yolobench", *args], paths.environment_running(checkout))
    return 0  # pragma: no cover (execve does not return)


def _main(argv: list[str] | None) -> int:
    from yolobench import paths

    here = paths.other_checkout()
    if here is not None:  # before parsing: even --help would name the other checkout's files
        if paths.checkout_source(here) is None:
            print(f"yolobench: error: {paths.other_checkout_message(here)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        reason = paths.not_runnable_reason(here)  # only a git checkout of the project is run in place
        if reason is not None:
            print(f"yolobench: error: {paths.not_runnable_message(here, reason)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if os.environ.get(paths.RERUN_ENV) != str(here):
            return _rerun_in(here, argv)
        print(f"yolobench: error: {paths.other_checkout_message(here)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as err:
        print(f"yolobench {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        from yolobench import children

        children.stop_all()
        print(f"yolobench {args.command}: interrupted; finished work is kept, partial work was discarded",
              file=sys.stderr)
        return 130
    except (OSError, MemoryError) as err:
        from yolobench import faults

        if args.debug or os.environ.get(faults.DEBUG_ENV, "") not in ("", "0"):
            raise
        print(f"yolobench {args.command}: {faults.describe(err)}", file=sys.stderr)
        return faults.EXIT_FAULT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
