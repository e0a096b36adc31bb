"""``yolobench bench``: run the benchmark matrix (``pytest benchmarks --benchmark-only``) into a run file.

A thin wrapper: it builds the pytest command line (variants, engines, profile, data, image size,
threads, store, ``--benchmark-json``), runs it with this Python in the repository root and returns
pytest's exit status (0 every selected cell ran or was skipped with its reason, 1 a cell failed, 2-4 a
usage or collection error, 5 nothing selected). Arguments after ``--`` go to pytest unchanged.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from yolobench import children, paths
from yolobench.commands import common

HELP = "benchmark every variant on every engine (pytest-benchmark) and write a run file for the gate"

# Where run files go by default: one per run, named by UTC time and profile, beside the history.
RUNS_DIR = Path("results") / "runs"


def default_out(profile: str) -> Path:
    return paths.repo_root() / RUNS_DIR / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{profile}.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", default=None, help="comma-separated variants (default: the whole catalogue)")
    common.add_engines(parser, what="engines to benchmark, in this order")
    common.add_profile(parser)
    parser.add_argument("--data", default=None, help="your YOLO-format data.yaml (default: the built-in dataset)")
    parser.add_argument("--imgsz", type=int, default=None, help="export size to run at (default: the profile's first)")
    parser.add_argument("--threads", type=int, default=None, help="threads per engine (default: every usable core)")
    parser.add_argument("--sessions", type=int, default=None,
                        help="independently loaded sessions per cell, run in passes over the matrix (default: 3)")
    parser.add_argument("--store", default=None, help="artifact store folder (default: ~/.cache/yolobench/store)")
    parser.add_argument("--scenarios", default=None,
                        help="after the matrix, also measure e2e (frame in, boxes out), throughput (concurrent "
                             "streams), memory (peak RSS), comma-separated, or all (default: none)")
    parser.add_argument("--scenario-variants", default=None,
                        help="comma-separated variants the scenarios run on (default: the matrix's)")
    parser.add_argument("--streams", type=int, default=None,
                        help="streams of the throughput scenario (default: every usable core, one thread each)")
    parser.add_argument("-k", dest="keyword", default=None, help="pytest -k expression, e.g. pruned_quant")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"run file to write (default: {RUNS_DIR}/<UTC time>-<profile>.json)")
    parser.add_argument("--dry-run", action="store_true", help="print the pytest command and exit")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER,
                        help="after --: more pytest arguments (e.g. -- -x --benchmark-columns=median)")


def pytest_command(args: argparse.Namespace, out: Path) -> list[str]:
    """The pytest command line this run executes."""
    command = [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", f"--benchmark-json={out}",
               f"--yb-profile={args.profile}"]
    for option in ("variants", "engines", "data", "imgsz", "threads", "sessions", "store", "scenarios",
                   "scenario_variants", "streams"):
        value = getattr(args, option)
        if value is not None and option == "engines":
            value = ",".join(common.engine_list(value))
        if value is not None and option in ("data", "store"):
            value = Path(value).expanduser().resolve()  # pytest runs in the repository root, not here
        if value is not None:
            command.append(f"--yb-{option.replace('_', '-')}={value}")
    if args.keyword:
        command += ["-k", args.keyword]
    extra = list(args.pytest_args or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return command + extra


def run(args: argparse.Namespace) -> int:
    from yolobench import bench, catalogue, scenarios

    catalogue.get_profile(args.profile)  # one-line errors for bad names before pytest starts
    catalogue.parse_variants(args.variants)
    bench.parse_engines(args.engines)
    scenarios.parse_scenarios(args.scenarios)
    catalogue.parse_variants(args.scenario_variants)
    out = (args.out if args.out is not None else default_out(args.profile)).expanduser().resolve()
    command = pytest_command(args, out)
    print("$ " + shlex.join(command), file=sys.stderr, flush=True)
    if args.dry_run:
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    existed = out.exists()
    try:
        code = children.run(command, cwd=paths.repo_root()).returncode
    except BaseException:
        # A cancelled run leaves no run file: one written as pytest was stopped may be partial.
        if not existed and out.exists():
            out.unlink()
        raise
    if out.exists():
        print(f"run file: {out}  (check it: yolobench gate --current {out})", file=sys.stderr)
    return code
