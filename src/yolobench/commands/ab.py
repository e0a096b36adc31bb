"""``yolobench ab``: is B slower than A? Paired, interleaved, fresh-process timing (see yolobench.ab).

Two files (``--a A.onnx --b B.onnx``), one file on two engine settings (``--b-engine``), or catalogue
variants (``--variant V --engine E``): B is this checkout's artifact, A the same variant built by
another commit's code (``--base-ref REF``: its recipes, builder and engine settings) or found in
another store (``--base-store DIR``). Several variants and engines are several cells, compared together
(their intervals widened for the count).

Exit 0: not slower beyond the threshold; 1: slower (the cell and its interval named); 2: bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

HELP = "paired A/B timing of two models (or two engine settings) in alternating fresh processes; exit 1 if B is slower"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from yolobench import ab
    from yolobench.commands import common

    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--a", type=Path, metavar="A.onnx", help="the baseline model")
    what.add_argument("--variant", metavar="V[,V2]",
                      help="catalogue variant(s): B is this checkout's artifact, A comes from --base-ref or "
                           "--base-store ('all': every variant)")
    parser.add_argument("--b", type=Path, default=None, metavar="B.onnx", help="the candidate (default: A again)")
    parser.add_argument("--engine", required=True,
                        help="engine setting for A, e.g. openvino, openvino-f32 or onnxruntime-nospin (one speed "
                             "per process: fewer pairs); with --variant a comma list (one cell per engine)")
    parser.add_argument("--b-engine", default=None, help="engine setting for B (default: --engine)")
    base = parser.add_mutually_exclusive_group()
    base.add_argument("--base-ref", metavar="REF",
                      help="with --variant: A is built and run by this commit's code (a git worktree; its "
                           "artifacts go into the same store); cells identical at REF are skipped")
    base.add_argument("--base-store", type=Path, metavar="DIR", help="with --variant: A is the same key in this store")
    common.add_profile(parser, default=os.environ.get("YOLOBENCH_PROFILE") or "smoke")
    parser.add_argument("--data", default=None, help="with --variant: your data.yaml (default: built-in data)")
    parser.add_argument("--store", type=Path, default=None, help="artifact store for B (default: the usual)")
    parser.add_argument("--imgsz", type=int, default=None,
                        help="input size (default: the model's own; a variant's first export size)")
    parser.add_argument("--threads", type=int, default=None, help="threads per engine (default: usable cores)")
    parser.add_argument("--threshold", type=float, default=ab.DEFAULT_THRESHOLD,
                        help=f"B counts as slower above this ratio of A (default {ab.DEFAULT_THRESHOLD})")
    parser.add_argument("--max-pairs", type=int, default=ab.DEFAULT_MAX_PAIRS,
                        help=f"stop here if still unclear (default {ab.DEFAULT_MAX_PAIRS})")
    parser.add_argument("--seconds", type=float, default=ab.DEFAULT_SECONDS,
                        help=f"timed share of each process after warm-up (default {ab.DEFAULT_SECONDS})")
    parser.add_argument("--cells", type=int, default=None,
                        help="comparisons made together (Bonferroni: each interval at 1 - 0.05/cells; "
                             "default: the cells of this command)")
    parser.add_argument("--quiet", action="store_true", help="only the verdict lines")


@dataclass
class Cell:
    label: str
    a_model: str
    b_model: str
    engine_a: str
    engine_b: str
    a_checkout: Path | None = None  # run A with this checkout's code (another commit)


def _check_numbers(args) -> None:
    from yolobench import ab
    from yolobench.errors import UserError

    if args.threshold <= 1.0 or args.max_pairs < ab.MIN_PAIRS or args.seconds <= 0 or (args.cells or 1) < 1:
        raise UserError(f"--threshold must be > 1, --max-pairs >= {ab.MIN_PAIRS}, --seconds > 0, --cells >= 1")


def run(args: argparse.Namespace) -> int:
    from yolobench import engines
    from yolobench.errors import UserError

    _check_numbers(args)
    if args.variant is None:
        if args.base_ref or args.base_store:
            raise UserError("--base-ref and --base-store choose A for --variant; with --a, give --b")
        a, b = args.a, args.b or args.a
        engine_a, engine_b = args.engine, args.b_engine or args.engine
        for path in (a, b):
            engines.inspect_onnx(path)  # one-line error for a missing or unusable file before any timing
        for label in (engine_a, engine_b):
            engines.get_setting(label)
        if a == b and engine_a == engine_b:
            print("note: A and B are the same model on the same engine setting: a false-alarm check", file=sys.stderr)
        return _compare(args, [Cell(f"{b.name} on {engine_b} vs {a.name} on {engine_a}", str(a), str(b),
                                    engine_a, engine_b)])
    if args.b is not None or args.b_engine is not None:
        raise UserError("--variant compares one variant across commits or stores: --b and --b-engine belong to --a")
    if not (args.base_ref or args.base_store):
        raise UserError("--variant needs A: --base-ref REF (another commit's code) or --base-store DIR")
    return _variant_cells(args)


def _variant_cells(args) -> int:
    from yolobench import ab, builder, catalogue, engines, paths
    from yolobench.errors import UserError
    from yolobench.store import Store

    names = list(catalogue.VARIANT_NAMES) if args.variant == "all" else catalogue.parse_variants(args.variant)
    engine_names = _settings(args.engine)
    store = Store(args.store)
    say = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    b_entries = {}
    for name in names:
        artifact = builder.build(name, args.profile, args.data, store=store, progress=say)
        b_entries[name] = artifact
    if args.base_store is not None:
        base = Store(args.base_store)
        cells = []
        for name, artifact in b_entries.items():
            found = base.get(name, artifact.key)
            if found is None:
                raise UserError(f"{args.base_store} has no {name} (key {artifact.key}); build it there: "
                                f"yolobench build --variants {name} --profile {args.profile} --store {args.base_store}")
            cells += [_cell(name, found.path, artifact, e, None, args) for e in engine_names]
        return _compare(args, cells)
    root = paths.repo_root()
    commit = ab.resolve_ref(root, args.base_ref)
    engine_changed = ab.engine_code_changed(root, commit)
    with ab.worktree_at(root, commit) as tree:
        cells = []
        for name, artifact in b_entries.items():
            say(f"[{name}] building it with the code of {args.base_ref} ({commit[:12]})")
            key = ab.build_with(tree, name, args.profile, args.data, store.root)
            if key == artifact.key and not engine_changed:
                print(f"{name}: the same artifact (key {key}) and engine settings at {args.base_ref}: "
                      "nothing to compare", flush=True)
                continue
            entry = store.entry_dir(name, key)
            cells += [_cell(name, entry, artifact, e, tree if engine_changed else None, args) for e in engine_names]
        if not cells:
            print(f"ab: passed: no cell differs from {args.base_ref}")
            return 0
        return _compare(args, cells)


def _settings(text: str) -> list[str]:
    """``--engine`` with --variant: a comma list of engine settings (``onnxruntime-nospin``, ``openvino-f32``
    or a plain engine name), each checked, in the order given."""
    from yolobench import engines
    from yolobench.errors import UserError

    labels = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if not labels:
        raise UserError(f"--engine names no engine: choose from {', '.join(engines.engine_names())}")
    for label in labels:
        engines.get_setting(label)
    return labels


def _cell(name: str, a_entry: Path, artifact, engine: str, a_checkout: Path | None, args) -> Cell:
    imgsz = args.imgsz or artifact.imgsz
    return Cell(f"{name}-{engine}-{imgsz}", str(a_entry), str(artifact.path), engine, engine, a_checkout)


def _compare(args, cells: list[Cell]) -> int:
    from yolobench import ab
    from yolobench.errors import EXIT_FAILED, EXIT_OK, UserError

    count = args.cells or len(cells)
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    slower = []
    for cell in cells:
        def measure(model, engine, checkout=None):
            return lambda: ab.measure_in_child(model, engine, threads=args.threads, imgsz=args.imgsz,
                                               seconds=args.seconds, checkout=checkout)
        try:
            comparison, ci = ab.run_sequential(
                measure(cell.a_model, cell.engine_a, cell.a_checkout), measure(cell.b_model, cell.engine_b),
                threshold=args.threshold, cells=count, max_pairs=args.max_pairs, label=cell.label, say=say)
        except RuntimeError as err:
            raise UserError(str(err)) from None
        clear = "" if comparison.clear else f" (not clear after {ci.pairs} pairs: slower only if the estimate passes the threshold and the interval excludes 1)"
        line = (f"{cell.label}: B/A {ci.ratio:.3f} [{ci.low:.3f}, {ci.high:.3f}] after {ci.pairs} pairs, "
                f"{comparison.seconds:.0f} s: {comparison.verdict} (threshold {args.threshold:g}){clear}")
        print(line, flush=True)
        if comparison.verdict == ab.SLOWER:
            slower.append(line)
    if len(cells) > 1:
        intervals = f"intervals at {1 - ab.DEFAULT_ALPHA / count:.4g} for {count} cells"
        print(f"ab: {'FAILED' if slower else 'passed'}: {len(slower)} of {len(cells)} cells slower ({intervals})")
    return EXIT_FAILED if slower else EXIT_OK
