"""Shared fixtures: the offline mirror (built once per session) served over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
BAOTINTUC = Path(sys.executable).with_name("baotintuc")


@pytest.fixture(scope="session")
def mirror_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly generated mirror: ``<out>/site`` and ``<out>/ground_truth.jsonl``."""
    from mirror.build import build_site

    out = tmp_path_factory.mktemp("mirror")
    build_site(out)
    return out


@pytest.fixture(scope="session")
def ground_truth(mirror_out: Path) -> dict[str, dict[str, Any]]:
    rows = [
        json.loads(line)
        for line in (mirror_out / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return {r["article_id"]: r for r in rows}


@pytest.fixture(scope="session")
def mirror_server(mirror_out: Path) -> Iterator[Any]:
    from mirror.server import MirrorServer

    with MirrorServer(mirror_out / "site") as srv:
        yield srv


def cli_env(root: Path) -> dict[str, str]:
    """Environment for a CLI subprocess whose data (and Prefect state) live under ``root``."""
    env = dict(os.environ)
    env["BTT_ROOT"] = str(root)
    env["PREFECT_HOME"] = str(root / "prefect")
    env.pop("PREFECT_API_URL", None)
    return env


def run_cli(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BAOTINTUC), *args], cwd=REPO, env=cli_env(root), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
