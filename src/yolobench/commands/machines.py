"""``yolobench machines RUN [RUN ...]``: the same matrix on several machines in one table.

Each run file comes from one machine (a CI runner type, a developer's box); the table puts their
speedups over the in-run reference side by side (comparable across machines, unlike latencies) and
names each machine's fastest engine per variant. Markdown on stdout, or ``--json``; ``--out FILE``
writes it instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from yolobench import machines
from yolobench.fsutil import atomic_write_text
from yolobench.runfile import load_run

HELP = "put runs from several machines side by side (speedups over the in-run reference, fastest engines)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, help="run files, one per machine (e.g. results/baselines/*.json)")
    parser.add_argument("--json", action="store_true", help="write JSON instead of markdown")
    parser.add_argument("--out", type=Path, default=None, help="write to this file instead of stdout")


def run(args: argparse.Namespace) -> int:
    cols = machines.columns([load_run(path) for path in args.runs])
    text = json.dumps(machines.as_json(cols), indent=1) + "\n" if args.json else machines.markdown(cols)
    if args.out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
