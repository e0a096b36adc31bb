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


# --- every writer, every command: what a fault leaves and what the next run does ---
#
# Faults are injected three ways: a small tmpfs mounted in a private mount namespace (`unshare`, above) for a
# real full disk, a read-only mount the same way (tests may run as root, whom chmod does not stop), and, in
# process, the writer functions the code uses raising OSError(ENOSPC) at their Nth call.

import errno as _errno
import json
import random
import shutil
import signal
import textwrap
import time

from yolobench import children, fsutil, runfile
from yolobench.store import META_NAME, Store

SEED = 30  # the kill points below are drawn from this seed: the same points on every run


def yolobench_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "yolobench", *args]


def run_yolobench(command: list[str], timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})})


def the_one_line(done: subprocess.CompletedProcess, command: str) -> str:
    """The single line the user sees for the fault: `yolobench <command>: ...`, and no traceback."""
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith(f"yolobench {command}:")]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def read_only_command(mountpoint: Path, command: list[str], source: Path | None = None) -> list[str] | None:
    """``command`` run with ``mountpoint`` read-only: ``source`` bound there read-only, or (without one) an
    empty tmpfs holding an empty ``store`` folder; None where this machine cannot mount one."""
    unshare = "/usr/bin/unshare"
    if not os.path.exists(unshare) or small_filesystem_command(mountpoint, ["true"]) is None:
        return None
    if source is not None:
        setup = f'mount --bind "{source}" "$1" && mount -o remount,bind,ro "$1"'
    else:
        setup = 'mount -t tmpfs -o size=64k tmpfs "$1" && mkdir "$1/store" && mount -o remount,ro "$1"'
    script = f'{setup} && shift && "$@"'
    return [unshare, "--map-root-user", "--mount", "sh", "-c", script, "sh", str(mountpoint), *command]


def assert_store_consistent(store: Store) -> None:
    """Nothing in the store passes for what it is not: every entry folder is complete (meta.json and every
    file it lists, sizes and sha256 matching); whatever else there is is a work folder, a lock, or a
    `.tmp-` folder no reader opens."""
    for path in store.root.iterdir():
        if path.name in ("work", "locks", "corrupt") or path.name.startswith(".tmp-"):
            continue
        meta = store.verify(path)
        assert meta is not None, f"{path} is in the store but not a complete entry: {sorted(os.listdir(path))}"
        assert set(meta["files"]) | {META_NAME} == {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}


class NthWriteFails:
    """Path.write_bytes / Path.write_text (what the store and the builder write small files with) and
    fsutil.atomic_torch_save raise OSError(ENOSPC) at the ``n``th call, as a disk filling up would."""

    def __init__(self, monkeypatch, n: int):
        self.n, self.calls = n, 0
        for owner, name in ((Path, "write_bytes"), (Path, "write_text"), (fsutil, "atomic_torch_save")):
            real = getattr(owner, name)
            monkeypatch.setattr(owner, name, self._wrap(real))

    def _wrap(self, real):
        def write(*args, **kwargs):
            self.calls += 1
            if self.calls == self.n:
                target = args[0] if isinstance(args[0], Path) else args[1]
                raise OSError(_errno.ENOSPC, "No space left on device", str(target))
            return real(*args, **kwargs)

        return write


def stand_in_build(work: Path, out: Path) -> dict:
    """An artifact's files, written as the builder writes them (no training): weights, model, ONNX."""
    (work / "checkpoint").mkdir(exist_ok=True)
    fsutil.atomic_torch_save({"epoch": 1}, work / "checkpoint" / "checkpoint.pt")
    fsutil.atomic_torch_save({"state_dict": {}}, out / "weights.pt")
    (out / "model.yaml").write_text("nc: 3\n")
    (out / "model-64.onnx").write_bytes(os.urandom(4096))
    return {"profile": "tiny"}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_the_store_on_a_full_disk_at_any_write_keeps_no_entry_and_the_next_build_completes(tmp_path, monkeypatch, n):
    """Writes 1-4 are the build's (checkpoint, weights, model.yaml, ONNX), 5 is the store's meta.json."""
    store = Store(tmp_path / "store")
    key = "0123456789abcdef"
    with monkeypatch.context() as patch:
        failing = NthWriteFails(patch, n)
        with pytest.raises(OSError) as raised:
            store.build("dense", key, stand_in_build)
    assert failing.calls == n and raised.value.errno == _errno.ENOSPC
    assert store.get("dense", key) is None and not store.entry_dir("dense", key).exists()
    assert not list(store.root.glob(".tmp-*")) and not list(store.root.rglob("*.tmp*"))  # no half-written file
    assert store.state("dense", key) == "partial"  # the work folder is kept for a resume, and says so
    artifact = store.build("dense", key, stand_in_build)  # the next run, with space
    assert artifact.path == store.entry_dir("dense", key) and not store.work_dir("dense", key).exists()
    assert_store_consistent(store)


