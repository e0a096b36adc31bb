"""``yolobench gate``: fail (exit 1) when a run falls short of the thresholds or of a baseline run.

Prints one row per check per cell (measured, limit, ratio, verdict) and a summary line naming every
failing cell. Exit 0: every check passed; 1: a check failed; 2: an input could not be read.
``--suggest RUN.json`` prints a thresholds file with floors derived from that run instead;
``--study RUN.json ...`` gates every pair of runs made on unchanged code (the false-alarm rate).

A run the gate cannot judge passes with a note: on a CPU generation without its own speedup floors and
baseline, a run ten times slower than any before has nothing to be compared with. ``--strict`` (what CI
runs) fails it instead, in one line naming what is missing and the commands that make it; it fails a run
timed on a loaded machine too (``gate.load``), which without it is a warning line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yolobench import gate, paths
from yolobench.commands import common
from yolobench.errors import EXIT_FAILED, EXIT_OK
from yolobench.runfile import load_run

HELP = "check a benchmark run against the committed thresholds and a baseline run (exit 1 on regression)"


AUTO = Path("auto")


def default_thresholds(profile: str | None = "smoke", generation: str | None = None) -> Path:
    """Thresholds of a profile: ``results/thresholds-<profile>-<cpu generation>.toml`` where one was
    made on the run's CPU generation (its speedup floors are that machine's), else
    ``results/thresholds-<profile>.toml`` (floors differ per profile)."""
    results = paths.repo_root() / "results"
    if generation:
        from yolobench.timer import generation_slug

        own = results / f"thresholds-{profile or 'smoke'}-{generation_slug(generation)}.toml"
        if own.exists():
            return own
    return results / f"thresholds-{profile or 'smoke'}.toml"


def other_machine_note(thresholds: gate.Thresholds, current, current_file: Path) -> str | None:
    """The line that opens the gate's output when the thresholds' speedup floors are another CPU
    generation's: what is not compared, and the commands that make floors and a baseline for this one."""
    if gate.speedup_floors_apply(thresholds, current):
        return None
    if gate.applicable_thresholds(thresholds, current) is not thresholds:  # model files: no catalogue floors
        return None
    profile = current.profile or "smoke"
    from yolobench.timer import generation_slug

    slug = generation_slug(current.cpu_generation)
    own = thresholds.path.with_name(f"thresholds-{profile}-{slug}.toml")
    return (f"NOTE: this run is on {current.cpu_generation}; the speedup floors of {thresholds.path.name} were "
            f"measured on {thresholds.machine}. Speedups do not carry across CPU generations, so they are "
            f"not compared here (mAP floors are). To give this machine its own floors and baseline, from a "
            f"run made with nothing else running:\n"
            f"    yolobench gate --suggest {current_file} > {own}\n"
            f"    {copy_command(current_file, baseline_path(profile, current.cpu_generation))}")


def copy_command(run_file: Path, baseline: Path) -> str:
    """The shell command that makes ``run_file`` the committed (gzipped) baseline."""
    if str(run_file).endswith(".gz"):
        return f"cp {run_file} {baseline}"
    return f"gzip -9 -c {run_file} > {baseline}"


def baseline_path(profile: str, generation: str) -> Path:
    """Where the committed baseline of a profile on one CPU generation lives: latencies are compared
    only within a generation (Zen 4 and Zen 5 both call themselves "AMD EPYC" here)."""
    from yolobench.timer import generation_slug

    # compact and gzipped (runfile.write_run), as every run the repository keeps; a plain .json is read too
    return paths.repo_root() / "results" / "baselines" / f"{profile}-{generation_slug(generation)}.json.gz"


