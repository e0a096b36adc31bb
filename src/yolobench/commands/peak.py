"""``yolobench peak``: the machine's FP32/INT8 multiply-accumulate peak and memory bandwidth, and
(with a run file) each cell's effective throughput as a fraction of it."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HELP = "the machine's FP32/INT8 MAC peak and memory bandwidth; with --run, each cell's share of the peak"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, default=None, help="a run file: show each timed cell against the peak")
    parser.add_argument("--store", default=None, help="artifact store folder (default: ~/.cache/yolobench/store)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: every usable core)")
    parser.add_argument("--out", type=Path, default=None, help="also write the measurement (JSON) and table (.md)")


def run(args: argparse.Namespace) -> int:
    from yolobench import peak
    from yolobench.fsutil import atomic_write_text
    from yolobench.runfile import load_run
    from yolobench.store import Store
    from yolobench.timer import cpu_generation, default_threads, machine_info

    run_file = load_run(args.run) if args.run else None  # a bad file fails before the measurement
    threads = args.threads or default_threads()
    print(f"measuring the peak on {threads} threads (a few seconds; keep the machine idle)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="yolobench-peak-") as folder:
        result = peak.measure(threads, Path(folder))
    rows, skipped = peak.roofline_rows(run_file, Store(args.store)) if run_file else (None, [])
    machine = machine_info()
    text = (f"Machine: {machine.get('cpu_model')} [{cpu_generation(machine) or 'unknown generation'}], "
            f"`yolobench {' '.join(sys.argv[1:])}`" + (f", run {run_file.path}" if run_file else "") + "\n\n"
            + peak.format_peak(result, rows)
            + "".join(f"- not shown: {why}\n" for why in skipped))
    print(text, end="")
    if args.out:
        atomic_write_text(args.out.with_suffix(".md"), text)
        atomic_write_text(args.out.with_suffix(".json"), json.dumps(
            {"machine": machine, "cpu_generation": cpu_generation(machine), **result.as_dict()}, indent=1) + "\n")
        print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return 0
