"""``yolobench bench``: run the benchmark matrix (``pytest benchmarks --benchmark-only``) into a run file.

A thin wrapper: it builds the pytest command line (variants, engines, profile, data, image size,
threads, store, ``--benchmark-json``), runs it with this Python in the repository root and returns
pytest's exit status (0 every selected cell ran or was skipped with its reason, 1 a cell failed, 2-4 a
usage or collection error, 5 nothing selected; 1 with one line when pytest was ended by a signal). Arguments
after ``--`` go to pytest unchanged. pytest-benchmark writes into a private temporary folder and the run file
is written from it when pytest ends, so ``--out`` holds a whole run file or none (docs/faults.md).

``--model A.onnx [B.onnx ...]`` times those files instead of the catalogue (``yolobench.modelfiles``): bad
files are refused in one line (exit 2) before anything runs; each file's engines are checked for parity
first (``parity --model``'s check, tables printed), the matrix runs with ``--yb-models``, the verdicts are
written into the run file, and a disagreement makes the exit status 1.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from yolobench import children, faults, modelfiles, paths, runfile
from yolobench.commands import common
from yolobench.errors import UserError

HELP = "benchmark every variant on every engine (pytest-benchmark) and write a run file for the gate"

# Where run files go by default: one per run, named by UTC time and profile, beside the history.
RUNS_DIR = Path("results") / "runs"


def default_out(profile: str) -> Path:
    return paths.repo_root() / RUNS_DIR / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{profile}.json.gz"


# What pytest-benchmark writes (--benchmark-json), in a private temporary folder; never a run file's name.
PARTIAL_NAME = "pytest-benchmark.json.partial"


def signal_message(code: int) -> str:
    """The one line for a pytest child ended by signal ``-code`` (a native crash, the kernel's OOM killer)."""
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return (f"pytest was ended by {name} before it wrote the run file; no run file was written (an engine whose "
            "native code can end the process must say so, Engine.can_abort_process, to be loaded in a child "
            "process first; SIGKILL: the machine ran out of memory?)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--variants", default=None, help="comma-separated variants (default: the whole catalogue)")
    what.add_argument("--model", nargs="+", default=None, metavar="PATH.onnx",
                      help="time and check these ONNX detection models as they are, instead of the catalogue: each "
                           "on every engine that runs it, at its own input size, with parity between engines first "
                           "(exit 1 when they disagree) and mAP on --data's labels; cells <stem>_<sha256 prefix>-"
                           "<engine>-<imgsz>; the first file on onnxruntime is the speedup reference")
    common.add_engines(parser, what="engines to benchmark, in this order")
    common.add_profile(parser)
    parser.add_argument("--data", default=None, help="your YOLO-format data.yaml (default: the built-in dataset; with "
                                                     "--model: the labels its mAP is measured on, default none)")
    parser.add_argument("--imgsz", type=int, default=None, help="export size to run at (default: the profile's first; "
                                                                "with --model: a dynamic input's size, default 640)")
    parser.add_argument("--threads", type=int, default=None, help="threads per engine (default: every usable core)")
    parser.add_argument("--sessions", type=int, default=None,
                        help="independently loaded sessions per cell, run in passes over the matrix (default: 3)")
    parser.add_argument("--store", default=None, help="artifact store folder (default: ~/.cache/yolobench/store)")
    common.add_weights(parser)
    parser.add_argument("--scenarios", default=None,
                        help="after the matrix, also measure e2e (frame in, boxes out), throughput (concurrent "
                             "streams), memory (peak RSS), comma-separated, or all (default: none)")
    parser.add_argument("--scenario-variants", default=None,
                        help="comma-separated variants the scenarios run on (default: the matrix's)")
    parser.add_argument("--streams", type=int, default=None,
                        help="streams of the throughput scenario (default: every usable core, one thread each)")
    parser.add_argument("-k", dest="keyword", default=None, help="pytest -k expression, e.g. pruned_quant")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"run file to write; a name ending in .gz gets the compact form the repository keeps; a "
                             f"folder: the default name in it (default: {RUNS_DIR}/<UTC time>-<profile>.json.gz)")
    parser.add_argument("--dry-run", action="store_true", help="print the pytest command and exit")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER,
                        help="after --: more pytest arguments (e.g. -- -x --benchmark-columns=median)")