TORCH_SHORT_WRITE = "[enforce fail at inline_container.cc:672] . unexpected pos 20614784 vs 20614680"


def test_torch_save_on_a_full_disk_is_enospc_naming_the_file_and_leaves_none(tmp_path, monkeypatch):
    """torch.save reports a full disk as a RuntimeError from its zip writer (the message above is what a 20 MB
    filesystem gave): the weights and the training checkpoint turn it into OSError(ENOSPC, ..., path)."""
    import torch

    from yolobench import modelio, training

    def short_write(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 half a zip")  # what was written before the disk filled up
        raise RuntimeError(TORCH_SHORT_WRITE)

    checkpoint = tmp_path / "checkpoint.pt"
    training._atomic_torch_save({"epoch": 1}, checkpoint)  # the previous epoch's, whole
    before = checkpoint.read_bytes()
    monkeypatch.setattr(torch, "save", short_write)
    weights = tmp_path / "weights.pt"
    with pytest.raises(OSError) as raised:
        modelio.save_weights(weights, torch.nn.Linear(2, 2), cfg={}, nc=1, names={0: "a"}, recipe_text=None,
                             recipe_variables=None)
    assert raised.value.errno == _errno.ENOSPC and raised.value.filename == str(weights)
    assert faults.describe(raised.value).startswith(f"no space left on the device writing {weights}: ")
    with pytest.raises(OSError, match="No space left"):
        training._atomic_torch_save({"epoch": 2}, checkpoint)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"] and checkpoint.read_bytes() == before

    def a_bug(obj, path, *args, **kwargs):
        raise RuntimeError("cannot pickle 'generator' object")

    monkeypatch.setattr(torch, "save", a_bug)  # any other failure of torch.save is not a full disk
    with pytest.raises(RuntimeError, match="cannot pickle"):
        fsutil.atomic_torch_save({}, weights)


def test_a_deepsparse_probe_that_hangs_is_one_line_naming_the_onnx_file(tmp_path, monkeypatch):
    from yolobench.builder import artifact as builder_artifact

    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())  # as if deepsparse were installed

    def hangs(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs.get("timeout"))

    monkeypatch.setattr(children, "run", hangs)
    with pytest.raises(UserError) as raised:
        builder_artifact._deepsparse_compiles(tmp_path, ["fp32"], [64])
    message = str(raised.value)
    assert "DeepSparse did not compile model-64.onnx within 900 s" in message and "\n" not in message


def test_a_killed_build_leaves_a_tmp_folder_that_is_never_an_entry_and_the_next_build_removes(tmp_path):
    store = Store(tmp_path / "store")
    key = "0123456789abcdef"
    killed = store.root / f".tmp-dense-{key}-99999"  # what SIGKILL leaves: half an artifact, no meta.json
    killed.mkdir(parents=True)
    (killed / "weights.pt").write_bytes(b"half")
    assert store.get("dense", key) is None and store.state("dense", key) == "missing"
    store.build("dense", key, stand_in_build)
    assert not killed.exists()
    assert_store_consistent(store)


# --- bench: the run file is whole or absent ---


def fake_pytest_writing(document: dict | None, returncode: int = 0, then=None):
    """children.run standing for pytest: writes ``document`` where --benchmark-json says (if given), then
    returns ``returncode`` or raises ``then``."""
    def run(command, **kwargs):
        target = Path(next(a for a in command if a.startswith("--benchmark-json=")).split("=", 1)[1])
        if document is not None:
            target.write_text(json.dumps(document))
        if then is not None:
            raise then
        return subprocess.CompletedProcess(command, returncode)

    return run


def a_run_document() -> dict:
    return runfile.read_document(RUN)


