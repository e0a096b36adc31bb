"""The examples in examples/ work as written: each one is run here, against the code it calls.

- ``ab-pr-gate.yml`` (a GitHub Actions workflow; no runner here, so it is checked statically): every
  ``./tox.sh -e X`` names an environment of tox.ini, and X's ``yolobench`` commands, expanded with the
  variables the workflow sets the way tox expands them, parse with the real CLI parser and pass the
  command's own checks; every variable it sets is read by the code or its own script, and reaches tox
  (``pass_env``); the A/B step's exit status fails the job; its caches are the main workflow's.
- ``pytest-slice.sh``: run with ``--collect-only``; the tests it selects are exactly the slice it names.
- ``data.yaml`` and ``data/``: accepted by ``yolobench data check``, by ultralytics' loader (what training
  reads), by ``builder.resolve`` and by the evaluator, with the generator's class names; the committed
  images are what ``data/make_dataset.py`` makes.
"""

from __future__ import annotations

import configparser
import fnmatch
import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from yolobench import catalogue, engines
from yolobench.cli import build_parser, main
from yolobench.data.check import check_dataset

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
WORKFLOW = EXAMPLES / "ab-pr-gate.yml"
SLICE = EXAMPLES / "pytest-slice.sh"
DATA_YAML = EXAMPLES / "data.yaml"
DATA_DIR = EXAMPLES / "data"
MAX_DATA_BYTES = 200_000  # the example dataset lives in the repository: small, or it is a burden on every clone

# Values for the GitHub expressions the workflow uses (a pull request into a branch other than
# tox.ini's default base, so that a variable tox drops would show).
GITHUB_CONTEXT = {"github.base_ref": "release-1", "github.ref": "refs/pull/1/merge",
                  "runner.temp": "/tmp/runner-temp", "matrix.machine": "ubuntu-latest"}


# ------------------------------------------------------------------------------------- the workflow

def _load_workflow(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    if True in workflow:  # YAML 1.1 reads the key `on` as the boolean true
        workflow["on"] = workflow.pop(True)
    return workflow


def _expressions(text: str) -> str:
    """``text`` with each ``${{ ctx.name }}`` replaced by its value for a pull request into main."""
    def value(match):
        name = match.group(1)
        if name.startswith("hashFiles("):
            return "HASH"
        assert name in GITHUB_CONTEXT, f"{WORKFLOW.name}: the test knows no value for ${{{{ {name} }}}}"
        return GITHUB_CONTEXT[name]

    return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", value, str(text))


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _tox() -> configparser.ConfigParser:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO / "tox.ini")
    return tox


def _tox_value(tox, env: str, key: str) -> str | None:
    """A setting of ``[testenv:env]``, inherited from ``[testenv]`` as tox 4 does."""
    for section in (f"testenv:{env}", "testenv"):
        if tox.has_section(section) and tox.has_option(section, key):
            return tox.get(section, key)
    return None


def _pass_env(tox, env: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,\n]", _tox_value(tox, env, "pass_env") or "") if p.strip()]


def _substitute(text: str, environ: dict, posargs: list[str]) -> str:
    """tox's substitutions in one command line: {env:NAME[:default]}, {posargs[:default]}, {tox_root}."""
    def env(match):
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        assert default is not None, f"tox.ini reads {name} without a default and nothing sets it"
        return default

    text = re.sub(r"\{env:([A-Za-z0-9_]+)(?::([^{}]*))?\}", env, text)
    given = " ".join(shlex.quote(a) for a in posargs)
    text = re.sub(r"\{posargs(?::([^{}]*))?\}", lambda m: given if posargs else (m.group(1) or ""), text)
    return text.replace("{tox_root}", str(REPO))