def auto_baseline(current) -> Path | None:
    """The committed baseline for the current run's profile and CPU generation, or None (said why)."""
    if current.profile is None or current.cpu_generation is None:
        print(f"note: --baseline auto: {current.path} does not record its profile and CPU generation; "
              "latency is not compared (give --baseline RUN.json)", file=sys.stderr)
        return None
    path = baseline_path(current.profile, current.cpu_generation)
    plain = path.with_name(path.name.removesuffix(".gz"))
    if not path.exists() and plain.exists():
        return plain
    if not path.exists():
        print(f"note: --baseline auto: no {current.profile} baseline for {current.cpu_generation} ({path}); "
              f"latency is not compared. From an idle machine's run (the main job writes it compact): "
              f"cp results/runs/latest-{current.profile}.json.gz {path}", file=sys.stderr)
        return None
    return path


def _floors_judged(thresholds: gate.Thresholds, current) -> bool:
    """Whether any speedup floor of ``thresholds`` (a cell's or a pair's) judges this run: one of this CPU
    generation, on a cell the run has, that is not the user's model under the repository's floors."""
    if not gate.speedup_floors_apply(thresholds, current):
        return False
    applicable = gate.applicable_thresholds(thresholds, current)
    repository = gate.catalogue_thresholds(applicable)
    cells = [name for name, cell in current.cells.items() if applicable.for_cell(name).speedup_floor is not None
             and not (cell.extra.get("weights") and repository)]
    pairs = [p for p in applicable.pairs.values() if p.faster in current.cells and p.slower in current.cells]
    return bool(cells or pairs)


def strict_lines(thresholds: gate.Thresholds, current, current_file: Path, baseline) -> list[str]:
    """``--strict``: one line for each reason this run cannot pass (nothing judged its speed; a loaded
    machine), each with what to do; [] when there is none."""
    lines = []
    generation = current.cpu_generation
    profile = current.profile or "smoke"
    missing, consequences, commands = [], [], []
    if not _floors_judged(thresholds, current):
        if not gate.speedup_floors_apply(thresholds, current):
            missing.append(f"{generation} has no speedup floors in {thresholds.path.name} (its floors are "
                           f"{thresholds.machine}'s)")
        else:
            missing.append(f"no speedup floor of {thresholds.path.name} applies to this run's cells")
        consequences.append("no speedup was judged")
        if generation and gate.catalogue_thresholds(thresholds) and not gate.user_model_run(current):
            from yolobench.timer import generation_slug

            own = thresholds.path.with_name(f"thresholds-{profile}-{generation_slug(generation)}.toml")
            commands.append(f"yolobench gate --suggest {current_file} > {own}")
        else:
            commands.append(f"yolobench gate --suggest {current_file} > mine.toml (then --thresholds mine.toml)")
    if baseline is None or not gate.same_generation(baseline.cpu_generation, generation):
        if baseline is not None:
            missing.append(f"no baseline of {generation} (the baseline {baseline.path} is "
                           f"{baseline.cpu_generation}'s)")
        elif generation and current.profile:
            missing.append(f"no baseline ({baseline_path(profile, generation)})")
        else:
            missing.append("no baseline (give --baseline RUN.json, an earlier run of this machine)")
        consequences.append("no latency was compared")
        if generation and current.profile:
            commands.append(copy_command(current_file, baseline_path(profile, generation)))
    if missing:
        line = f"gate --strict: FAILED: {' and '.join(missing)}, so {' and '.join(consequences)}"
        if commands:
            line += (f"; make this machine's own from a run made with nothing else running, and commit them: "
                     f"{' and '.join(f'`{c}`' for c in commands)}")
        lines.append(line)
    loaded = gate.load_line(current)
    if loaded:
        lines.append(f"gate --strict: FAILED: {loaded}")
    return lines


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
                        help="earlier run on the same CPU generation to compare latency against; 'auto': "
                             "results/baselines/<profile>-<cpu generation>.json for the current run")
    common.add_quiet(parser, "print only the failing checks and the summary line")
    common.add_json(parser, "every check of --current (cell, check, measured, limit, ratio, verdict, note) and "
                            "the verdict")
    parser.add_argument("--only-current", action="store_true",
                        help="judge only the cells and scenarios this run measured (a slice such as "
                             "`pytest -k pruned_quant`); those it lacks are named, not failed")
    parser.add_argument("--strict", action="store_true",
                        help="with --current: fail (exit 1, one line each) when this run's CPU generation has no "
                             "speedup floors or no baseline (nothing judged its speed; without --strict, a "
                             "note), or when the machine was loaded during the run (without it, a warning)")
    parser.add_argument("--thresholds", metavar="TOML", type=Path, default=None,
                        help="thresholds file (default: results/thresholds-<profile of the run>.toml)")


