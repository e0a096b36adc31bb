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


def test_a_command_run_from_another_checkout_refuses_in_one_line(tmp_path, monkeypatch, capsys):
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