def tox_env_commands(env: str, outer: dict, posargs: list[str]) -> list[list[str]]:
    """The command lines tox's ``env`` would run, with the variables that reach it from ``outer``."""
    tox = _tox()
    assert tox.has_section(f"testenv:{env}"), f"./tox.sh -e {env}: tox.ini has no [testenv:{env}]"
    passed = {k: v for k, v in outer.items() if any(fnmatch.fnmatch(k, p) for p in _pass_env(tox, env))}
    environ = dict(passed)
    for line in (_tox_value(tox, env, "set_env") or "").splitlines():
        if "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            environ[name] = _substitute(value, passed, posargs)
    lines = [line.strip() for line in _tox_value(tox, env, "commands").splitlines()]
    return [shlex.split(_substitute(line, environ, posargs)) for line in lines if line and not line.startswith("#")]


def _check_yolobench(argv: list[str], where: str) -> None:
    """Parse a ``yolobench`` command line with the real parser and run the command's own input checks."""
    assert argv[0] == "yolobench", argv
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit as exit_:  # argparse's way of saying "unknown option" (its message is on stderr)
        pytest.fail(f"{where}: `{shlex.join(argv)}` is refused by yolobench's parser (exit {exit_.code})")
    if getattr(args, "profile", None):
        catalogue.get_profile(args.profile)  # a UserError names the profiles
    if args.command == "ab":
        from yolobench.commands.ab import _check_numbers, _settings

        _check_numbers(args)  # threshold > 1, pairs, seconds
        if args.variant:
            _settings(args.engine)  # every engine setting known
            if args.variant != "all":
                catalogue.parse_variants(args.variant)


def _shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a run: script, as argument lists (split at | || && ; and newlines, quotes kept,
    redirections dropped)."""
    commands = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words, skip = [], False
        for token in [*lexer, ";"]:
            if skip:
                skip = False
            elif token in ("|", "||", "&&", ";", "&"):
                if words:
                    commands.append(words)
                words = []
            elif set(token) <= set("<>&"):  # a redirection: drop it, its target and a file descriptor before it
                skip = True
                if words and words[-1].isdigit():
                    words.pop()
            else:
                words.append(token)
    return commands


def workflow_env(workflow: dict, step: dict, job: dict) -> dict[str, str]:
    """The variables a step's commands see from the workflow (workflow, job and step ``env:``)."""
    merged = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
    return {k: _expressions(v) for k, v in merged.items()}


def test_the_workflow_runs_the_ab_job_on_pull_requests_with_the_base_history():
    workflow = _load_workflow(WORKFLOW)
    assert "pull_request" in workflow["on"], workflow["on"]
    checkout = [s for s in _steps(workflow) if str(s.get("uses", "")).startswith("actions/checkout")]
    # yolobench ab --base-ref makes a git worktree at the base commit: a shallow clone has no such commit
    assert checkout and checkout[0].get("with", {}).get("fetch-depth") == 0, checkout
    ab = [s for s in _steps(workflow) if "tox.sh -e ab" in str(s.get("run", ""))]
    assert len(ab) == 1, "the workflow runs ./tox.sh -e ab once"
    step = ab[0]
    run = step["run"]
    # A's ref is fetched by name before tox builds it, and it is the PR's base
    assert run.index("git fetch") < run.index("tox.sh -e ab")
    assert "github.base_ref" in step["env"]["YOLOBENCH_AB_BASE"]
    assert "$GITHUB_BASE_REF" in run or "github.base_ref" in run.split("git fetch")[1].splitlines()[0]


def test_a_slowdown_fails_the_job():
    """`yolobench ab` exits 1 on a slower cell: nothing in the step may swallow that status."""
    workflow = _load_workflow(WORKFLOW)
    step = next(s for s in _steps(workflow) if "tox.sh -e ab" in str(s.get("run", "")))
    assert not step.get("continue-on-error"), "continue-on-error would let a slower PR pass"
    assert step.get("if") in (None, "${{ github.event_name == 'pull_request' }}"), step.get("if")
    tox_line = next(line for line in step["run"].splitlines() if "tox.sh -e ab" in line)
    assert "|| true" not in tox_line and "|| :" not in tox_line, tox_line
    if "|" in tox_line:  # a pipeline's status is its last command's (tee: 0) unless pipefail is on
        assert step.get("shell") == "bash" or re.search(r"set -\w*o pipefail", step["run"]), (
            "the A/B output is piped: add `set -o pipefail` (or `shell: bash`) so the pipeline keeps tox's exit status")


