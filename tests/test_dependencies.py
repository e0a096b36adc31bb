"""pyproject.toml declares what the code imports, pins every version, and lists nothing unused.

A package that arrives only as some other package's dependency (OpenCV through ultralytics, say)
changes or disappears when that package's next release does; an unpinned one moves under the suite.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = ["src", "benchmarks", "fixtures", "tests", "conftest.py", "results/scripts"]
# Declared without being imported by name: plugins and tools the suite runs rather than imports.
USED_WITHOUT_IMPORT = {
    "pytest-benchmark",  # a pytest plugin (the `benchmark` fixture)
    "asv",  # `tox -e asv` runs it
    "setuptools",  # sparseml imports pkg_resources at run time
    "protobuf",  # pinned for onnx/sparseml (they break on newer protobuf)
    "sparsezoo",  # pinned beside sparseml, which imports it
}


def _declared() -> dict[str, str]:
    """Normalised distribution name -> its requirement string."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    out = {}
    for requirement in data["project"]["dependencies"]:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
        out[_norm(name)] = requirement
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_modules() -> set[str]:
    names: set[str] = set()
    for root in CODE:
        path = REPO / root
        for file in ([path] if path.is_file() else path.rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
                elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip"
                      and node.args and isinstance(node.args[0], ast.Constant)):
                    names.add(str(node.args[0].value).split(".")[0])  # pytest.importorskip("name")
    return names


def _third_party_distributions() -> dict[str, set[str]]:
    """Distribution -> the top-level modules of ours it provides (standard library and our own left out)."""
    providers = importlib.metadata.packages_distributions()
    ours = {"yolobench", "fixtures", "benchmarks", "conftest", "_tiny_yolo"}
    found: dict[str, set[str]] = {}
    for module in _imported_modules() - set(sys.stdlib_module_names) - ours:
        for dist in providers.get(module, []):
            found.setdefault(_norm(dist), set()).add(module)
    return found


def test_every_imported_package_is_declared():
    declared = _declared()
    imported = _third_party_distributions()
    missing = {dist: sorted(mods) for dist, mods in imported.items() if dist not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_declared_package_is_used():
    imported = _third_party_distributions()
    unused = [name for name in _declared() if name not in imported and name not in USED_WITHOUT_IMPORT]
    assert not unused, f"declared in pyproject.toml but nothing imports them: {unused}"


def test_every_dependency_is_pinned():
    loose = [req for req in _declared().values() if "==" not in req and not req.startswith("setuptools")]
    assert not loose, f"unpinned dependencies: {loose}"
    # setuptools is a range on purpose: the build backend needs the same bounds (build-system.requires).


def test_declared_pins_are_what_is_installed():
    """The environment the tests run in is the one pyproject.toml describes."""
    wrong = []
    for name, req in _declared().items():
        if "==" in req:
            want = req.split("==", 1)[1].strip()
            have = importlib.metadata.version(name)
            if have != want:
                wrong.append(f"{name}: pinned {want}, installed {have}")
    assert not wrong, "; ".join(wrong)
