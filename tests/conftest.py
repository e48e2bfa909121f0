"""Shared fixtures: the offline mirror (built once per session) served over real HTTP, and
one Prefect server for the whole session (``prefect_server`` + ``prefect_cli_env``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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
    """Environment for a CLI subprocess whose data (and Prefect state) live under ``root``.

    Each run starts Prefect's temporary in-process server (slow: ~10-20 s a run). Prefer
    :func:`prefect_cli_env` with the session's ``prefect_server``.
    """
    env = dict(os.environ)
    env["BTT_ROOT"] = str(root)
    env["PREFECT_HOME"] = str(root / "prefect")
    env["BTT_PREFECT_SERVER__BACKGROUND"] = "false"  # never start a background server
    env.pop("PREFECT_API_URL", None)
    return env


@dataclass(frozen=True)
class PrefectTestServer:
    """The session's Prefect server: what a test needs to talk to it."""

    api_url: str
    ui_url: str
    home: Path
    pid: int


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectTestServer]:
    """One real Prefect server for the whole test session, started as the CLI starts its
    local background server (:class:`flows.prefect_server.LocalServer`: CSRF on, CORS
    limited to its UI, telemetry off) on a free loopback port with a tmp ``PREFECT_HOME``;
    stopped at the end of the session. Start-up: ~5-10 s once (migrations).

    Use it from a CLI subprocess with :func:`prefect_cli_env`::

        def test_x(prefect_server, mirror_server, tmp_path):
            env = prefect_cli_env(tmp_path, prefect_server)
            subprocess.run([BAOTINTUC, "crawl", "--base-url", mirror_server.base_url],
                           env=env, ...)

    or in-process with ``prefect.settings.temporary_settings(updates={PREFECT_API_URL:
    prefect_server.api_url})``. Every run of the session lands in the same server: filter
    what you read (by flow-run id, tag, your own tmp db_path) instead of counting all runs.
    """
    from flows.prefect_server import LocalServer, free_port

    home = tmp_path_factory.mktemp("prefect-server")
    server = LocalServer(home=home, port=free_port(), startup_timeout=120, log_level="WARNING")
    server.start()
    pid = server.pid()
    assert pid is not None, f"the session's Prefect server did not stay up; see {home}"
    try:
        yield PrefectTestServer(server.api_url, server.ui_url, home, pid)
    finally:
        server.stop()


def prefect_cli_env(root: Path, server: PrefectTestServer) -> dict[str, str]:
    """:func:`cli_env` pointing at the session's ``prefect_server`` (no server start-up)."""
    env = cli_env(root)
    env["PREFECT_API_URL"] = server.api_url
    env.pop("PREFECT_API_AUTH_STRING", None)
    return env


def run_cli(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BAOTINTUC), *args], cwd=REPO, env=cli_env(root), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
