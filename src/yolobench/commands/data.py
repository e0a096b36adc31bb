"""``yolobench data``: generate the synthetic dataset, locate the built-in one, validate any dataset.

    yolobench data synth --out DIR [--seed S] [--train N] [--val M] [--imgsz Z] [--domain target|source]
    yolobench data builtin [--domain ...] [--seed ...] [--train ...] [--val ...] [--imgsz ...]
    yolobench data check DATA_YAML

Heavy imports (OpenCV, Pillow) happen in ``run`` only: every ``yolobench`` invocation imports this module
to build its help.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from yolobench.data.builtin import DEFAULT_DOMAIN, DEFAULT_SEED, SMOKE_IMGSZ, SMOKE_TRAIN, SMOKE_VAL

HELP = "generate the synthetic dataset (synth, builtin) or validate a YOLO data.yaml (check)"

DOMAINS = ("target", "source")


def _add_generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="dataset seed (default %(default)s)")
    p.add_argument("--train", type=int, default=SMOKE_TRAIN, metavar="N", help="train images (default %(default)s)")
    p.add_argument("--val", type=int, default=SMOKE_VAL, metavar="M", help="val images (default %(default)s)")
    p.add_argument("--imgsz", type=int, default=SMOKE_IMGSZ, metavar="Z",
                   help="image side in pixels (default %(default)s)")
    p.add_argument("--domain", choices=DOMAINS, default=DEFAULT_DOMAIN,
                   help="target: circle/triangle/square; source: star/cross/ring, for transfer learning "
                        "(default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", title="actions", required=True)

    p = sub.add_parser("synth", help="write a deterministic synthetic YOLO dataset into a folder",
                       description="Write a deterministic synthetic YOLO detection dataset: "
                                   "DIR/images/{train,val}/*.png, DIR/labels/{train,val}/*.txt, DIR/data.yaml.")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (new or empty)")
    _add_generation_args(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace images/, labels/, data.yaml and synth.json already in DIR")

    p = sub.add_parser("builtin", help="print the data.yaml of the cached built-in dataset (made if absent)",
                       description="Print the path of the built-in dataset's data.yaml under the yolobench "
                                   "cache (YOLOBENCH_HOME), generating it first if it is not there.")
    _add_generation_args(p)

    p = sub.add_parser("check", help="validate a YOLO data.yaml and its images and labels; print a summary",
                       description="Validate a YOLO-format detection dataset (ultralytics or Roboflow layout). "
                                   "Exit 0 with a summary, or 2 with one line naming the bad file and line.")
    p.add_argument("data_yaml", type=Path, metavar="DATA_YAML", help="the dataset's data.yaml")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "synth":
        from yolobench.data.synth import synthesize  # noqa: PLC0415

        out: Path = args.out
        if args.overwrite:
            for name in ("images", "labels"):
                shutil.rmtree(out / name, ignore_errors=True)
            for name in ("data.yaml", "synth.json"):
                (out / name).unlink(missing_ok=True)
        result = synthesize(out, seed=args.seed, train=args.train, val=args.val, imgsz=args.imgsz,
                            domain=args.domain, progress=not args.quiet)
        if not args.quiet:
            print(f"yolobench data synth: {sum(result.images.values())} images, "
                  f"{sum(result.boxes.values())} boxes", file=sys.stderr)
        print(result.data_yaml)
        return 0
    if args.data_command == "builtin":
        from yolobench.data.builtin import builtin_dataset  # noqa: PLC0415

        print(builtin_dataset(args.domain, seed=args.seed, train=args.train, val=args.val, imgsz=args.imgsz,
                              progress=not args.quiet))
        return 0
    if args.data_command == "check":
        from yolobench.data.check import check_dataset  # noqa: PLC0415

        print(check_dataset(args.data_yaml).summary())
        return 0
    raise AssertionError(args.data_command)  # pragma: no cover (argparse enforces the choices)