@pytest.mark.parametrize("name", ["run.json", "run.json.gz"])
def test_a_bench_interrupted_after_pytest_wrote_leaves_the_previous_run_file(tmp_path, monkeypatch, capsys, name):
    """pytest-benchmark writes its JSON even for a stopped session: the command keeps it out of --out."""
    from yolobench.commands import bench as bench_command

    out = tmp_path / name
    runfile.write_run(out, {"previous": True})
    before = out.read_bytes()
    monkeypatch.setattr(bench_command.children, "run", fake_pytest_writing({"partial": True}, then=KeyboardInterrupt()))
    temp_before = set(Path(tempfile_dir()).glob("yolobench-bench-*"))
    assert cli.main(["bench", "--profile", "tiny", "--variants", "dense", "--engines", "onnxruntime",
                     "--out", str(out)]) == 130
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert set(Path(tempfile_dir()).glob("yolobench-bench-*")) == temp_before  # the private folder is gone
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("yolobench bench: interrupted")


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()


def test_a_pytest_ended_by_a_signal_is_one_line_and_no_run_file(tmp_path, monkeypatch, capsys):
    """An engine whose native code aborts, loaded in pytest's own process (no crash isolation), or the kernel's
    OOM killer: pytest dies by a signal and writes nothing; bench says so in one line, exit 1."""
    from yolobench.commands import bench as bench_command

    monkeypatch.setattr(bench_command.children, "run", fake_pytest_writing(None, returncode=-signal.SIGABRT))
    out = tmp_path / "run.json.gz"
    assert cli.main(["bench", "--profile", "tiny", "--variants", "dense", "--engines", "onnxruntime",
                     "--out", str(out)]) == faults.EXIT_FAULT
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("yolobench bench: pytest was ended by SIGABRT before it wrote the run file")
    assert "can_abort_process" in err[-1] and not out.exists() and list(tmp_path.iterdir()) == []


# A driver for `yolobench bench` in a subprocess whose pytest is replaced by one that writes a large run (random
# samples do not compress): the run file, not pytest, meets the full disk.
BENCH_DRIVER = textwrap.dedent('''
    import json, random, subprocess, sys
    from pathlib import Path
    from yolobench import cli
    from yolobench.commands import bench

    def pytest_run(command, **kwargs):
        target = Path(next(a for a in command if a.startswith("--benchmark-json=")).split("=", 1)[1])
        rng = random.Random(0)
        document = {"machine_info": {}, "commit_info": {}, "benchmarks": [
            {"name": "x", "extra_info": {"samples_ms": [rng.random() for _ in range(20000)]}, "stats": {}}]}
        target.write_text(json.dumps(document))
        return subprocess.CompletedProcess(command, 0)

    bench.children.run = pytest_run
    sys.exit(cli.main(sys.argv[1:]))
''')


@pytest.mark.parametrize("name", ["run.json", "run.json.gz"])
def test_bench_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, name):
    small = tmp_path / "small"
    small.mkdir()
    (tmp_path / "driver.py").write_text(BENCH_DRIVER)
    command = small_filesystem_command(small, [sys.executable, str(tmp_path / "driver.py"), "bench", "--profile",
                                               "tiny", "--variants", "dense", "--engines", "onnxruntime",
                                               "--out", str(small / name)])
    if command is None:
        pytest.skip("this machine cannot mount a small filesystem (unshare --map-root-user --mount)")
    done = run_yolobench(command, timeout=300)
    assert done.returncode == faults.EXIT_FAULT, done.stderr[-2000:]
    line = the_one_line(done, "bench")
    assert "no space left on the device writing" in line and str(small) in line
    assert done.stdout.strip() == ""  # `ls -A` of the small filesystem: nothing left


# pytest's own session fixtures (fixtures/variants.py): a fault while building stops the session in one line.
ENOSPC_PLUGIN = textwrap.dedent('''
    import errno

    def pytest_configure(config):
        from yolobench import builder

        def full_disk(name, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device", "/store/work/dense/checkpoint/checkpoint.pt")

        builder.build = full_disk
''')


