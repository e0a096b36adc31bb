"""Cancelling a command stops everything it started: SIGTERM to `yolobench bench` ends its pytest child
and that child's own children, exits 143 with one line, and leaves no run file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from yolobench import children

REPO = Path(__file__).resolve().parents[1]

# Loaded into the benchmark session's pytest with -p: it records its pid, starts a grandchild that
# sleeps, writes a partial run file (as a writer stopped half-way would), then hangs, like a long
# benchmark. Nothing in it ends by itself within the test's time.
SLEEPY_PLUGIN = textwrap.dedent('''
    import os, subprocess, sys, time
    from pathlib import Path

    def pytest_configure(config):
        here = Path(os.environ["YB_TEST_PIDS"])
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        out = Path(config.getoption("benchmark_json"))  # where pytest-benchmark would write
        out.write_text('{"partial": ')
        (here / "partial").write_text(str(out))
        (here / "pids.tmp").write_text(f"{os.getpid()} {grandchild.pid}")
        (here / "pids.tmp").rename(here / "pids")
        time.sleep(300)
''')


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (ended, not yet reaped by whoever adopted it) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _kill_leftovers(pid_file: Path) -> None:
    """Kill whatever the plugin started that is still alive."""
    if pid_file.exists():
        for pid in map(int, pid_file.read_text().split()):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_sigterm_stops_bench_and_its_children(tmp_path):
    (tmp_path / "yb_sleepy_plugin.py").write_text(SLEEPY_PLUGIN)
    out = tmp_path / "run.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
               YB_TEST_PIDS=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-m", "yolobench", "bench", "--profile", "smoke", "--variants", "dense",
                               "--engines", "onnxruntime", "--out", str(out), "--", "-p", "yb_sleepy_plugin"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: (tmp_path / "pids").exists() or parent.poll() is not None, 120), "child never started"
        assert parent.poll() is None, parent.communicate()
        child, grandchild = map(int, (tmp_path / "pids").read_text().split())
        assert _alive(child) and _alive(grandchild)
        parent.send_signal(signal.SIGTERM)
        _, stderr = parent.communicate(timeout=children.GRACE_S + 30)
        assert parent.returncode == children.EXIT_TERMINATED, stderr
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("yolobench bench: terminated (SIGTERM)"), stderr
        assert "Traceback" not in stderr
        assert _wait_for(lambda: not _alive(child) and not _alive(grandchild), 10), "a child outlived its parent"
        assert not out.exists(), "a cancelled run left a run file"
        assert not Path((tmp_path / "partial").read_text()).exists(), "the partial JSON pytest wrote was left"
    finally:  # only after the assertions: never leave this test's sleepers behind, pass or fail
        if parent.poll() is None:
            parent.kill()
        _kill_leftovers(tmp_path / "pids")


def test_run_stops_the_group_on_timeout(tmp_path):
    """The same clean-up on a timeout: the child's own child does not survive."""
    pid_file = tmp_path / "pid"
    script = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
              f"time.sleep(300)']); open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(300)")
    with pytest.raises(subprocess.TimeoutExpired):
        children.run([sys.executable, "-c", script], timeout=3)
    grandchild = int(pid_file.read_text())
    assert _wait_for(lambda: not _alive(grandchild), 10)


def test_run_returns_output_and_status():
    done = children.run([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], capture_output=True)
    assert (done.returncode, done.stdout.strip()) == (3, "out")


# A test module run by the project's pytest (the root conftest.py loaded as a plugin, as in `yolobench
# bench`'s pytest): it starts a child through children.run, as bench.preflight and the memory scenario
# do; the child starts a grandchild, records both pids, and sleeps.
SLEEPY_TEST = textwrap.dedent('''
    import os, sys
    from yolobench import children

    CHILD = """
    import os, subprocess, sys, time
    from pathlib import Path
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    Path(sys.argv[1] + ".tmp").write_text(f"{os.getpid()} {grandchild.pid}")
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(300)
    """

    def test_sleeps():
        children.run([sys.executable, "-c", CHILD, os.environ["YB_TEST_PIDS"]])
''')


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_sigterm_to_pytest_stops_the_children_it_started(tmp_path):
    """children.run starts each child in a session of its own (so its whole group can be stopped without
    stopping the caller); pytest, which `bench` runs, must then stop those groups itself on SIGTERM."""
    (tmp_path / "test_sleepy.py").write_text(SLEEPY_TEST)
    pids = tmp_path / "pids"
    env = dict(os.environ, YB_TEST_PIDS=str(pids),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH")])))
    assert not (tmp_path / "conftest.py").exists()  # `-p conftest` below is the project's (REPO on the path)
    parent = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "conftest", "-q", "-p", "no:cacheprovider",
                               "--rootdir", str(tmp_path), str(tmp_path / "test_sleepy.py")],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for(lambda: pids.exists() or parent.poll() is not None, 120), "the child never started"
        assert parent.poll() is None, parent.communicate()
        child, grandchild = map(int, pids.read_text().split())
        assert _alive(child) and _alive(grandchild)
        parent.send_signal(signal.SIGTERM)
        parent.communicate(timeout=children.GRACE_S + 30)
        assert parent.returncode in (-signal.SIGTERM, children.EXIT_TERMINATED)
        assert _wait_for(lambda: not _alive(child) and not _alive(grandchild), 10), "a child outlived pytest"
    finally:
        if parent.poll() is None:
            parent.kill()
        _kill_leftovers(pids)


def test_stop_all_stops_every_running_child_group(tmp_path):
    """What the SIGTERM handlers call: every group children.run started and still waits on, from any thread."""
    import threading

    pid_files = [tmp_path / f"pid{k}" for k in range(2)]
    script = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
              "time.sleep(300)']); open(sys.argv[1], 'w').write(str(p.pid)); time.sleep(300)")
    errors = []

    def wait_in_thread(pid_file):
        try:
            children.run([sys.executable, "-c", script, str(pid_file)])
        except BaseException as err:  # noqa: BLE001 - recorded for the assertion below
            errors.append(err)

    threads = [threading.Thread(target=wait_in_thread, args=(p,)) for p in pid_files]
    for thread in threads:
        thread.start()
    try:
        assert _wait_for(lambda: all(p.exists() and p.read_text() for p in pid_files), 60)
        grandchildren = [int(p.read_text()) for p in pid_files]
        children.stop_all(grace_s=2)
        for thread in threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in threads) and not errors
        assert _wait_for(lambda: not any(map(_alive, grandchildren)), 10)
    finally:
        for pid_file in pid_files:
            _kill_leftovers(pid_file)