def pytest_command(args: argparse.Namespace, out: Path) -> list[str]:
    """The pytest command line this run executes."""
    command = [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", f"--benchmark-json={out}",
               f"--yb-profile={args.profile}"]
    for option in ("variants", "engines", "data", "imgsz", "threads", "sessions", "store", "scenarios",
                   "scenario_variants", "streams", "weights", "source_weights"):
        value = getattr(args, option)
        if value is not None and option == "engines":
            value = ",".join(common.engine_list(value))
        if value is not None and option in ("data", "store", "weights", "source_weights"):
            value = Path(value).expanduser().resolve()  # pytest runs in the repository root, not here
        if value is not None:
            command.append(f"--yb-{option.replace('_', '-')}={value}")
    if getattr(args, "model", None):  # absolute: pytest runs in the repository root, not here
        command.append("--yb-models=" + ",".join(str(Path(p).expanduser().resolve()) for p in args.model))
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
    models = ()
    if args.model:  # bad files: one line, exit 2, before anything runs or is written
        models = check_arguments(args)
    given = common.weights_args(args)
    if any(given.values()):  # a bad checkpoint, or classes that are not --data's: one line before pytest
        from yolobench import builder

        resolved: dict = {}
        for name in catalogue.parse_variants(args.variants):
            if not builder.skip_reason(name, **given):
                builder.resolve(name, args.profile, args.data, **given, _cache=resolved)
    label = "models" if models else args.profile  # a run of model files is no profile's
    out = (args.out if args.out is not None else default_out(label)).expanduser().resolve()
    if out.is_dir():  # pytest-benchmark cannot write over a folder: the run would be measured, then lost
        folder, out = out, out / default_out(label).name
        print(f"--out {folder} is a folder: the run file is {out}", file=sys.stderr)
    # pytest-benchmark writes its JSON with a plain open() when pytest ends: a run stopped while it writes, or
    # a full disk under --out, would leave half a file under the run file's name (and pytest's traceback). It
    # writes into a private folder instead; the run file is written from that (runfile.write_run: a temporary
    # name renamed when whole; compact for a .gz name), so --out holds a whole run file or none.
    if args.dry_run:  # the command as a user would type it: pytest-benchmark writes plain JSON
        plain = out.with_name(out.name[:-len(runfile.GZ_SUFFIX)]) if out.name.endswith(runfile.GZ_SUFFIX) else out
        print("$ " + shlex.join(pytest_command(args, plain)), file=sys.stderr, flush=True)
        return 0
    verdicts = check_parity(models, data=args.data, engine_names=common.engine_list(args.engines),
                                       threads=args.threads) if models else []
    out.parent.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix="yolobench-bench-"))
    written = private / PARTIAL_NAME
    command = pytest_command(args, written)
    print("$ " + shlex.join(command), file=sys.stderr, flush=True)
    try:
        code = children.run(command, cwd=paths.repo_root()).returncode
        if code < 0:  # ended by a signal: pytest-benchmark wrote nothing, whatever is there is not a run
            print(f"yolobench bench: {signal_message(code)}", file=sys.stderr)
            return faults.EXIT_FAULT
        published = written.exists()
        if published:
            document = runfile.read_document(written)
            if models:
                record_parity(document, verdicts)
            runfile.write_run(out, document)
    finally:  # a cancelled or failed run leaves no run file: the one pytest wrote may be partial
        shutil.rmtree(private, ignore_errors=True)
    if published:
        print(f"run file: {out}  (check it: yolobench gate --current {out})", file=sys.stderr)
    if models and disagreeing(verdicts):
        print(f"parity: engines DISAGREE on {', '.join(disagreeing(verdicts))} (tables above)",
              file=sys.stderr)
        return code or 1
    return code


# --- `--model`: the files' checks, parity and its record in the run file ---