def test_every_command_in_the_workflow_is_one_tox_and_yolobench_accept():
    workflow = _load_workflow(WORKFLOW)
    checked = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" not in step:
                continue
            environ = workflow_env(workflow, step, job)
            for argv in _shell_commands(_expressions(step["run"])):
                where = f"{WORKFLOW.name}, step {step.get('name', argv[0])!r}"
                if argv[0] == "./tox.sh" and "-e" in argv:
                    env = argv[argv.index("-e") + 1]
                    posargs = argv[argv.index("--") + 1:] if "--" in argv else []
                    for command in tox_env_commands(env, environ, posargs):
                        if command[0] == "yolobench":
                            _check_yolobench(command, f"{where} (tox -e {env})")
                            checked.append(command)
                elif argv[0] == "yolobench":
                    _check_yolobench(argv, where)
                    checked.append(argv)
    assert checked, "no yolobench command found in the workflow"
    ab = [c for c in checked if c[1] == "ab"]
    assert ab, checked
    args = build_parser().parse_args(ab[0][1:])
    # the values the workflow sets are the ones the command receives (tox passes them through)
    step = next(s for s in _steps(workflow) if "tox.sh -e ab" in str(s.get("run", "")))
    assert args.base_ref == _expressions(step["env"]["YOLOBENCH_AB_BASE"])
    if "YOLOBENCH_AB_THRESHOLD" in step["env"]:
        assert args.threshold == float(step["env"]["YOLOBENCH_AB_THRESHOLD"])
    assert args.profile == workflow["env"]["YOLOBENCH_PROFILE"]


def test_every_variable_the_workflow_sets_is_read_and_reaches_tox():
    workflow = _load_workflow(WORKFLOW)
    code = "\n".join(p.read_text() for p in [*(REPO / "src").rglob("*.py"), REPO / "tox.ini", REPO / "tox.sh"])
    tox = _tox()
    scripts = "\n".join(str(s.get("run", "")) + str(s.get("with", "")) for s in _steps(workflow))
    scopes = [workflow.get("env", {})] + [job.get("env", {}) for job in workflow["jobs"].values()]
    scopes += [s.get("env", {}) for s in _steps(workflow)]
    names = [name for scope in scopes for name in scope]
    assert names, "the workflow sets no variables (it must set YOLOBENCH_AB_BASE)"
    for name in names:
        if re.search(rf"\$\{{?{name}\b", scripts):  # read by the workflow's own script
            continue
        assert re.search(rf"\b{name}\b", code), f"{WORKFLOW.name} sets {name}, which nothing in src/ or tox.ini reads"
        assert any(fnmatch.fnmatch(name, p) for p in _pass_env(tox, "ab")), (
            f"{WORKFLOW.name} sets {name}, which tox does not pass to its commands (pass_env in tox.ini)")


def test_the_workflow_uploads_the_ab_output_and_summarises_its_verdicts():
    workflow = _load_workflow(WORKFLOW)
    steps = _steps(workflow)
    ab = next(s for s in steps if "tox.sh -e ab" in str(s.get("run", "")))
    tee = re.search(r'tee "?\$\{?(\w+)\}?"?', ab["run"])
    assert tee, "the A/B step keeps its output in a file"
    written = _expressions(ab["env"][tee.group(1)])
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert any(_expressions(s["with"]["path"]).strip() == written for s in uploads), (written, uploads)
    assert all(s.get("if") == "${{ !cancelled() }}" for s in uploads), "upload the output when the gate fails too"
    # the summary's pattern finds the lines `yolobench ab` prints (commands/ab.py)
    summary = next(s for s in steps if "GITHUB_STEP_SUMMARY" in str(s.get("run", "")))
    pattern = re.search(r"grep -E '([^']+)'", summary["run"]).group(1)
    printed = (REPO / "src" / "yolobench" / "commands" / "ab.py").read_text()
    for alternative in pattern.split("|"):
        assert alternative.lstrip("^") in printed, f"the summary greps {alternative!r}; yolobench ab never prints it"


