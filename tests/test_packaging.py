"""The project installs like real software: declared imports, package data, data root."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest

import config
from tests.support import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGES = ("baotintuc", "config", "crawler", "flows", "warehouse", "mirror")
FIRST_PARTY = {*PACKAGES, "bench", "tests", "scripts"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imports(folders: list[str]) -> dict[str, str]:
    """Top-level third-party modules imported anywhere under ``folders`` -> one file."""
    found: dict[str, str] = {}
    for folder in folders:
        for file in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, str(file.relative_to(REPO)))
    return found


def _undeclared(folders: list[str], declared: set[str]) -> list[str]:
    dists = md.packages_distributions()
    missing = []
    for module, file in _imports(folders).items():
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & declared:
            missing.append(f"{module} (imported in {file}; distribution {sorted(names)})")
    return missing


def test_every_import_of_the_packages_is_a_runtime_dependency() -> None:
    runtime = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert _undeclared(list(PACKAGES), runtime) == []


def test_every_import_of_tests_and_benches_is_declared() -> None:
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    declared |= {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    assert _undeclared(["tests", "bench", "scripts"], declared) == []


def test_locks_pin_every_declared_dependency() -> None:
    for lock, groups in (("runtime.lock", ["dependencies"]), ("dev.lock", ["dependencies", "dev"])):
        text = (REPO / "requirements" / lock).read_text(encoding="utf-8")
        pinned = {m.lower() for m in re.findall(r"^([A-Za-z0-9_.-]+)==\S+ \\$", text, re.M)}
        wanted = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
        if "dev" in groups:
            wanted |= {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}
        assert wanted <= pinned, (lock, wanted - pinned)
        assert "file:" not in text and "/opt/" not in text  # nothing of this machine
    runtime = (REPO / "requirements" / "runtime.lock").read_text(encoding="utf-8")
    assert not re.search(r"^(pytest|ruff|playwright)==", runtime, re.M)


def test_package_data_covers_every_data_file() -> None:
    """``pip install .`` ships every non-Python file the packages read (config TOML,
    warehouse SQL, the mirror's inputs)."""
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]
    unshipped = []
    for package in PACKAGES:
        root = REPO / package
        for file in root.rglob("*"):
            if not file.is_file() or file.suffix in (".py", ".pyc") or "__pycache__" in file.parts:
                continue
            rel = PurePosixPath(file.relative_to(root).as_posix())
            # setuptools globs: "*" stays within one folder
            if not any(len(rel.parts) == len(PurePosixPath(g).parts) and rel.match(g)
                       for g in globs.get(package, [])):
                unshipped.append(f"{package}/{rel}")
    assert unshipped == []


def test_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BTT_ROOT", raising=False)
    assert config.data_root() == REPO.resolve()  # the code runs from this checkout
    assert config.load_settings().paths.data_dir == REPO.resolve() / "data"
    monkeypatch.setenv("BTT_ROOT", str(tmp_path))
    assert config.data_root() == tmp_path.resolve()
    monkeypatch.delenv("BTT_ROOT")
    # installed: the packages sit in site-packages, which is no checkout -> the cwd
    site_packages = tmp_path / "site-packages"
    (site_packages / "config").mkdir(parents=True)
    monkeypatch.setattr(config, "PROJECT_ROOT", site_packages)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert not config.is_checkout(site_packages)
    assert config.data_root() == work.resolve()
    assert config.load_settings().mirror.site_dir == work.resolve() / "data" / "mirror" / "site"
