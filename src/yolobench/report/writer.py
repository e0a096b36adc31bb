"""``write_report``: read the run, look up its files in the store, draw the charts and the detection sheets,
write report.md; the default run and output folder; the build profile a run was made with."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from yolobench import catalogue, engines, paths
from yolobench.errors import UserError
from yolobench.fsutil import atomic_write_text, replace_dir
from yolobench.report.cells import Progress, Untimed, sizes_of, untimed_cells
from yolobench.report.charts import chart_names, distribution_name, plot_fps, plot_latency_distribution
from yolobench.report.detections import DETECTION_CONF, VALIDATION_SAMPLES, DetectionResult, draw_detections_for
from yolobench.report.files import deployed_files
from yolobench.report.formats import display_path
from yolobench.report.markdown import render_markdown
from yolobench.report.measurements import auto_peak, auto_profiles, peak_section, profiles_section
from yolobench.report.rows import Row, build_rows, fastest_within_dense, rows_at
from yolobench.report.sections import baseline_section
from yolobench.report.tradeoff import plot_tradeoff
from yolobench.runfile import Run, is_run_file, load_run
from yolobench.store import Store


def default_runs_dir() -> Path:
    return paths.repo_root() / "results" / "runs"


def default_out_dir() -> Path:
    return paths.repo_root() / "results" / "report"


def newest_run(folder: Path | None = None) -> Path:
    """The newest run file (``*.json`` or ``*.json.gz``) in ``results/runs`` (by modification time, then name:
    a fresh clone has equal times)."""
    folder = default_runs_dir() if folder is None else Path(folder)
    runs = [p for p in folder.iterdir() if p.is_file() and is_run_file(p)] if folder.is_dir() else []
    if not runs:
        raise UserError(f"no run files in {folder}: pass --run RUN.json (written by `pytest --benchmark-only "
                        "--benchmark-json=RUN.json`)")
    return max(runs, key=lambda p: (p.stat().st_mtime, p.name))


def infer_profile(run: Run) -> str:
    """The build profile of a run: recorded in its cells, else the one whose export sizes match, else smoke."""
    recorded = {str(c.extra["profile"]) for c in run.cells.values() if c.extra.get("profile")}
    if len(recorded) == 1:
        return recorded.pop()
    sizes = {c.imgsz for c in run.cells.values()}
    matching = [name for name, p in catalogue.PROFILES.items() if sizes <= set(p.export_imgsz)]
    return matching[0] if len(matching) == 1 else "smoke"


@dataclass(frozen=True)
class Report:
    run: Run
    out_dir: Path
    markdown: Path
    fps_chart: Path  # the first (largest) size's; every size's in fps_charts
    tradeoff_chart: Path
    rows: list[Row]
    detections: list[DetectionResult] | None
    profile: str
    fps_charts: dict[int, Path] = field(default_factory=dict)
    tradeoff_charts: dict[int, Path] = field(default_factory=dict)
    untimed: list[Untimed] = field(default_factory=list)
    distribution_charts: dict[int, Path] = field(default_factory=dict)

    @property
    def charts(self) -> list[Path]:
        return [p for imgsz in self.fps_charts for p in (self.fps_charts[imgsz], self.tradeoff_charts[imgsz],
                                                         self.distribution_charts.get(imgsz)) if p is not None]


def write_report(run_path: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None, *,
                 profile: str | None = None, data: str | os.PathLike | None = None, store=None,
                 detections: bool = True, engine: str | None = None,
                 progress: Progress | None = None, baseline: str | os.PathLike | None = None,
                 thresholds: str | os.PathLike | None = None, peak: str | os.PathLike | None = None,
                 profiles: Sequence[str | os.PathLike] | None = None,
                 history: str | os.PathLike | None = None) -> Report:
    """``peak``: a ``yolobench peak --out`` JSON or "auto" (results/peak/<generation>.json); ``profiles``:
    ``yolobench profile --out`` markdown files or ["auto"] (results/profiles/<profile>-<generation>*.md).
    Neither is measured here: the report reads what was measured and says what to run where nothing was.
    ``history``: the folder of the history's HTML (``yolobench history publish``), linked from report.md."""
    say = progress or (lambda message: None)
    if detections and engine:
        engines.get(engine)  # an unknown engine is a usage error, found before anything is written
    run = load_run(run_path if run_path is not None else newest_run())
    if profile is None:
        profile = infer_profile(run)
    catalogue.get_profile(profile)
    final = Path(out_dir) if out_dir is not None else default_out_dir()
    check_out_dir(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # Everything is written into a folder beside the target and moved into place when whole: a fault or a
    # kill half-way leaves the previous report (or none), never a folder that looks like a report.
    out = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o777 & ~umask)  # mkdtemp's 0700 would become the report folder's
    try:
        report = _write(run, out, final, profile=profile, data=data, store=store, detections=detections,
                        engine=engine, say=say, baseline=baseline, thresholds=thresholds, peak=peak,
                        profiles=profiles, history=history)
        replace_dir(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return report


# What a report folder holds; a folder with anything else is not replaced (it is not a report's).
REPORT_ENTRIES = ("report.md", "detections")


def check_out_dir(out: Path) -> None:
    """UserError unless ``out`` is absent, empty, or a report's folder (it is replaced whole)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file; the report is a folder (report.md, charts, detections/)")
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir()
                       if p.name not in REPORT_ENTRIES and not (p.suffix == ".png" and p.is_file()))
        if other:
            raise UserError(f"--out {out}: holds files that are not a report's ({', '.join(other[:5])}"
                            f"{', ...' if len(other) > 5 else ''}); the report replaces its folder whole: give an "
                            "empty folder, a new one, or an earlier report's")


def history_line(out: Path, history: Path) -> str:
    """The report's pointer to the history's HTML, relative to the report's folder."""
    link = Path(os.path.relpath(history / "index.html", out)).as_posix()
    return (f"History of every cell over commits (asv, offline): [{link}]({link}); serve it with "
            f"`python -m http.server -d {display_path(history)}` and open http://localhost:8000")


def _write(run: Run, out: Path, final: Path, *, profile, data, store, detections, engine, say, baseline,
           thresholds, peak, profiles, history) -> Report:
    """The report written into ``out``; the paths it returns are where they will be, under ``final``."""
    store = store if store is not None else Store()
    rows = build_rows(run, deployed_files(run, store, say))
    untimed = untimed_cells(run)
    say(f"{run.path}: {len(rows)} cells" + (f", {len(untimed)} not timed by design" if untimed else ""))

    fps_charts, tradeoff_charts, distribution_charts = {}, {}, {}
    for imgsz, (fps_name, tradeoff_name) in chart_names(sizes_of(run)).items():
        fps_charts[imgsz], tradeoff_charts[imgsz] = out / fps_name, out / tradeoff_name
        plot_fps(run, rows, fps_charts[imgsz], imgsz, untimed)
        plot_tradeoff(run, rows, tradeoff_charts[imgsz], imgsz, fastest_within_dense(rows_at(rows, imgsz)))
        distribution_charts[imgsz] = out / distribution_name(sizes_of(run), imgsz)
        plot_latency_distribution(run, rows, distribution_charts[imgsz], imgsz)
    baseline_lines = None
    if baseline is not None:
        baseline_lines = baseline_section(run, load_run(baseline), Path(thresholds) if thresholds else None)

    drawn = None
    if detections:
        drawn = draw_detections_for(run, out, profile=profile, data=data, store=store, engine=engine, say=say)
        on = f"on {engine}" if engine else "on every engine the run measured it on"
        note = (f"Each variant's detections {on} (profile {profile}, conf {DETECTION_CONF:g}): the first "
                f"{VALIDATION_SAMPLES} validation images of its dataset, each row starting with the labels (ground "
                "truth), then the same image on each engine: engines that agree draw the same boxes. ultralytics' "
                "street photos are added only for a model whose classes include theirs. The boxes show what the "
                "model finds, not how fast it is.")
    else:
        note = "Not drawn (--no-detections)."
    machine_lines = []
    if peak is not None:
        peak_file = auto_peak(run) if str(peak) == "auto" else Path(peak)
        machine_lines += peak_section(run, peak_file, store, out / "roofline.png")
    if profiles is not None:
        files = auto_profiles(run, profile) if [str(p) for p in profiles] == ["auto"] else [Path(p) for p in profiles]
        machine_lines += profiles_section(run, files, profile)
    text = render_markdown(run, rows, detections=drawn, detections_note=note, untimed=untimed,
                           baseline_lines=baseline_lines, machine_lines=machine_lines,
                           history_line=history_line(final, Path(history)) if history is not None else None)
    atomic_write_text(out / "report.md", text)
    first = sizes_of(run)[0]

    def moved(charts: dict[int, Path]) -> dict[int, Path]:
        return {imgsz: final / path.name for imgsz, path in charts.items()}

    fps_charts, tradeoff_charts, distribution_charts = (moved(fps_charts), moved(tradeoff_charts),
                                                        moved(distribution_charts))
    return Report(run=run, out_dir=final, markdown=final / "report.md", fps_chart=fps_charts[first],
                  tradeoff_chart=tradeoff_charts[first], rows=rows, detections=drawn, profile=profile,
                  fps_charts=fps_charts, tradeoff_charts=tradeoff_charts, untimed=untimed,
                  distribution_charts=distribution_charts)


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
