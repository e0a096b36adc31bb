"""``yolobench report``: report.md, the FPS and tradeoff charts of each image size and
detections/<variant>.png from a benchmark run."""

from __future__ import annotations

import argparse

HELP = "write the markdown tables, charts and sample detections of a benchmark run (default: the newest)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", metavar="RUN.json", default=None,
                        help="run file (pytest --benchmark-json output; default: the newest run file in results/runs/)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output folder, replaced whole when the report is complete; 'auto': "
                             "results/report-<profile>-<cpu generation> (one per machine type, as the main job "
                             "writes it) (default: results/report)")
    parser.add_argument("--history", metavar="DIR", default=None,
                        help="link report.md to the history's HTML in DIR (yolobench history publish); 'auto': "
                             "results/asv-html")
    parser.add_argument("--profile", default=None,
                        help="build profile of the variants whose detections are drawn (default: the one "
                             "the run's cells record, else the one exporting the run's image size)")
    parser.add_argument("--data", default=None, help="the data.yaml the variants were built on (default: built-in)")
    parser.add_argument("--store", default=None,
                        help="artifact store folder, read for the gzip sizes and the detections, never "
                             "built into (default: ~/.cache/yolobench/store)")
    parser.add_argument("--engine", default=None,
                        help="draw the sample detections on this engine only (default: every engine the run measured)")
    parser.add_argument("--no-detections", action="store_true",
                        help="skip the sample images (no model is loaded)")
    parser.add_argument("--baseline", metavar="RUN.json", default=None,
                        help="add a per-cell diff against this run with the gate's verdicts; 'auto': the committed "
                             "baseline of the run's profile and CPU generation, as `yolobench gate --baseline auto`")
    parser.add_argument("--thresholds", metavar="TOML", default=None,
                        help="thresholds for that diff (default: the gate's for the run's profile and generation)")
    parser.add_argument("--peak", metavar="PEAK.json", default=None,
                        help="add the machine's limit and each cell's share of it, from `yolobench peak --out`; "
                             "'auto': results/peak/<cpu generation>.json")
    parser.add_argument("--profiles", metavar="PROFILE.md", nargs="+", default=None,
                        help="add these per-layer profiles (`yolobench profile --out`); 'auto': "
                             "results/profiles/<profile>-<cpu generation>*.md")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def auto_out_dir(run):
    """results/report-<profile>-<cpu generation>: each machine type's report beside the others'."""
    from yolobench import paths
    from yolobench.errors import UserError
    from yolobench.timer import generation_slug

    if run.cpu_generation is None:
        raise UserError(f"--out auto: {run.path} does not record its CPU generation; give --out DIR")
    profile = run.profile or ("models" if not any(c.extra.get("profile") for c in run.cells.values()) else "mixed")
    folder = f"report-{profile}-{generation_slug(run.cpu_generation)}"
    # a ladder from the user's checkpoint (--weights) gets its own folder: it must not replace the catalogue's
    weights = sorted({str(w["sha256"])[:8] for c in run.cells.values()
                      if isinstance(w := c.extra.get("weights"), dict) and isinstance(w.get("sha256"), str)})
    if weights:
        folder += "-weights-" + "-".join(w for w in weights if w.isalnum())
    return paths.repo_root() / "results" / folder


def run(args: argparse.Namespace) -> int:
    from yolobench import report
    from yolobench.runfile import load_run

    store = None
    if args.store is not None:
        from yolobench.store import Store

        store = Store(args.store)
    baseline, thresholds = args.baseline, args.thresholds
    if baseline is not None:
        from yolobench.commands import gate as gate_command

        current = load_run(args.run if args.run is not None else report.newest_run())
        if baseline == "auto":
            baseline = gate_command.auto_baseline(current)
        if thresholds is None:
            thresholds = gate_command.default_thresholds(current.profile, current.cpu_generation)
    out = args.out
    if out == "auto":
        out = auto_out_dir(load_run(args.run if args.run is not None else report.newest_run()))
    history = args.history
    if history == "auto":
        from yolobench import paths

        history = paths.repo_root() / "results" / "asv-html"
    result = report.write_report(
        args.run, out, profile=args.profile, data=args.data, store=store, history=history,
        detections=not args.no_detections, engine=args.engine,
        progress=None if args.quiet else report.stderr_progress, baseline=baseline, thresholds=thresholds,
        peak=args.peak, profiles=args.profiles)
    untimed = f", {len(result.untimed)} not timed by design" if result.untimed else ""
    print(f"wrote {result.markdown}, {', '.join(p.name for p in result.charts)}"
          + (f" and {sum(d.image is not None for d in result.detections)} detection sheet(s)"
             if result.detections is not None else "")
          + f" from {result.run.path} ({len(result.rows)} cells{untimed})")
    for imgsz, best in report.fastest_per_size(result.rows).items():
        if best is not None:
            print(f"fastest configuration within {report.MAP_POINTS_ALLOWED:g} point of dense mAP at {imgsz} px: "
                  f"{best.name} at {report.fmt_fps(best.fps)} FPS")
    if result.detections is not None:
        skipped = [d for d in result.detections if d.image is None]
        not_built = [d.variant for d in skipped if d.not_built]
        if not_built:
            print(f"detections skipped, the artifacts this run measured are not in the store: {', '.join(not_built)} "
                  f"(yolobench build --variants {','.join(not_built)} --profile {result.profile} builds the "
                  "current ones; a new run names them)")
        for other in (d for d in skipped if not d.not_built):
            print(f"detections of {other.variant} {other.note}")
    return 0