# Parity runs on this many validation images of --data (ultralytics' two photos without --data): the
# raw outputs of one model on a few real images of its domain, compared engine by engine.
PARITY_IMAGES = 8
AGREE, DISAGREE, NOT_ESTABLISHED = "agree", "disagree", "not established"


def check_arguments(args) -> tuple:
    """``bench --model``'s files and options checked before anything runs or is written (UserError)."""
    for option in ("weights", "source_weights", "scenario_variants"):
        if getattr(args, option, None):
            flag = "--" + option.replace("_", "-")
            raise UserError(f"--model runs the files as they are; {flag} does not apply to them (drop it)")
    for path in args.model:
        if "," in str(path):
            raise UserError(f"{path}: a comma in the path (pytest receives the files comma-separated): rename it")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    return modelfiles.describe_all(args.model, args.imgsz, args.data)


def check_parity(models: Sequence, *, data=None, engine_names: Sequence[str] | None = None,
                 threads: int | None = None, say: Callable[[str], None] = print) -> list[dict]:
    """``yolobench parity --model`` on each file (``commands.parity.check_onnx_parity``: every ONNX engine
    that runs the graph as it is, the same-graph policy of its form), on the first :data:`PARITY_IMAGES`
    validation images of ``data`` (else ultralytics' photos); prints each table; returns the verdicts.
    ``openvino_nncf`` runs a graph it made (``same_graph = False``): mAP judges it, not parity."""
    from yolobench import engines  # noqa: PLC0415
    from yolobench.commands.parity import check_onnx_parity, format_report  # noqa: PLC0415

    onnx_engines = set(engines.onnx_engine_names())
    names = [n for n in (engine_names or engines.engine_names())
             if n in onnx_engines and engines.trait(n, "same_graph", True)]
    images = list(modelfiles.read_dataset(data, decode_images=False).val_files[:PARITY_IMAGES]) if data is not None else None
    verdicts = []
    for model in models:
        say(f"parity of {model.name} ({model.path}) across {', '.join(names) or 'no engine'}:")
        if len(names) < 2:
            verdicts.append({"variant": model.name, "model_file": str(model.path), "sha256": model.sha256,
                             "verdict": NOT_ESTABLISHED, "reason": "fewer than two ONNX engines selected",
                             "engines": {}, "pairs": []})
            say(f"parity not established: fewer than two ONNX engines selected ({', '.join(names) or 'none'})\n")
            continue
        report = check_onnx_parity(model.path, images=images or None, engine_names=names,
                                   imgsz=model.imgsz if model.dynamic else None, threads=threads)
        say(format_report(report) + "\n")
        failed = any(p.ok is False for p in report.pairs) or any(r.status == "failed" for r in report.runs)
        verdict = DISAGREE if failed else (AGREE if report.pairs else NOT_ESTABLISHED)
        verdicts.append({
            "variant": model.name, "model_file": str(model.path), "sha256": model.sha256, "verdict": verdict,
            "images": [p.name for p in report.images],
            "engines": {r.name: r.status + (f": {r.reason}" if r.reason else "") for r in report.runs},
            "pairs": [{"pair": p.label, "decided_by": p.decided_by, "ok": bool(p.ok)} for p in report.pairs]})
    return verdicts


def record_parity(document: dict, verdicts: Sequence[dict]) -> None:
    """Put the verdicts into the run document before it is written: all of them under
    ``machine_info["yolobench_model_parity"]``, and each cell's file's verdict as its ``extra_info["parity"]``."""
    by_variant = {v["variant"]: v["verdict"] for v in verdicts}
    if isinstance(document.get("machine_info"), dict):
        document["machine_info"][modelfiles.RUN_FILE_KEY] = list(verdicts)
    for entry in document.get("benchmarks") or []:
        extra = entry.get("extra_info") if isinstance(entry, dict) else None
        if isinstance(extra, dict) and extra.get("variant") in by_variant:
            extra["parity"] = by_variant[extra["variant"]]


def disagreeing(verdicts: Sequence[dict]) -> list[str]:
    return [v["variant"] for v in verdicts if v["verdict"] == DISAGREE]
