"""Every third-party package that src/ imports is declared in pyproject.toml's dependencies,
and every one that tests/ imports in those or the dev extra: an import that only works
because some other package happens to pull it in breaks when that package changes."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match[0]).lower()


def _imported(directory: Path) -> dict[str, str]:
    """Top-level module name -> one file importing it, for absolute imports under ``directory``."""
    found: dict[str, str] = {}
    for path in sorted(directory.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _undeclared(directory: str, declared: set[str]) -> list[str]:
    dists = packages_distributions()
    missing = []
    for module, where in sorted(_imported(ROOT / directory).items()):
        if module in sys.stdlib_module_names or module in {"__future__", "mds", "tests"}:
            continue
        names = {_name(d) for d in dists.get(module, [])}
        if not names:
            missing.append(f"{module} (imported in {where}) is not installed")
        elif not names & declared:
            missing.append(f"{module} (imported in {where}) comes from {sorted(names)}, not declared")
    return missing


RUNTIME = {_name(r) for r in PROJECT["dependencies"]}
DEV = {_name(r) for r in PROJECT["optional-dependencies"]["dev"]}
#: The Python client's frames (polars) are an extra: mds.client imports them only when asked.
CLIENT = {_name(r) for r in PROJECT["optional-dependencies"]["client"]}


@pytest.mark.parametrize(("directory", "declared"), [("src", RUNTIME | CLIENT), ("tests", RUNTIME | DEV)])
def test_every_imported_package_is_declared(directory: str, declared: set[str]) -> None:
    assert _undeclared(directory, declared) == []