def run(args: argparse.Namespace) -> int:
    first = args.suggest or args.current or (args.study[0] if args.study else None)
    first_run = load_run(first) if first is not None else None
    thresholds_path = args.thresholds or default_thresholds(first_run.profile if first_run else None,
                                                            first_run.cpu_generation if first_run else None)
    if args.suggest is not None:
        suggested_from = first_run
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
    current = first_run
    baseline_file = auto_baseline(current) if args.baseline == AUTO else args.baseline
    baseline = load_run(baseline_file) if baseline_file is not None else None
    checks = gate.evaluate(current, baseline, thresholds, only_current=args.only_current)
    strict = strict_lines(thresholds, current, first, baseline) if args.strict else None
    failed = any(c.failed for c in checks) or bool(strict)
    note = other_machine_note(thresholds, current, first)
    loaded = gate.load_line(current)
    warning = f"WARNING: {loaded}" if loaded else None
    left_out = ((list(gate.missing_cells(current, baseline, thresholds)) + gate.missing_scenarios(current, thresholds))
                if args.only_current else [])
    slice_line = (f"--only-current: {len(left_out)} expected cells/scenarios are not in this run and were not "
                  f"judged: {', '.join(left_out)}" if left_out else None)
    incomplete = current.incomplete_line()  # the run file says its matrix is not whole
    if args.json:
        import dataclasses
        import json

        print(json.dumps({"passed": not failed, "summary": gate.summary(checks), "current": str(current.path),
                          "baseline": str(baseline.path) if baseline is not None else None,
                          "thresholds": str(thresholds.path), "note": note, "warning": warning,
                          "strict": strict, "not_judged": left_out, "incomplete": current.incomplete,
                          "checks": [dataclasses.asdict(c) for c in checks]}, indent=1))
        return EXIT_FAILED if failed else EXIT_OK
    if args.quiet:
        if note:
            print(note.splitlines()[0])
        if warning:
            print(warning)
        if incomplete:
            print(f"current: {incomplete}")
        if any(c.failed for c in checks):
            print(gate.format_table([c for c in checks if c.failed]))
        if slice_line:
            print(slice_line)
        print(summary_line(checks, strict))
        for line in strict or ():
            print(line)
        return EXIT_FAILED if failed else EXIT_OK

    if note:
        print(note)
        print()
    if warning:
        print(warning)
        print()
    print(gate.describe_run("current", current))
    if incomplete:
        print(f"current: {incomplete}")
    if baseline is not None:
        print(gate.describe_run("baseline", baseline))
    print(f"thresholds: {thresholds.path}")
    print()
    print(gate.format_table(checks))
    print()
    print("ratio: measured / floor for speedup and map50 (below 1 fails); current / baseline p50 for latency "
          "of the fastest of 3 sessions (fails above the factor only if the slowdown also exceeds the runs' "
          "noise: both runs' session spreads added, at least half of each IQR)")
    if slice_line:
        print(slice_line)
    print(summary_line(checks, strict))
    for line in strict or ():
        print(line)
    return EXIT_FAILED if failed else EXIT_OK


def summary_line(checks, strict: list[str] | None) -> str:
    """The gate's last verdict line; when only --strict fails the run, it does not open with "passed"."""
    line = gate.summary(checks)
    if strict and not any(c.failed for c in checks):
        return "gate: FAILED under --strict (the reasons follow); the checks themselves: " + line.removeprefix("gate: ")
    return line