def test_a_fault_in_the_session_fixtures_stops_pytest_with_one_line_and_no_run_file(tmp_path):
    (tmp_path / "yb_enospc_plugin.py").write_text(ENOSPC_PLUGIN)
    out = tmp_path / "run.json.gz"
    done = run_yolobench(yolobench_command("bench", "--profile", "tiny", "--variants", "dense", "--engines",
                                           "onnxruntime", "--sessions", "2", "--out", str(out), "--store",
                                           str(tmp_path / "store"), "--", "-p", "yb_enospc_plugin"),
                         timeout=300, env={"PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(tmp_path)])})
    output = done.stdout + done.stderr
    assert done.returncode == faults.EXIT_FAULT, output[-3000:]
    lines = [line for line in output.splitlines() if "yolobench: no space left on the device" in line]
    assert len(lines) == 1 and "(building dense)" in lines[0] and "Traceback" not in output, output[-3000:]
    assert output.count("checkpoint.pt") == 1  # one line for the session, not one error per test
    assert not out.exists()


# --- a read-only store ---


def test_build_into_a_read_only_store_is_one_line_and_writes_nothing(tmp_path, tiny_home):
    ro = tmp_path / "ro"
    ro.mkdir()
    command = read_only_command(ro, yolobench_command("build", "--profile", "tiny", "--variants", "dense",
                                                      "--store", str(ro / "store")))
    if command is None:
        pytest.skip("this machine cannot mount a read-only filesystem (unshare --map-root-user --mount)")
    done = run_yolobench(command, timeout=300)
    assert done.returncode == faults.EXIT_FAULT, done.stderr[-2000:]
    line = the_one_line(done, "build")
    assert "read-only file system writing" in line and str(ro / "store") in line and "--store" in line


def test_a_report_reads_a_read_only_store(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    out = tmp_path / "report"
    command = read_only_command(ro, yolobench_command("report", "--run", str(RUN), "--out", str(out),
                                                      "--no-detections", "--quiet", "--store", str(ro / "store")))
    if command is None:
        pytest.skip("this machine cannot mount a read-only filesystem (unshare --map-root-user --mount)")
    done = run_yolobench(command, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "report.md").is_file()


def test_ab_with_a_read_only_store_is_one_line(tmp_path, tiny_home):
    ro = tmp_path / "ro"
    ro.mkdir()
    command = read_only_command(ro, yolobench_command("ab", "--variant", "dense", "--engine", "onnxruntime",
                                                      "--profile", "tiny", "--base-store", str(tmp_path / "base"),
                                                      "--store", str(ro / "store"), "--quiet"))
    if command is None:
        pytest.skip("this machine cannot mount a read-only filesystem (unshare --map-root-user --mount)")
    done = run_yolobench(command, timeout=300)
    assert done.returncode == faults.EXIT_FAULT, done.stderr[-2000:]
    assert "read-only file system writing" in the_one_line(done, "ab")


# --- a run file that is not a whole matrix says so; the gate and the report repeat it ---


def test_the_run_file_names_the_cells_pytest_did_not_time(monkeypatch):
    """benchmarks/conftest.py's record, from pytest's reports: failed, skipped, never run, sessions missing."""
    from types import SimpleNamespace

    sys.path.insert(0, str(REPO))
    try:
        from benchmarks import conftest as matrix
    finally:
        sys.path.remove(str(REPO))
    plugin = matrix.CellOutcomes()
    plugin.cells = {"a-s1": "dense-onnxruntime-64", "a-s2": "dense-onnxruntime-64", "b-s1": "dense-fakert-64",
                    "c-s1": "pruned-onnxruntime-64", "d-s1": None, "e-s1": "oneshot-onnxruntime-64"}

    def report(nodeid, when, outcome, longrepr=None):
        return SimpleNamespace(nodeid=nodeid, when=when, failed=outcome == "failed", skipped=outcome == "skipped",
                               passed=outcome == "passed", longrepr=longrepr, longreprtext=str(longrepr))

    plugin.pytest_runtest_logreport(report("a-s1", "call", "passed"))
    plugin.pytest_runtest_logreport(report("a-s2", "call", "failed", SimpleNamespace(
        reprcrash=SimpleNamespace(message="UserError: dense changed in the store\nmore"))))
    plugin.pytest_runtest_logreport(report("b-s1", "setup", "skipped", ("f.py", 1, "Skipped: fakert crashed")))
    plugin.pytest_runtest_logreport(report("d-s1", "setup", "skipped", ("f.py", 1, "Skipped: untimed")))
    plugin.pytest_runtest_logreport(report("e-s1", "call", "passed"))
    config = SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=lambda name: plugin))
    assert matrix.missing_cells(config) == {
        "dense-onnxruntime-64": "1 of 2 sessions missing (session 2: failed: UserError: dense changed in the store)",
        "dense-fakert-64": "skipped: fakert crashed",
        "pruned-onnxruntime-64": "not run: pytest stopped before it"}  # d: untimed by design, e: whole
    document = {"machine_info": {}}
    matrix.pytest_benchmark_update_json(config, [], document)
    assert document["machine_info"][runfile.INCOMPLETE_KEY] == matrix.missing_cells(config)


def test_the_gate_and_the_report_say_a_run_is_incomplete(tmp_path, capsys):
    document = a_run_document()
    dropped = "pruned_quant-deepsparse-160"
    document["benchmarks"] = [b for b in document["benchmarks"] if b["extra_info"].get("cell") != dropped]
    reason = "skipped: deepsparse crashed loading pruned_quant (exit status -6 in a child process)"
    document["machine_info"][runfile.INCOMPLETE_KEY] = {dropped: reason}
    current = tmp_path / "current.json.gz"
    runfile.write_run(current, document)
    assert runfile.load_run(current).incomplete == {dropped: reason}
    assert runfile.load_run(RUN).incomplete == {}  # a whole matrix (and every run written before the record)
    rules = tmp_path / "thresholds.toml"
    rules.write_text('[defaults]\nlatency_factor = 1.75\nsource = "test"\n')
    code = cli.main(["gate", "--current", str(current), "--baseline", str(RUN), "--thresholds", str(rules)])
    text = capsys.readouterr().out
    assert code == 1
    assert f"current: not a whole matrix: 1 selected cell(s) missing or missing sessions, as recorded when pytest " \
           f"ended: {dropped} ({reason})" in text
    missing = [line for line in text.splitlines() if line.startswith(dropped)]
    assert missing and "missing" in missing[0] and "recorded in the run file" in missing[0], text
    out = tmp_path / "report"
    report.write_report(current, out, detections=False, store=Store(tmp_path / "store"))
    assert f"- **Incomplete run**: not a whole matrix: 1 selected cell(s)" in (out / "report.md").read_text()


# --- real builds on the tiny profile (slow: each build trains for seconds to a minute) ---


@pytest.mark.slow
def test_a_build_on_a_full_disk_is_one_line_and_leaves_no_entry(tmp_path, tiny_home):
    """A 20 MB store: the first training checkpoint does not fit (torch.save's short write)."""
    small = tmp_path / "small"
    small.mkdir()
    command = small_filesystem_command(small, yolobench_command("build", "--profile", "tiny", "--variants", "dense",
                                                                "--store", str(small / "store")), size="20m")
    if command is None:
        pytest.skip("this machine cannot mount a small filesystem (unshare --map-root-user --mount)")
    command[5] = command[5].replace('ls -A "', 'find "').replace('"; exit', '" -mindepth 1; exit')  # every path left
    done = run_yolobench(command, timeout=900)
    assert done.returncode == faults.EXIT_FAULT, done.stderr[-3000:]
    line = the_one_line(done, "build")
    assert "no space left on the device writing" in line and "checkpoint.pt" in line
    left = {str(Path(p).relative_to(small)) for p in done.stdout.split()}
    key = next(p for p in left if p.startswith("store/work/dense-")).split("dense-")[1].split("/")[0]
    # what is left: the work folder (resumable state) and the lock; no entry, no .tmp folder, no partial file
    assert not any(p.startswith(("store/dense-", "store/.tmp-")) or ".tmp" in p for p in left), left
    assert left <= {"store", "store/locks", f"store/locks/dense-{key}.lock", "store/work", f"store/work/dense-{key}",
                    f"store/work/dense-{key}/checkpoint"} | {p for p in left if p.startswith(f"store/work/dense-{key}/train")}


def kill_when(command: list[str], marker: str, sig: int, delay_s: float, timeout: float = 900) -> tuple[int, str]:
    """Run ``command``; ``delay_s`` after a progress line containing ``marker``, send ``sig``. (exit status, stderr)"""
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if marker in line:
                time.sleep(delay_s)
                proc.send_signal(sig)
                break
        lines += proc.stderr.readlines()
        return proc.wait(timeout=timeout), "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_a_build_killed_at_seeded_points_never_leaves_a_partial_entry_and_the_rerun_completes(tiny_home):
    """SIGKILL during training and during the export, SIGTERM while measuring, each `delay` seconds (drawn from
    SEED) after the progress line; after each the store holds no partial entry; the last run finishes it."""
    from yolobench import builder

    store = Store(tiny_home / "store")
    key = builder.variant_key("dense", "tiny", None)
    shutil.rmtree(store.entry_dir("dense", key), ignore_errors=True)
    rng = random.Random(SEED)
    command = yolobench_command("build", "--profile", "tiny", "--variants", "dense", "--store", str(store.root))
    for marker, sig in (("] training ", signal.SIGKILL), ("] exporting ONNX", signal.SIGKILL),
                        ("] measuring mAP", signal.SIGTERM)):
        code, err = kill_when(command, marker, sig, delay_s=round(rng.uniform(0.0, 2.0), 2))
        if code == 0:  # finished before the signal: then it is whole
            break
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else children.EXIT_TERMINATED), err[-3000:]
        assert_store_consistent(store)
        assert store.get("dense", key) is None and store.state("dense", key) == "partial"
        if sig == signal.SIGTERM:  # a stop it can handle: one line, and its .tmp folder removed on the way out
            assert err.strip().splitlines()[-1].startswith("yolobench build: terminated (SIGTERM)")
            assert "Traceback" not in err and not list(store.root.glob(".tmp-*"))
    done = run_yolobench(command, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_store_consistent(store)
    artifact = store.get("dense", key)
    assert artifact is not None and not store.work_dir("dense", key).exists()
    assert not list(store.root.glob(".tmp-*"))  # the killed builds' folders were removed


@pytest.fixture(scope="module")
def built(tiny_home):
    """The tiny dense artifact in the module's store (built here, or by the kill test above)."""
    from yolobench import builder

    return builder.build("dense", "tiny", store=Store(tiny_home / "store"))


ABORTING_ENGINE = textwrap.dedent('''
    import os

    from yolobench.engines.base import FORM_FP32, Engine


    class AbortingEngine(Engine):
        """Native code that ends the process on every model (as DeepSparse does on a graph it rejects)."""

        name = "fakeabort"
        package = "fakeabort"
        preferred_forms = (FORM_FP32,)
        order = 50
        can_abort_process = CAN_ABORT

        def _import(self):
            return None

        def _load_onnx(self, spec, form, geometry, threads):
            os.abort()
''')


@pytest.mark.slow
@pytest.mark.parametrize("isolated", [True, False], ids=["crash-isolated", "not-declared"])
def test_an_engine_that_aborts_the_process(built, tiny_home, tmp_path, isolated):
    """Declared (can_abort_process): its cell is skipped with the crash's one-line reason, the other cells are
    timed, and the run file says which cell it lacks. Undeclared: it ends pytest; bench says so in one line."""
    (tmp_path / "fake_abort_engine.py").write_text(ABORTING_ENGINE.replace("CAN_ABORT", str(isolated)))
    out = tmp_path / "runs" / "run.json.gz"
    done = run_yolobench(yolobench_command("bench", "--profile", "tiny", "--variants", "dense", "--engines",
                                           "onnxruntime,fakeabort", "--sessions", "1", "--out", str(out),
                                           "--store", str(built.path.parent)), timeout=900,
                         env={"PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(tmp_path)]),
                              "YOLOBENCH_EXTRA_ENGINES": "fake_abort_engine"})
    output = done.stdout + done.stderr
    if not isolated:
        assert done.returncode == faults.EXIT_FAULT, output[-3000:]
        assert the_one_line(done, "bench").startswith("yolobench bench: pytest was ended by SIGABRT")
        assert not out.exists() and not any(out.parent.iterdir())
        return
    assert done.returncode == 0, output[-3000:]
    reasons = [line for line in output.splitlines() if line.startswith("SKIPPED") and "fakeabort crashed" in line]
    assert len(reasons) == 1 and "exit status -6 in a child process" in reasons[0], output[-3000:]
    run = runfile.load_run(out)
    assert set(run.cells) == {"dense-onnxruntime-64"} and run.cells["dense-onnxruntime-64"].latency.n > 0
    assert list(run.incomplete) == ["dense-fakeabort-64"]
    assert run.incomplete["dense-fakeabort-64"].startswith("skipped: fakeabort cannot run dense: fakeabort crashed")


@pytest.mark.slow
def test_a_store_file_replaced_under_a_running_benchmark_fails_its_cell_and_is_rebuilt(built, tmp_path):
    """The store verified the entry when the session opened it; the model file is replaced afterwards (same
    size, other bytes): the cell refuses to time it, and the next build sets the entry aside and rebuilds it."""
    import onnx
    from onnx import numpy_helper

    from yolobench import bench as bench_module

    store = Store(tmp_path / "store")
    shutil.copytree(built.path, store.entry_dir(built.name, built.key))
    artifact = store.get(built.name, built.key)
    model_path = artifact.onnx_path()
    model = onnx.load(str(model_path))
    weights = model.graph.initializer[0]
    weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights) * 2, weights.name))
    onnx.save(model, str(model_path))
    assert model_path.stat().st_size == artifact.meta["files"][model_path.name]["size"]  # only the hash tells
    with pytest.raises(UserError) as raised:
        bench_module.measure_session(artifact, "onnxruntime", index=1, sessions=1, imgsz=64)
    message = str(raised.value)
    assert message.startswith(f"dense (key {built.key}) changed in the store after it was verified: {model_path} "
                              "no longer has the sha256 in its meta.json; this cell is not measured")
    assert store.get("dense", built.key) is None  # the next run's deep check (`state` compares sizes only)
    rebuilt = store.build("dense", built.key, lambda work, out: (shutil.copytree(built.path, out, dirs_exist_ok=True),
                                                                  json.loads((built.path / META_NAME).read_text()))[1])
    assert store.verify(rebuilt.path) is not None and len(list((store.root / "corrupt").iterdir())) == 1
    assert_store_consistent(store)


