"""Where yolobench keeps things outside the checkout.

``YOLOBENCH_HOME`` (default ``~/.cache/yolobench``) holds the artifact store, built-in datasets and
ultralytics' settings. ``YOLOBENCH_STORE`` overrides the store alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("YOLOBENCH_HOME", Path.home() / ".cache" / "yolobench")).expanduser()


def store_root() -> Path:
    return Path(os.environ.get("YOLOBENCH_STORE", home() / "store")).expanduser()


def datasets_root() -> Path:
    return home() / "datasets"


def installed_root() -> Path:
    """The checkout this code runs from (its editable install)."""
    return Path(__file__).resolve().parents[2]


def repo_root() -> Path:
    """The checkout (recipes/, results/ live here)."""
    return installed_root()


_PROJECT_NAME = re.compile(r'^name\s*=\s*"yolobench"\s*$', re.MULTILINE)


def checkout_of(path: str | os.PathLike) -> Path | None:
    """The yolobench checkout that holds ``path`` (a folder whose pyproject.toml names the project
    yolobench), or None outside any."""
    start = Path(path).resolve()
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        try:
            if pyproject.is_file() and _PROJECT_NAME.search(pyproject.read_text(encoding="utf-8")):
                return folder
        except OSError:
            continue
    return None


def other_checkout(cwd: str | os.PathLike | None = None) -> Path | None:
    """The checkout ``cwd`` is in when it is not the one this yolobench is installed from, else None.

    One environment serves every clone (it is large), and it installs yolobench in editable mode from
    whichever clone last ran tox; a command must then act on the checkout it is run from or refuse,
    never read another clone's recipes, thresholds and results/ in silence."""
    here = checkout_of(cwd if cwd is not None else os.getcwd())
    return here if here is not None and here != installed_root() else None


# Set in the environment of a command re-run from another checkout: that run must not re-run again.
RERUN_ENV = "YOLOBENCH_RERUN_FROM"


def checkout_source(checkout: Path) -> Path | None:
    """``<checkout>/src`` when it holds a yolobench package (its code can be run in place), else None."""
    src = Path(checkout) / "src"
    return src if (src / "yolobench" / "__init__.py").is_file() else None


# What makes a folder a checkout of this project whose code ``yolobench`` runs in place: a git work tree
# (``.git``: a clone's folder, or a worktree's file) holding the project's own files. A pyproject.toml
# that says name = "yolobench" alone (an unpacked archive, anybody's project of that name) is no reason
# to run a folder's src/: such a folder is refused, never run. Nothing here runs git.
CHECKOUT_MARKERS = ("pyproject.toml", "conftest.py", "fixtures/__init__.py", "src/yolobench/__init__.py",
                    "src/yolobench/__main__.py", "src/yolobench/cli.py")


def is_git_work_tree(folder: Path) -> bool:
    """``folder`` is the top of a git work tree: ``.git`` is a repository (with its HEAD) or, in a
    worktree or submodule, a file pointing at one (``gitdir: ...``)."""
    git = Path(folder) / ".git"
    try:
        if git.is_dir():
            return (git / "HEAD").is_file()
        return git.is_file() and git.read_text(encoding="utf-8", errors="replace").startswith("gitdir:")
    except OSError:
        return False


def not_runnable_reason(checkout: Path) -> str | None:
    """Why ``yolobench`` must not run ``checkout``'s own code (None: it may, see CHECKOUT_MARKERS)."""
    missing = [name for name in CHECKOUT_MARKERS if not (Path(checkout) / name).is_file()]
    if not is_git_work_tree(checkout):
        return "it is not a git checkout of yolobench (no .git), so its code is not run"
    if missing:
        return f"it lacks yolobench's own files ({', '.join(missing)}), so its code is not run"
    return None


def environment_running(checkout: Path) -> dict[str, str]:
    """os.environ with ``checkout``'s code first on the import path, for it and every child it starts."""
    src = checkout_source(checkout)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    env[RERUN_ENV] = str(checkout)
    return env


def other_checkout_message(here: Path) -> str:
    return (f"this environment's yolobench is installed from {installed_root()}, but you are in the checkout "
            f"{here}: it would read {installed_root()}'s recipes, thresholds and results/. Run tox from {here} "
            f"(it reinstalls yolobench from there, in seconds), or `python -m pip install --no-deps -e {here}` "
            f"in this environment")


def not_runnable_message(here: Path, reason: str) -> str:
    return (f"{here} names itself yolobench (pyproject.toml), but {reason}; run yolobench outside it, or "
            f"install it into this environment if you trust it: `python -m pip install --no-deps -e {here}`")


# What a run's numbers do not depend on: a main job rewrites the committed reports and the history under
# results/, and docs are prose. Changes there leave the measured code the commit's.
NOT_CODE = ("results", "docs", "*.md")


def uncommitted_code(root: Path | None = None) -> list[str] | None:
    """Tracked files outside :data:`NOT_CODE` that differ from HEAD in the checkout at ``root`` (default:
    this one): the code a run measures is not its commit's when this is not empty. None when git cannot
    tell (not a git checkout, no git)."""
    import subprocess

    root = root or repo_root()
    command = ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "."]
    command += [f":(exclude){part}" for part in NOT_CODE]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return [line[3:] for line in done.stdout.splitlines() if line.strip()]
