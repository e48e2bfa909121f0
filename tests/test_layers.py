"""The structure of docs/architecture.md holds: layers, the mirror kept out of the run
path, and every module importable on its own (no import cycle hidden by import order)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("baotintuc", "config", "crawler", "flows", "warehouse")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _modules() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out.append(".".join(parts))
    return out


def test_import_contracts_are_kept() -> None:
    assert LINT_IMPORTS.exists() or shutil.which("lint-imports"), "import-linter (dev extra)"
    proc = subprocess.run([str(LINT_IMPORTS)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and proc.stdout.count("KEPT") == 3


@pytest.mark.timeout(300)
def test_every_module_imports_on_its_own(tmp_path: Path) -> None:
    modules = _modules()
    assert len(modules) > 40 and "crawler.settings" in modules
    env = {**os.environ, "BTT_ROOT": str(tmp_path)}  # crawler.settings writes a manual request

    def attempt(module: str) -> tuple[str, int, str]:
        proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        return module, proc.returncode, proc.stderr[-1500:]

    with ThreadPoolExecutor(max_workers=4) as pool:
        failed = [r for r in pool.map(attempt, modules) if r[1] != 0]
    assert not failed, failed