@pytest.mark.slow
def test_a_built_store_mounted_read_only_still_serves_build_and_bench(built, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    command = read_only_command(ro, yolobench_command("build", "--profile", "tiny", "--variants", "dense",
                                                      "--store", str(ro)), source=built.path.parent)
    if command is None:
        pytest.skip("this machine cannot mount a read-only filesystem (unshare --map-root-user --mount)")
    done = run_yolobench(command, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert any(line.split()[:2] == ["dense", "cached"] for line in done.stdout.splitlines()), done.stdout


@pytest.mark.slow
def test_annotate_on_a_full_disk_is_one_line_and_leaves_nothing(built, tiny_home, tmp_path):
    from yolobench.data import check_dataset

    images = check_dataset(built.meta["dataset"]["data_yaml"], decode_images=False).val_files[:4]
    source = tmp_path / "images"
    source.mkdir()
    for image in images:
        shutil.copy(image, source / image.name)
    small = tmp_path / "small"
    small.mkdir()
    command = small_filesystem_command(small, yolobench_command(
        "annotate", "--variant", "dense", "--engine", "onnxruntime", "--profile", "tiny", "--source", str(source),
        "--out", str(small / "annotated"), "--store", str(built.path.parent), "--quiet"), size="4k")
    if command is None:
        pytest.skip("this machine cannot mount a small filesystem (unshare --map-root-user --mount)")
    done = run_yolobench(command, timeout=600)
    assert done.returncode == faults.EXIT_FAULT, done.stderr[-3000:]
    line = the_one_line(done, "annotate")
    assert "no space left on the device writing" in line and str(small / "annotated") in line
    assert done.stdout.strip() == ""


def test_out_auto_keeps_a_ladder_from_the_users_checkpoint_apart(tmp_path, monkeypatch):
    from yolobench import paths
    from yolobench.commands.report import auto_out_dir
    from yolobench.runfile import load_run

    monkeypatch.setattr(paths, "repo_root", lambda: tmp_path)
    yours = load_run(REPO / "results" / "your-model" / "2026-12-04-zen4" / "run-weights.json.gz")  # --weights
    assert auto_out_dir(yours).name == "report-smoke-amd-family25-model17-weights-c192c827"
    assert auto_out_dir(load_run(RUN)).name == "report-smoke-amd-family25-model17"
