"""Faults of the machine (a full disk, a folder that cannot be written, memory) are one line and exit 1,
not a traceback; ``--debug`` / ``YOLOBENCH_DEBUG=1`` shows the traceback (yolobench.faults, yolobench.cli)."""

from __future__ import annotations

import errno

import pytest

from yolobench import cli, faults
from yolobench.errors import UserError
from yolobench.commands import machines as machines_command


@pytest.fixture
def failing(monkeypatch):
    """`yolobench machines` replaced by one that raises the error the test sets."""
    state = {}

    def run(args):
        raise state["error"]

    monkeypatch.setattr(machines_command, "run", run)
    monkeypatch.delenv(faults.DEBUG_ENV, raising=False)
    return state


@pytest.mark.parametrize("error, words", [
    (OSError(errno.ENOSPC, "No space left on device", "/out/fps.png"), ["no space left", "/out/fps.png", "--out"]),
    (PermissionError(errno.EACCES, "Permission denied", "/store/x"), ["permission denied on /store/x"]),
    (OSError(errno.EROFS, "Read-only file system", "/ro/run.json"), ["read-only file system", "/ro/run.json"]),
    (MemoryError(), ["out of memory"]),
    (OSError(errno.EIO, "Input/output error", "/disk/a"), ["Input/output error: /disk/a", "--debug"]),
])
def test_a_fault_is_one_line_and_exit_1(failing, capsys, error, words):
    failing["error"] = error
    assert cli.main(["machines", "run.json"]) == faults.EXIT_FAULT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("yolobench machines: ") and "Traceback" not in err
    assert all(word in err for word in words), err


def test_debug_shows_the_traceback(failing, monkeypatch):
    failing["error"] = OSError(errno.ENOSPC, "No space left on device", "/out/x")
    with pytest.raises(OSError):
        cli.main(["--debug", "machines", "run.json"])
    monkeypatch.setenv(faults.DEBUG_ENV, "1")
    with pytest.raises(OSError):
        cli.main(["machines", "run.json"])


def test_a_bug_keeps_its_traceback(failing):
    failing["error"] = ZeroDivisionError("a bug")
    with pytest.raises(ZeroDivisionError):
        cli.main(["machines", "run.json"])


# --- the report: complete or absent ---

import os
import subprocess
import sys
from pathlib import Path

from yolobench import report
from yolobench.report import writer

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "results" / "runs" / "smoke-2026-12-04-zen4" / "run-main-job-zen4.json.gz"  # a committed smoke run


def write(out: Path, store: Path, **kwargs):
    from yolobench.store import Store

    # an empty store, as on a fresh clone: the report reads no artifact (no gzip sizes to compute)
    return report.write_report(RUN, out, detections=False, store=Store(store), **kwargs)


def test_a_report_stopped_half_way_leaves_the_previous_one(tmp_path, monkeypatch):
    out = tmp_path / "reports" / "report"
    write(out, tmp_path / "store")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # the user's Ctrl-C, or a fault, after the first charts are written

    monkeypatch.setattr(writer, "plot_tradeoff", stopped)
    with pytest.raises(KeyboardInterrupt):
        write(out, tmp_path / "store")
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["report"]  # nothing half-written beside it


def test_a_report_never_replaces_a_folder_that_is_not_a_reports(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds files that are not a report's \\(notes.txt\\)"):
        write(tmp_path, tmp_path.parent / f"{tmp_path.name}-store")
    assert (tmp_path / "notes.txt").read_text() == "mine" and not (tmp_path / "report.md").exists()


def test_out_auto_is_one_report_per_profile_and_cpu_generation(tmp_path, monkeypatch, capsys):
    from yolobench import paths

    monkeypatch.setattr(paths, "repo_root", lambda: tmp_path)
    assert cli.main(["report", "--run", str(RUN), "--out", "auto", "--no-detections", "--quiet",
                     "--history", "auto", "--store", str(tmp_path / "empty-store")]) == 0
    folder = tmp_path / "results" / "report-smoke-amd-family25-model17"
    text = (folder / "report.md").read_text()
    assert "[../asv-html/index.html](../asv-html/index.html)" in text  # the history, beside the reports


def small_filesystem_command(mountpoint: Path, command: list[str], size: str = "48k") -> list[str] | None:
    """``command`` run with a ``size`` tmpfs mounted at ``mountpoint`` (in a private mount namespace, so
    nothing outlives the test), or None where this machine cannot mount one."""
    unshare = "/usr/bin/unshare"
    if not os.path.exists(unshare):
        return None
    probe = subprocess.run([unshare, "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size={size} tmpfs {mountpoint}"], capture_output=True)
    if probe.returncode != 0:
        return None
    script = f'mount -t tmpfs -o size={size} tmpfs "$1" && shift && "$@"; code=$?; ls -A "{mountpoint}"; exit $code'
    return [unshare, "--map-root-user", "--mount", "sh", "-c", script, "sh", str(mountpoint), *command]


def test_a_report_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    command = small_filesystem_command(small, [sys.executable, "-m", "yolobench", "report", "--run", str(RUN),
                                               "--out", str(small / "report"), "--no-detections", "--quiet",
                                               "--store", str(tmp_path / "empty-store")])
    if command is None:
        pytest.skip("this machine cannot mount a small filesystem (unshare --map-root-user --mount)")
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    assert done.returncode == faults.EXIT_FAULT, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("yolobench report")]
    assert len(errors) == 1 and "no space left" in errors[0] and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stdout.strip() == ""  # `ls -A` of the small filesystem after the command: nothing left
