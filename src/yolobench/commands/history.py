"""``yolobench history``: the asv history of every recorded run (record a run file, publish the HTML)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "record run files into the asv history (results/asv) and publish it as offline HTML (results/asv-html)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="{record,publish}", required=True)
    record = sub.add_parser("record", help="add run files' numbers to the history (one point per commit, "
                                           "machine and profile; the later run of a commit wins)")
    record.add_argument("runs", nargs="+", type=Path, metavar="RUN.json.gz", help="run files (plain or .gz)")
    record.add_argument("--results", type=Path, default=None, help="asv results folder (default: results/asv)")
    publish = sub.add_parser("publish", help="write the history's HTML (asv publish, made to work offline)")
    publish.add_argument("--results", type=Path, default=None, help="asv results folder (default: results/asv)")
    publish.add_argument("--out", type=Path, default=None, help="HTML folder (default: results/asv-html)")
    publish.add_argument("--quiet", action="store_true", help="no asv progress lines")


def run(args: argparse.Namespace) -> int:
    from yolobench import paths

    root = paths.repo_root()
    results = (args.results or root / "results" / "asv").expanduser().resolve()
    if args.action == "record":
        from yolobench.errors import UserError
        from yolobench.history.asvresults import record

        refused = 0
        for run_file in args.runs:
            try:
                done = record(run_file, results)
            except UserError as err:  # the others are still recorded; the exit status says one was not
                print(f"yolobench history: error: {err}", file=sys.stderr)
                refused += 1
                continue
            if done.skipped:
                print(f"{run_file}: not recorded: {done.skipped}", file=sys.stderr)
            else:
                print(f"{run_file}: {done.points} points for {done.commit[:12]} on {done.machine} "
                      f"({done.profile}) -> {results}", file=sys.stderr)
        return 2 if refused else 0
    from yolobench.history.publish import publish

    out = (args.out or root / "results" / "asv-html").expanduser().resolve()
    publish(results, out, config=root / "asv.conf.json", quiet=args.quiet)
    print(f"history: {out / 'index.html'} (serve it offline: python -m http.server -d {out}, "
          "then open http://localhost:8000)", file=sys.stderr)
    return 0
