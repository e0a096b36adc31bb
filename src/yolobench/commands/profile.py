"""``yolobench profile``: where one cell's time goes, layer by layer (optionally beside another cell)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yolobench.commands import common

HELP = "per-layer time of a built variant on an engine, by model block, optionally beside a second cell"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", required=True, help="catalogue variant (must be built), e.g. pruned_quant")
    parser.add_argument("--engine", required=True, help="onnxruntime, deepsparse, openvino or openvino_nncf")
    parser.add_argument("--vs", metavar="VARIANT:ENGINE", default=None,
                        help="a second cell to show beside it, e.g. oneshot:openvino")
    common.add_profile(parser)
    parser.add_argument("--imgsz", type=int, default=None, help="export size to profile (default: the profile's first)")
    parser.add_argument("--data", default=None, help="the data.yaml the variants were built on (default: built-in)")
    parser.add_argument("--store", default=None, help="artifact store folder (default: ~/.cache/yolobench/store)")
    parser.add_argument("--threads", type=int, default=None, help="engine threads (default: all usable cores)")
    parser.add_argument("--runs", type=int, default=20, help="profiled inferences averaged per cell (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="inferences before profiling (default 5)")
    parser.add_argument("--top", type=int, default=None, help="show only the N blocks that take the most time")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")


def _cell(text: str) -> tuple[str, str]:
    from yolobench.errors import UserError

    variant, sep, engine = text.partition(":")
    if not sep or not variant or not engine:
        raise UserError(f"--vs {text!r}: give VARIANT:ENGINE, e.g. oneshot:openvino")
    return variant, engine


def run(args: argparse.Namespace) -> int:
    from yolobench import annotate, catalogue, engines, profiling
    from yolobench.errors import UserError
    from yolobench.fsutil import atomic_write_text
    from yolobench.store import Store

    cells = [(args.variant, args.engine)] + ([_cell(args.vs)] if args.vs else [])
    profile = catalogue.get_profile(args.profile)
    imgsz = args.imgsz or profile.export_imgsz[0]
    if imgsz not in profile.export_imgsz:
        raise UserError(f"--imgsz {imgsz}: profile {profile.name} exports at "
                        f"{', '.join(map(str, profile.export_imgsz))} px only")
    for variant, engine in cells:  # cheap checks before any model loads
        catalogue.get_variant(variant)
        engines.engine_class(engine)
    store = Store(args.store)
    results = []
    for variant, engine in cells:
        artifact = annotate.load_built(variant, args.profile, args.data, store)
        if artifact is None:
            raise UserError(f"variant {variant} is not built for profile {args.profile}: run "
                            f"`yolobench build --variants {variant} --profile {args.profile}` first")
        print(f"profiling {variant} on {engine} at {imgsz} px ({args.runs} runs)", file=sys.stderr, flush=True)
        results.append(profiling.profile_cell(artifact, variant, engine, imgsz=imgsz, threads=args.threads,
                                              runs=args.runs, warmup=args.warmup))
    from yolobench.timer import cpu_generation, machine_info

    machine = machine_info()
    text = (f"Per-layer profile, {machine.get('cpu_model')} [{cpu_generation(machine) or 'unknown generation'}], "
            f"`yolobench {' '.join(sys.argv[1:])}`\n\n" + profiling.format_profiles(results, top=args.top))
    print(text, end="")
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
