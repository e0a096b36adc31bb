"""The users' CI workflow (.github/workflows/benchmarks.yml) uploads what the main job writes.

The workflow cannot run here (no GitHub runner), so its one project-specific promise is checked
statically: the artifact paths it uploads match the files `tox -e deepsparse` and asv write.
"""

from __future__ import annotations

import configparser
import fnmatch
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = "smoke"  # tox.ini's default YOLOBENCH_PROFILE


def upload_paths() -> list[str]:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "benchmarks.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uploads = [step for step in steps if str(step.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads, "the workflow uploads nothing"
    return [line.strip() for step in uploads for line in step["with"]["path"].splitlines() if line.strip()]


def main_job_outputs() -> list[str]:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO / "tox.ini")
    commands = tox["testenv:deepsparse"]["commands"]
    found = re.findall(r"--out \{tox_root\}/(\S+)", commands)
    assert found, "tox -e deepsparse names no --out"
    return [path.replace("{env:YOLOBENCH_PROFILE}", PROFILE) for path in found]


def test_the_workflow_uploads_the_run_file_and_the_report_the_main_job_writes():
    globs = upload_paths()
    for written in main_job_outputs():  # results/runs/latest-smoke.json, results/report-smoke
        assert any(fnmatch.fnmatch(written, g.rstrip("/")) for g in globs), (written, globs)


def test_the_workflow_uploads_the_asv_html_that_asv_publish_writes():
    # asv.conf.json is asv's JSON with // comments, so the key is read by pattern, not by json.loads
    match = re.search(r'^\s*"html_dir"\s*:\s*"([^"]+)"', (REPO / "asv.conf.json").read_text(), re.MULTILINE)
    assert match, "asv.conf.json names no html_dir"
    html_dir = match.group(1)
    assert any(g.rstrip("/") == html_dir.rstrip("/") for g in upload_paths()), (html_dir, upload_paths())


def test_pull_requests_are_judged_by_the_ab_environment_against_their_base():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "benchmarks.yml").read_text())
    steps = workflow["jobs"]["benchmarks"]["steps"]
    ab = [step for step in steps if "tox.sh -e ab" in str(step.get("run", ""))]
    assert len(ab) == 1 and "pull_request" in ab[0]["if"] and "YOLOBENCH_AB_BASE=" in ab[0]["run"]
    assert "git fetch" in ab[0]["run"]  # a clone of the PR head alone has no base branch to build
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO / "tox.ini")
    commands = tox["testenv:ab"]["commands"]
    assert "yolobench ab --variant all" in commands and "--base-ref {env:YOLOBENCH_AB_BASE" in commands
    # its default engine settings are ones yolobench ab accepts (a typo would only show in CI)
    from yolobench.commands.ab import _settings

    default = re.search(r"--engine \{env:YOLOBENCH_AB_ENGINES:([^}]+)\}", commands)
    assert default and _settings(default.group(1)) == default.group(1).split(",")


def test_the_main_job_gates_strictly_so_a_machine_without_floors_or_baseline_fails():
    # Without --strict a run on a CPU generation that has no speedup floors and no baseline passes with a
    # note (a run 10x slower than any before included), and a run on a loaded machine only warns.
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO / "tox.ini")
    gates = [line for line in tox["testenv:deepsparse"]["commands"].splitlines() if line.strip().startswith("yolobench gate")]
    assert len(gates) == 1 and "--baseline auto" in gates[0] and "--strict" in gates[0].split(), gates
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "benchmarks.yml").read_text())
    runs = [str(step.get("run", "")) for step in workflow["jobs"]["benchmarks"]["steps"]]
    assert any("tox.sh -e deepsparse" in run for run in runs)  # the main job, with its strict gate
