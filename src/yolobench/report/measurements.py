"""The machine's limit and the per-layer profiles: measured by `yolobench peak` and `yolobench profile`,
committed under results/, read here (the report measures nothing; where nothing was measured, it says
what to run)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from yolobench import paths
from yolobench.report.charts import plot_roofline
from yolobench.report.formats import display_path, md_text
from yolobench.report.machine import machine_summary
from yolobench.runfile import Run


def measurements_dir(kind: str) -> Path:
    """Where committed measurements of a kind live: results/peak, results/profiles."""
    return paths.repo_root() / "results" / kind


def auto_peak(run: Run) -> Path:
    """results/peak/<cpu generation>.json: the peak is the machine's, the same for every profile."""
    from yolobench.timer import generation_slug

    return measurements_dir("peak") / f"{generation_slug(run.cpu_generation or 'unknown')}.json"


def auto_profiles(run: Run, profile: str) -> list[Path]:
    """results/profiles/<profile>-<cpu generation>*.md, sorted."""
    from yolobench.timer import generation_slug

    prefix = f"{profile}-{generation_slug(run.cpu_generation or 'unknown')}"
    folder = measurements_dir("profiles")
    return sorted(folder.glob(f"{prefix}*.md")) if folder.is_dir() else []


def peak_section(run: Run, peak_file: Path | None, store, chart: Path) -> list[str]:
    """The machine's peak (read from ``yolobench peak --out`` JSON) and each timed cell as a share of it,
    with a chart; or what to run where no measurement of this CPU generation exists."""
    from yolobench import peak as peak_module

    lines = ["## The machine's limit", ""]
    command = (f"`yolobench peak --run {display_path(run.path)} --out results/peak/"
               f"{md_text(auto_peak(run).stem, code=True)}` on an idle machine")
    generation = md_text(run.cpu_generation or "not recorded")
    if peak_file is None or not Path(peak_file).is_file():
        return lines + [f"Not measured on this CPU generation ({generation}): {command}.", ""]
    data = json.loads(Path(peak_file).read_text())
    measured_on = data.get("cpu_generation")
    if measured_on != run.cpu_generation:
        return lines + [f"`{display_path(peak_file)}` was measured on {md_text(measured_on)}, this run on "
                        f"{generation}: not comparable. {command}.", ""]
    peak = peak_module.Peak.from_dict(data)
    rows, skipped = peak_module.roofline_rows(run, store)
    plot_roofline(rows, peak, chart, machine_summary(run))
    # the run's cell names and forms, as text (a "|" would split the table's cells)
    shown = [replace(r, cell=md_text(r.cell).replace("|", "\\|"), form=md_text(r.form).replace("|", "\\|"))
             for r in rows]
    lines += [f"From `{display_path(peak_file)}` ({md_text(measured_on)}); the cells are this run's.", "",
              peak_module.format_peak(peak, shown).rstrip(), "",
              f"![each cell's effective throughput against the machine's peak]({chart.name})", ""]
    lines += [f"- not shown: {_skipped_text(run, why)}" for why in skipped]
    return lines + ([""] if skipped else [])


def _skipped_text(run: Run, why: str) -> str:
    """A cell ``peak.roofline_rows`` left out, its message opening with the cell's name: that name as text."""
    name = next((n for n in sorted(run.cells, key=len, reverse=True) if why.startswith(f"{n}: ")), None)
    return why if name is None else md_text(name) + why[len(name):]


def profiles_section(run: Run, profile_files: list[Path], profile: str) -> list[str]:
    """The committed per-layer profiles (``yolobench profile --out``), verbatim, each under its file name."""
    lines = ["## Where the time goes: per-layer profiles", ""]
    if not profile_files:
        from yolobench.timer import generation_slug

        name = f"{profile}-{generation_slug(run.cpu_generation or 'unknown')}-CELL.md"
        return lines + [f"None committed for profile {profile} on {md_text(run.cpu_generation or 'this CPU')}: e.g. "
                        f"`yolobench profile --profile {profile} --variant pruned_quant --engine deepsparse --vs "
                        f"oneshot:openvino --out results/profiles/{md_text(name, code=True)}` on an idle machine.", ""]
    for path in profile_files:
        lines += [f"### `{display_path(path)}`", "", Path(path).read_text().strip(), ""]
    return lines
