"""``yolobench gate``: fail (exit 1) when a run falls short of the thresholds or of a baseline run.

Prints one row per check per cell (measured, limit, ratio, verdict) and a summary line naming every
failing cell. Exit 0: every check passed; 1: a check failed; 2: an input could not be read.
``--suggest RUN.json`` prints a thresholds file with floors derived from that run instead;
``--study RUN.json ...`` gates every pair of runs made on unchanged code (the false-alarm rate).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yolobench import gate, paths
from yolobench.errors import EXIT_FAILED, EXIT_OK
from yolobench.runfile import load_run

HELP = "check a benchmark run against the committed thresholds and a baseline run (exit 1 on regression)"


def default_thresholds() -> Path:
    return paths.repo_root() / "results" / "thresholds.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--current", metavar="RUN.json", type=Path,
                      help="run file to check (pytest --benchmark-only --benchmark-json output)")
    what.add_argument("--suggest", metavar="RUN.json", type=Path,
                      help="print a thresholds file with floors derived from this run, and exit")
    what.add_argument("--study", metavar="RUN.json", type=Path, nargs="+",
                      help="runs of unchanged code, in the order made: gate every pair (earlier as "
                           "baseline) and report the false-alarm rate; exit 1 if any pair failed")
    parser.add_argument("--baseline", metavar="RUN.json", type=Path,
                        help="earlier run on the same machine to compare latency against")
    parser.add_argument("--thresholds", metavar="TOML", type=Path, default=None,
                        help=f"thresholds file (default: {default_thresholds()})")


def run(args: argparse.Namespace) -> int:
    thresholds_path = args.thresholds or default_thresholds()
    if args.suggest is not None:
        suggested_from = load_run(args.suggest)
        # `--suggest RUN > results/thresholds.toml` empties the file before we read it: fall back to the
        # built-in defaults then, rather than failing and leaving the file empty.
        if not thresholds_path.exists() or thresholds_path.stat().st_size == 0:
            print(f"note: {thresholds_path} is missing or empty; [defaults] use the built-in values",
                  file=sys.stderr)
            thresholds = None
        else:
            thresholds = gate.load_thresholds(thresholds_path)
        print(gate.suggest_thresholds(suggested_from, thresholds), end="")
        return EXIT_OK

    thresholds = gate.load_thresholds(thresholds_path)
    if args.study is not None:
        verdicts = gate.study([load_run(path) for path in args.study], thresholds)
        print(f"thresholds: {thresholds.path}")
        print(gate.format_study(verdicts))
        return EXIT_FAILED if any(v.failed for v in verdicts) else EXIT_OK
    current = load_run(args.current)
    baseline = load_run(args.baseline) if args.baseline is not None else None
    checks = gate.evaluate(current, baseline, thresholds)

    print(gate.describe_run("current", current))
    if baseline is not None:
        print(gate.describe_run("baseline", baseline))
    print(f"thresholds: {thresholds.path}")
    print()
    print(gate.format_table(checks))
    print()
    print("ratio: measured / floor for speedup and map50 (below 1 fails); current / baseline p50 for latency "
          "of the fastest of 3 sessions (fails above the factor only if the slowdown also exceeds the runs' "
          "noise: both runs' session spreads added, at least half of each IQR)")
    print(gate.summary(checks))
    return EXIT_FAILED if any(c.failed for c in checks) else EXIT_OK
