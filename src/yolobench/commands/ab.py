"""``yolobench ab``: is B slower than A? Paired, interleaved, fresh-process timing (see yolobench.ab).

Exit 0: not slower beyond the threshold; 1: slower (the cell and its interval named); 2: bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "paired A/B timing of two models (or two engine settings) in alternating fresh processes; exit 1 if B is slower"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from yolobench import ab

    parser.add_argument("--a", required=True, type=Path, metavar="A.onnx", help="the baseline model")
    parser.add_argument("--b", type=Path, default=None, metavar="B.onnx", help="the candidate (default: A again)")
    parser.add_argument("--engine", required=True, help="engine setting for A, e.g. openvino or openvino-f32")
    parser.add_argument("--b-engine", default=None, help="engine setting for B (default: --engine)")
    parser.add_argument("--imgsz", type=int, default=None, help="input size for a dynamic model")
    parser.add_argument("--threads", type=int, default=None, help="threads per engine (default: usable cores)")
    parser.add_argument("--threshold", type=float, default=ab.DEFAULT_THRESHOLD,
                        help=f"B counts as slower above this ratio of A (default {ab.DEFAULT_THRESHOLD})")
    parser.add_argument("--max-pairs", type=int, default=ab.DEFAULT_MAX_PAIRS,
                        help=f"stop here if still unclear (default {ab.DEFAULT_MAX_PAIRS})")
    parser.add_argument("--seconds", type=float, default=ab.DEFAULT_SECONDS,
                        help=f"timed share of each process after warm-up (default {ab.DEFAULT_SECONDS})")
    parser.add_argument("--cells", type=int, default=1,
                        help="comparisons made together (Bonferroni: each interval at 1 - 0.05/cells)")
    parser.add_argument("--quiet", action="store_true", help="only the verdict line")


def run(args: argparse.Namespace) -> int:
    from yolobench import ab, engines
    from yolobench.errors import EXIT_FAILED, EXIT_OK, UserError

    a, b = args.a, args.b or args.a
    engine_a, engine_b = args.engine, args.b_engine or args.engine
    for path in (a, b):
        engines.inspect_onnx(path)  # one-line error for a missing or unusable file before any timing
    for label in (engine_a, engine_b):
        engines.get_setting(label)
    if a == b and engine_a == engine_b:
        print("note: A and B are the same model on the same engine setting: a false-alarm check", file=sys.stderr)
    if args.threshold <= 1.0 or args.max_pairs < ab.MIN_PAIRS or args.seconds <= 0 or args.cells < 1:
        raise UserError(f"--threshold must be > 1, --max-pairs >= {ab.MIN_PAIRS}, --seconds > 0, --cells >= 1")
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    label = f"{b.name} on {engine_b} vs {a.name} on {engine_a}"
    try:
        comparison, ci = ab.run_sequential(
            lambda: ab.measure_in_child(str(a), engine_a, threads=args.threads, imgsz=args.imgsz, seconds=args.seconds),
            lambda: ab.measure_in_child(str(b), engine_b, threads=args.threads, imgsz=args.imgsz, seconds=args.seconds),
            threshold=args.threshold, cells=args.cells, max_pairs=args.max_pairs, label=label, say=say)
    except RuntimeError as err:
        raise UserError(str(err)) from None
    clear = "" if comparison.clear else f" (not clear after {ci.pairs} pairs: the estimate decided)"
    print(f"{label}: B/A {ci.ratio:.3f} [{ci.low:.3f}, {ci.high:.3f}] after {ci.pairs} pairs, "
          f"{comparison.seconds:.0f} s: {comparison.verdict} (threshold {args.threshold:g}){clear}")
    return EXIT_FAILED if comparison.verdict == ab.SLOWER else EXIT_OK
