"""yolobench's pytest options never clash with another plugin's (fixtures/options.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A plugin that, like pytest-profiling, adds --profile (and --data) before yolobench's conftest loads.
CLASHING_PLUGIN = '''
def pytest_addoption(parser):
    parser.addoption("--profile", action="store_true", help="another plugin's --profile")
    parser.addoption("--data", default="theirs", help="another plugin's --data")
'''


def collect(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "clashing_plugin.py").write_text(CLASHING_PLUGIN)
    env_path = os.pathsep.join([str(tmp_path), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "clashing_plugin",
                           "tests/test_parity_variants.py", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": env_path}, timeout=300)


def test_a_plugin_with_the_same_short_options_does_not_stop_pytest(tmp_path):
    done = collect(tmp_path, "--yb-profile=tiny", "--yb-variants=dense", "--profile")
    assert done.returncode == 0, done.stdout + done.stderr
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert ids and all("dense" in line for line in ids if "[" in line)


def test_the_short_alias_is_left_to_the_plugin_that_had_it(tmp_path):
    done = collect(tmp_path, "--profile=tiny")  # the other plugin's --profile is a flag: no value
    assert done.returncode != 0 and "--profile" in done.stderr


def test_a_command_run_from_a_checkout_without_its_own_code_refuses_in_one_line(tmp_path, monkeypatch, capsys):
    from yolobench import cli, paths

    other = tmp_path / "other-clone"
    (other / "results").mkdir(parents=True)
    (other / "pyproject.toml").write_text('[project]\nname = "yolobench"\n')
    monkeypatch.chdir(other / "results")
    assert paths.other_checkout() == other
    assert cli.main(["gate", "--help"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"you are in the checkout {other}" in err and "Run tox from" in err
    monkeypatch.chdir(tmp_path)  # outside any checkout: acts on the installed one, as before
    assert paths.other_checkout() is None
    monkeypatch.chdir(paths.installed_root() / "src")
    assert paths.other_checkout() is None


def test_engines_are_spelled_the_same_in_every_command(monkeypatch):
    from yolobench import cli
    from yolobench.commands import bench as bench_command
    from yolobench.commands import common

    assert common.engine_list(["deepsparse,onnxruntime"]) == common.engine_list(["deepsparse", "onnxruntime"]) \
        == ["deepsparse", "onnxruntime"]
    parser = cli.build_parser()
    for spelling in (["--engines", "deepsparse,onnxruntime"], ["--engines", "deepsparse", "onnxruntime"]):
        args = parser.parse_args(["bench", "--profile", "tiny", *spelling])
        command = bench_command.pytest_command(args, Path("/tmp/run.json"))
        assert "--yb-engines=deepsparse,onnxruntime" in command
        args = parser.parse_args(["parity", "--model", "m.onnx", *spelling])
        assert common.engine_list(args.engines) == ["deepsparse", "onnxruntime"]
    help_text = parser._subparsers._group_actions[0].choices["build"].format_help()
    assert "smoke, tiny, full" in help_text or "smoke, full, tiny" in help_text.replace("\n", " ").replace("  ", " ")


# --- two clones side by side, one environment --------------------------------------------------------

WHERE_TEST = """
import subprocess, sys
from pathlib import Path
import yolobench

HERE = Path(__file__).resolve().parents[1]

def test_this_checkouts_code_runs_here_and_in_children():
    assert Path(yolobench.__file__).resolve().is_relative_to(HERE / "src")
    child = subprocess.run([sys.executable, "-c", "import yolobench; print(yolobench.__file__)"],
                           capture_output=True, text=True, check=True)
    assert Path(child.stdout.strip()).resolve().is_relative_to(HERE / "src")
"""


def _second_clone(tmp_path: Path) -> Path:
    """Another checkout of this project (its own code, marked by its version), not installed anywhere."""
    import shutil

    clone = tmp_path / "clone-b"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", clone / "src", ignore=ignore)
    shutil.copytree(REPO / "fixtures", clone / "fixtures", ignore=ignore)
    for name in ("pyproject.toml", "conftest.py"):
        shutil.copy(REPO / name, clone / name)
    (clone / "results").mkdir()
    init = clone / "src" / "yolobench" / "__init__.py"
    init.write_text(init.read_text().replace("__version__ =", "__version__ = 'clone-b'  # was:", 1))
    (clone / "tests").mkdir()
    (clone / "tests" / "test_where.py").write_text(WHERE_TEST)
    subprocess.run(["git", "init", "-q", str(clone)], check=True, timeout=60)  # a git checkout: its code may run
    return clone


def test_a_folder_that_only_names_itself_yolobench_is_never_run(tmp_path):
    """A pyproject.toml saying name = "yolobench" does not make a folder's src/ code yolobench runs: only a
    git checkout of the project is run in place (and says so); any other such folder is refused in one line."""
    folder = tmp_path / "downloaded"
    marker = tmp_path / "ran"
    (folder / "src" / "yolobench").mkdir(parents=True)
    (folder / "pyproject.toml").write_text('[project]\nname = "yolobench"\n')
    (folder / "src" / "yolobench" / "__init__.py").write_text(f"open({str(marker)!r}, 'w')\n")
    (folder / "src" / "yolobench" / "__main__.py").write_text(f"open({str(marker)!r}, 'w')\n")
    done = subprocess.run([sys.executable, "-m", "yolobench", "--version"], cwd=folder, capture_output=True,
                          text=True, env=_env(), timeout=300)
    assert not marker.exists(), "yolobench ran the folder's code"
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and str(folder) in err[0] and "not a git checkout" in err[0], done.stderr


def _env() -> dict:
    """This environment, with any PYTHONPATH made absolute (it must not follow the working directory)."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    env.pop("YOLOBENCH_RERUN_FROM", None)
    return env


def test_two_clones_side_by_side_each_act_on_themselves(tmp_path):
    import yolobench

    clone = _second_clone(tmp_path)
    run = lambda cwd, *args: subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,  # noqa: E731
                                            env=_env(), timeout=300)
    # yolobench typed in the other clone runs that clone's code (its version says so), and with it that
    # clone's recipes, thresholds and results/ (paths.repo_root() is where the running code lives)
    there = run(clone, "-m", "yolobench", "--version")
    assert there.returncode == 0 and there.stdout.strip() == "yolobench clone-b", there.stdout + there.stderr
    assert f"running the code of {clone}" in there.stderr
    # ... and here, this one's
    here = run(REPO, "-m", "yolobench", "--version")
    assert here.returncode == 0 and here.stdout.strip() == f"yolobench {yolobench.__version__}", here.stderr
    # pytest in the other clone tests that clone's code, in its own process and in the children it starts
    tests = run(clone, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_where.py")
    assert tests.returncode == 0, tests.stdout + tests.stderr
