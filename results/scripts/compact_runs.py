"""One-off (2026-12-04): rewrite every committed run file as its compact, gzipped form and prove that
nothing yolobench reads changed.

A run file as pytest-benchmark writes it carries each round twice: pytest-benchmark's ``stats.data``
(seconds, full float precision) and yolobench's ``extra_info.samples_ms`` (milliseconds, rounded to
0.1 us). yolobench reads only ``extra_info``. For each ``*.json`` under results/ that is a run file this
script writes ``*.json.gz`` with ``runfile.write_run`` (drops ``stats.data``, gzip -9), then loads both
with ``runfile.load_run`` (and ``scenarios.load_scenarios``) and requires every cell and scenario to be
equal field by field: the samples, the statistics recomputed from them, the speedups, the mAPs and every
extra_info key. It also checks that ``samples_ms`` are ``stats.data`` in ms where both exist (so the
dropped copy held nothing else). Only then is the plain file removed. The table it prints is committed
beside it (compact_runs-2026-12-04.md).

    PYTHONPATH=src python results/scripts/compact_runs.py [--dry-run]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from yolobench import runfile, scenarios

ROOT = Path(__file__).resolve().parents[2]


def run_files() -> list[Path]:
    """Run files under results/: plain ``*.json``, and ``*.json.gz`` committed gzipped but not compacted."""
    out = []
    for path in sorted([*(ROOT / "results").rglob("*.json"), *(ROOT / "results").rglob("*.json.gz")]):
        try:
            data = runfile.read_document(path)
        except runfile.UserError:
            continue
        if isinstance(data, dict) and isinstance(data.get("benchmarks"), list) and "machine_info" in data:
            out.append(path)
    return out


def samples_match_stats(data: dict) -> tuple[int, int]:
    """(benchmarks whose stats.data equals samples_ms in ms, benchmarks that have both)."""
    same = both = 0
    for bench in data["benchmarks"]:
        raw = (bench.get("stats") or {}).get("data")
        ms = (bench.get("extra_info") or {}).get("samples_ms")
        if raw is None or ms is None:
            continue
        both += 1
        same += len(raw) == len(ms) and all(math.isclose(r * 1000.0, m, abs_tol=6e-5) for r, m in zip(raw, ms))
    return same, both


def main(argv: list[str]) -> int:
    dry = "--dry-run" in argv
    rows = []
    for path in run_files():
        data = runfile.read_document(path)
        gzipped = path.name.endswith(".gz")
        if gzipped and not any("data" in (b.get("stats") or {}) for b in data["benchmarks"]):
            continue  # compact already
        # the plain document as it was, and the compact one, side by side in the same folder
        plain = path.with_name(f".check-{path.name[:-3]}") if gzipped else path
        target = path.with_name(f".new-{path.name}") if gzipped else path.with_name(path.name + ".gz")
        if gzipped:
            plain.write_text(json.dumps(data))
        runfile.write_run(target, data)
        before, after = runfile.load_run(plain), runfile.load_run(target)
        assert before.cells.keys() == after.cells.keys(), path
        for name in before.cells:
            a, b = before.cells[name], after.cells[name]
            assert (a.latency, a.speedup_vs_reference, a.map50, a.map50_95, dict(a.extra)) == \
                   (b.latency, b.speedup_vs_reference, b.map50, b.map50_95, dict(b.extra)), (path, name)
        assert (before.machine, before.commit, before.datetime) == (after.machine, after.commit, after.datetime)
        scen_a, scen_b = scenarios.load_scenarios(plain), scenarios.load_scenarios(target)
        assert scen_a == scen_b, path
        same, both = samples_match_stats(data)
        final = path if gzipped else target
        rows.append((final.relative_to(ROOT), path.stat().st_size, target.stat().st_size, len(before.cells),
                     len(scen_a), f"{same}/{both}"))
        if gzipped:
            plain.unlink()
        if dry:
            target.unlink()
        elif gzipped:
            target.replace(path)
        else:
            path.unlink()
    print("| run file | bytes before | bytes after (.json.gz) | cells equal | scenarios equal | "
          "stats.data == samples_ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, size, new, cells, scen, match in rows:
        print(f"| `{name}` | {size} | {new} | {cells} | {scen} | {match} |")
    print(f"| total ({len(rows)} files) | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows)} | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
