"""Power and false alarms of `yolobench ab` on this machine: run it on an idle machine.

    PYTHONPATH=tests python results/scripts/ab_power.py --profile smoke --repeats 20 --out results/ab/NAME

For each cell (variant, ONNX form, engine; default: pruned_quant's QDQ graph on ONNX Runtime, INT8;
pruned's FP32 graph on DeepSparse; dense's FP32 graph on OpenVINO at its default precision):

- power: A = the variant's file, B = a copy with 10% more convolution work that no engine can fold away
  (tests/_slower_model.py): how often `yolobench ab` says "slower" (goal: at least 19 of 20);
- false alarms: A against a byte-identical copy of itself: how often it says "slower" (goal: at most 1 of 20).

The two kinds alternate, so a slow phase of the machine hits both. Every comparison is appended to
NAME.jsonl as it finishes (an interrupted study resumes where it stopped); NAME.md gets the summary:
verdicts, pairs and seconds per comparison, and the machine.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

from _slower_model import slower_copy  # tests/ on PYTHONPATH

from yolobench import annotate
from yolobench.ab import DEFAULT_MAX_PAIRS, DEFAULT_THRESHOLD as THRESHOLD, Interval, at_the_cap, decide
from yolobench.timer import machine_info

DEFAULT_CELLS = "pruned_quant:qdq:onnxruntime,pruned:fp32:deepsparse,dense:fp32:openvino"
LINE = re.compile(r"B/A (?P<ratio>[\d.]+) \[(?P<low>[\d.]+), (?P<high>[\d.]+)\] after (?P<pairs>\d+) pairs, "
                  r"(?P<seconds>\d+) s: (?P<verdict>slower|not slower)")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--cells", default=DEFAULT_CELLS, help="variant:form:engine[:share],... (share: that "
                        "cell's extra conv work, default --share)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--share", type=float, default=0.10, help="extra convolution work of the slower copy")
    parser.add_argument("--out", required=True, help="results/ab/NAME: writes NAME.jsonl and NAME.md")
    parser.add_argument("--summary-only", action="store_true", help="write NAME.md from NAME.jsonl, run nothing")
    parser.add_argument("ab_args", nargs="*", help="more options for yolobench ab (after --)")
    return parser.parse_args()


def _machine() -> str:
    info = machine_info()
    return (f"{info['cpu_model']}, {info['cpu_generation']}, {info['usable_cores']} usable cores, "
            f"{(info['memory_total_bytes'] or 0) / 2**30:.0f} GiB")


def compare(a: Path, b: Path, engine: str, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "yolobench", "ab", "--a", str(a), "--b", str(b), "--engine", engine,
               "--quiet", *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    found = LINE.search(done.stdout)
    if found is None or done.returncode not in (0, 1):
        raise SystemExit(f"yolobench ab failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    values = found.groupdict()
    return {k: (v if k == "verdict" else float(v)) for k, v in values.items()}


def main() -> int:
    args = arguments()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".jsonl")
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    # variant:form:engine[:share]: a cell's own extra-work share, where MACs and time part (a small
    # model's time is not all convolution: at 160 px 12% more conv MACs made ONNX Runtime's INT8 graph
    # only ~3% slower), so the slower copy is sized per cell to be a ~10% slowdown in *time*
    specs = [c.split(":") for c in args.cells.split(",")]
    cells = [tuple(c[:3]) for c in specs]
    shares = {tuple(c[:3]): float(c[3]) if len(c) > 3 else args.share for c in specs}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for variant, form, engine in cells:
            artifact = annotate.load_built(variant, args.profile)
            if artifact is None:
                raise SystemExit(f"{variant} is not built for profile {args.profile}: yolobench build --variants {variant}")
            src = artifact.onnx_path(form)
            same, slower = Path(tmp) / f"{variant}-{form}-same.onnx", Path(tmp) / f"{variant}-{form}-slower.onnx"
            shutil.copyfile(src, same)
            share = slower_copy(src, slower, shares[(variant, form, engine)])
            files[(variant, form, engine)] = (src, same, slower, share)
        for repeat in range(0 if args.summary_only else args.repeats):
            for (variant, form, engine), (src, same, slower, share) in files.items():
                for kind, b in (("power", slower), ("false alarm", same)):
                    key = {"cell": f"{variant}-{form}-{engine}", "kind": kind, "repeat": repeat}
                    if any(all(row[k] == v for k, v in key.items()) for row in done):
                        continue
                    row = {**key, "extra_share": round(share, 4), **compare(src, b, engine, args.ab_args)}
                    done.append(row)
                    with log.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    lines = [f"# `yolobench ab`: power and false alarms ({args.profile} profile)", "",
             f"Machine: {_machine()}", "",
             f"Command: `PYTHONPATH=tests python results/scripts/ab_power.py --profile {args.profile} "
             f"--repeats {args.repeats} --cells {args.cells} --out {args.out}"
             + (f" -- {' '.join(args.ab_args)}" if args.ab_args else "") + "`", "",
             "A comparison that reached the pair cap is judged by `yolobench.ab.at_the_cap` (slower only if "
             "the estimate passes the threshold and the interval excludes 1) from its recorded interval.", "",
             "| cell | comparison | B's extra conv MACs | said slower | pairs (median, max) | seconds (median, max) | B/A (median) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    # Rows keep the verdict `yolobench ab` printed. A comparison that ran to the pair cap is judged here by
    # the current rule (yolobench.ab.at_the_cap) from its recorded interval, so that rows made before the
    # rule changed (2026-12-03: the point estimate alone decided) count as the committed code would.
    max_pairs = next((int(a.split("=", 1)[1]) for a in args.ab_args if a.startswith("--max-pairs=")), DEFAULT_MAX_PAIRS)
    for row in done:
        ci = Interval(int(row["pairs"]), row["ratio"], row["low"], row["high"])
        if ci.pairs >= max_pairs and decide(ci, THRESHOLD) is None:
            row["verdict"] = at_the_cap(ci, THRESHOLD)
    # every cell of the log, this command's first: an earlier invocation's cells stay in the summary
    names = [f"{variant}-{form}-{engine}" for variant, form, engine in cells]
    earlier = list(dict.fromkeys(r["cell"] for r in done if r["cell"] not in names))
    for name in names + earlier:
        for kind in ("power", "false alarm"):
            rows = [r for r in done if r["cell"] == name and r["kind"] == kind]
            if not rows:
                continue
            slower_n = sum(r["verdict"] == "slower" for r in rows)
            lines.append(f"| {name} | {kind} | {rows[0]['extra_share'] if kind == 'power' else 0:.1%} | "
                         f"{slower_n} of {len(rows)} | {median(r['pairs'] for r in rows):.0f}, {max(r['pairs'] for r in rows):.0f} | "
                         f"{median(r['seconds'] for r in rows):.0f}, {max(r['seconds'] for r in rows):.0f} | "
                         f"{median(r['ratio'] for r in rows):.3f} |")
    if earlier:
        lines += ["", f"Not in this command, kept as measured by an earlier one: {', '.join(earlier)}."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