def test_the_workflow_caches_what_the_main_workflow_caches_under_the_same_keys():
    """The same keys as benchmarks.yml: a PR restores the environment and store its base branch saved."""
    def caches(path: Path, skip=()) -> dict[str, tuple]:
        found = {}
        for step in _steps(_load_workflow(path)):
            if str(step.get("uses", "")).startswith("actions/cache"):
                paths = tuple(p.strip() for p in step["with"]["path"].splitlines() if p.strip())
                if not set(paths) & set(skip):
                    found[paths] = (_expressions(step["with"]["key"]),
                                    _expressions(step["with"].get("restore-keys", "")).strip())
        return found

    main = caches(REPO / ".github" / "workflows" / "benchmarks.yml", skip=("results/asv",))  # asv: not run here
    assert main and caches(WORKFLOW) == main


# ------------------------------------------------------------------------------------ the pytest slice

def _slice_value(name: str) -> list[str]:
    match = re.search(rf"^{name}=(\S+)", SLICE.read_text(), re.MULTILINE)
    assert match, f"{SLICE.name} sets no {name}="
    return match.group(1).split(",")


def test_the_pytest_slice_selects_exactly_its_variants_and_engines():
    variants, chosen_engines = _slice_value("VARIANTS"), _slice_value("ENGINES")
    assert set(variants) < set(catalogue.VARIANT_NAMES) and set(chosen_engines) < set(engines.engine_names())
    env = {k: v for k, v in os.environ.items() if k != "YOLOBENCH_PROFILE"}  # the script's own default
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # this environment's pytest
    env["PYTHONHASHSEED"] = "0"
    done = subprocess.run(["bash", str(SLICE), "--collect-only", "-q"], cwd="/", env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ids = re.findall(r"^(\S+)::(\w+)\[(\S+)\]$", done.stdout, re.MULTILINE)
    parity = [param for path, _, param in ids if path == "tests/test_parity_variants.py"]
    cells = [param.split("-") for path, test, param in ids if path == "benchmarks/test_latency.py"]
    assert parity and cells, done.stdout[-3000:]
    assert {param.split("-")[0] for param in parity} == set(variants)
    assert {(v, e) for v, e, *_ in cells} == set(itertools.product(variants, chosen_engines))
    profile = re.search(r'PROFILE="\$\{YOLOBENCH_PROFILE:-(\w+)\}"', SLICE.read_text()).group(1)
    assert {int(size) for _, _, size, _ in cells} == set(catalogue.get_profile(profile).export_imgsz)
    # nothing outside the two files it names
    assert {path for path, _, _ in ids} == {"tests/test_parity_variants.py", "benchmarks/test_latency.py"}


# --------------------------------------------------------------------------------------- the dataset

def _make_dataset():
    import importlib.util

    spec = importlib.util.spec_from_file_location("example_make_dataset", DATA_DIR / "make_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _yaml_names() -> dict[int, str]:
    data = yaml.safe_load(DATA_YAML.read_text())
    names = data["names"]
    return dict(enumerate(names)) if isinstance(names, list) else {int(k): v for k, v in names.items()}


@pytest.fixture
def copy_of_examples(tmp_path) -> Path:
    """examples/data.yaml and examples/data/ in a temporary folder: ultralytics writes label caches there."""
    shutil.copy(DATA_YAML, tmp_path / DATA_YAML.name)
    shutil.copytree(DATA_DIR, tmp_path / DATA_DIR.name)
    return tmp_path / DATA_YAML.name


def test_data_check_accepts_the_example_from_any_folder(tmp_path, monkeypatch, capsys):
    maker = _make_dataset()
    monkeypatch.chdir(tmp_path)  # the paths are relative to the data.yaml, not to where the command runs
    assert main(["data", "check", str(DATA_YAML)]) == 0
    out = capsys.readouterr().out
    expected = dict(enumerate(maker.NAMES))
    assert _yaml_names() == expected  # the yaml lists the generator's classes, in its order
    assert f"classes: {len(expected)} ({', '.join(f'{i}={n}' for i, n in expected.items())})" in out
    info = check_dataset(DATA_YAML)
    assert info.names == expected and info.nc == yaml.safe_load(DATA_YAML.read_text())["nc"]
    assert (info.train_images, info.val_images) == (maker.SPLITS["train"], maker.SPLITS["val"])
    assert info.train_labels == info.train_images and info.val_labels == info.val_images
    for split in ("train", "val"):  # every class occurs in both splits
        assert set(info.class_counts[split]) == set(expected), (split, info.class_counts)


def test_the_loaders_the_build_uses_accept_the_example(copy_of_examples, tmp_path, monkeypatch, no_network,
                                                       tiny_home):
    from ultralytics.data import utils as ul_utils
    from ultralytics.data.dataset import YOLODataset

    from yolobench import builder
    from yolobench.evaluate import validation_set

    info = check_dataset(copy_of_examples)
    # ultralytics' own reader, as the trainer calls it (builder._train passes the data.yaml to ultralytics).
    # check_det_dataset ends with check_font(), which would download a font when none is cached.
    monkeypatch.setattr(ul_utils, "check_font", lambda *a, **k: None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # without `path:`, ultralytics too reads the paths relative to the data.yaml
    data = ul_utils.check_det_dataset(str(copy_of_examples), autodownload=False)
    assert data["nc"] == info.nc and data["names"] == info.names
    for split in ("train", "val"):
        assert Path(data[split]) == (copy_of_examples.parent / "data" / "images" / split).resolve()
        ds = YOLODataset(img_path=data[split], data=data, imgsz=64, augment=False, task="detect")
        assert len(ds.labels) == getattr(info, f"{split}_images")
        assert sum(len(lb["cls"]) for lb in ds.labels) == getattr(info, f"{split}_boxes")
    # the builder keys the variant by this dataset's content; the evaluator reads its validation split
    resolved = builder.resolve("dense", "tiny", str(copy_of_examples))
    assert resolved.data_yaml == copy_of_examples.resolve() and resolved.dataset_hash == info.content_hash
    images, labels, nc = validation_set(copy_of_examples)
    assert nc == info.nc and len(images) == info.val_images
    assert sum(len(classes) for _, classes in labels) == info.val_boxes
    assert no_network == []


def test_the_committed_images_and_labels_are_what_make_dataset_makes(tmp_path):
    from PIL import Image

    _make_dataset().make(tmp_path)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(DATA_DIR) for p in DATA_DIR.rglob("*")
                       if p.is_file() and p.suffix in (".png", ".txt"))
    assert made == committed
    for rel in made:
        if rel.suffix == ".png":  # pixels, not bytes: PNG compression may differ between zlib versions
            assert np.array_equal(np.asarray(Image.open(tmp_path / rel)), np.asarray(Image.open(DATA_DIR / rel))), rel
        else:
            assert (tmp_path / rel).read_text() == (DATA_DIR / rel).read_text(), rel
    total = sum(p.stat().st_size for p in DATA_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert total < MAX_DATA_BYTES, f"examples/data/ is {total} bytes"


# ---------------------------------------------------------------------------------------- the README

def test_the_examples_readme_names_every_example_and_its_links_resolve():
    text = (EXAMPLES / "README.md").read_text()
    for path in [*EXAMPLES.iterdir(), DATA_DIR / "make_dataset.py"]:
        if path.name not in ("README.md", "__pycache__"):
            assert f"({path.relative_to(EXAMPLES).as_posix()}" in text, f"examples/README.md does not link {path.name}"
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (EXAMPLES / target).exists(), f"examples/README.md links {target}, which does not exist"
    assert "(examples/" in (REPO / "README.md").read_text(), "README.md does not link examples/"
