"""pyproject.toml: what `pip install .` installs and requires. Its requirements must be requirements.txt's (a Space
installs that file alone), and every package it installs must import only what it declares."""
from __future__ import annotations

import ast
import graphlib
import sys
import tomllib
from importlib.metadata import packages_distributions

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
# imported by an installed package but optional at run time, so declared as the test extra only
OPTIONAL = {"spaces": "ZeroGPU's decorator, used when present (cott_demo/serving.py)",
            "matplotlib": "the plots of experiments/, imported only when one is drawn"}


def requirements_txt() -> tuple[list[str], list[str]]:
    """(runtime, tests) requirement lines of requirements.txt, comments dropped, split at its "# tests" line."""
    runtime, tests, part = [], [], None
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() == "# tests":
            part = tests
        elif line.split("#")[0].strip():
            (runtime if part is None else part).append(line.split("#")[0].strip())
    return runtime, tests


def normal(lines: list[str]) -> set[tuple[str, str]]:
    return {(canonicalize_name(r.name), str(r.specifier)) for r in map(Requirement, lines)}


def test_dependencies_are_the_requirements_with_the_same_ranges():
    runtime, tests = requirements_txt()
    assert runtime and tests
    assert normal(PROJECT["dependencies"]) == normal(runtime)
    assert normal(PROJECT["optional-dependencies"]["test"]) == normal(tests)


def test_the_installed_packages_are_the_repositorys_and_run_as_modules():
    assert PACKAGES == ["cott", "cott_demo", "train", "experiments"]
    assert all((ROOT / p / "__init__.py").is_file() for p in PACKAGES)
    assert (ROOT / "train" / "__main__.py").is_file()  # python -m train


def imports(package: str) -> set[str]:
    """The top-level names of every module that ``package``'s files import, anywhere in them (lazy ones too)."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}


def test_every_import_of_an_installed_package_is_a_declared_dependency():
    declared = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    extra = {canonicalize_name(Requirement(r).name) for r in PROJECT["optional-dependencies"]["test"]}
    owners = packages_distributions()
    missing = {}
    for package in PACKAGES:
        for name in sorted(imports(package)):
            dists = {canonicalize_name(d) for d in owners.get(name, [name])}
            ok = dists & declared or (name in OPTIONAL and dists & extra)
            if not ok:
                missing.setdefault(package, []).append(name)
    assert missing == {}
    assert imports("cott") >= {"torch", "transformers", "datasets", "safetensors"}  # the walk finds imports at all


def module_graph() -> dict[str, set[str]]:
    """Each module of the installed packages -> the modules of them it imports, at the top or inside a function."""
    graph = {}
    for package in PACKAGES:
        for path in (ROOT / package).glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            deps = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom):
                    base = package if node.level == 1 else node.module if node.level == 0 else None
                    if base and node.level == 1 and node.module:
                        base = f"{package}.{node.module}"
                    if base:
                        deps |= {base} | {f"{base}.{a.name}" for a in node.names}
                elif isinstance(node, ast.Import):
                    deps |= {a.name for a in node.names}
            graph[name] = deps
    # a package's __init__ imports its modules, which in turn import the package: not a circle of their code
    return {m: {d for d in ds if d in graph and d != m and d not in PACKAGES} for m, ds in graph.items()}


def test_the_modules_import_each_other_without_a_circle():
    graphlib.TopologicalSorter(module_graph()).prepare()  # raises CycleError naming the circle
    graph = module_graph()
    assert {"cott.examples"} <= graph["cott.table"] and "cott.data" not in graph["cott.table"]
    assert {"cott.hub", "cott.table"} <= graph["cott.data"]  # the graph sees lazy and relative imports
