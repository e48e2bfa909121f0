"""Shared fixtures: the offline mirror (built once per session) served over real HTTP, and
one Prefect server for the whole session (``prefect_server`` + ``prefect_cli_env``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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


class _SessionServer:
    """One real Prefect server for the whole test session, started on first need.

    Started as the CLI starts its local background server
    (:class:`flows.prefect_server.LocalServer`: CSRF on, CORS limited to its UI, telemetry
    off) on a free loopback port with a tmp ``PREFECT_HOME``; stopped at the end of the
    session (``pytest_sessionfinish``). A session that runs no CLI never starts it.
    """

    server: Any = None
    home: Path | None = None

    @classmethod
    def get(cls) -> PrefectTestServer:
        if cls.server is None:
            from flows.prefect_server import LocalServer, free_port

            cls.home = Path(tempfile.mkdtemp(prefix="btt-prefect-"))
            server = LocalServer(home=cls.home, port=free_port(), startup_timeout=120,
                                 log_level="WARNING")
            server.start()
            cls.server = server
        pid = cls.server.pid()
        assert pid is not None and cls.home is not None, (
            f"the session's Prefect server did not stay up; see {cls.home}")
        return PrefectTestServer(cls.server.api_url, cls.server.ui_url, cls.home, pid)

    @classmethod
    def stop(cls) -> None:
        if cls.server is not None:
            cls.server.stop()
            cls.server = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _SessionServer.stop()


def cli_env(root: Path, *, temporary_server: bool = False) -> dict[str, str]:
    """Environment for a CLI subprocess whose data live under ``root``.

    By default its flow runs report to the session's Prefect server (started once, on
    first need: no start-up per run). ``temporary_server=True`` gives the run Prefect's
    temporary in-process server instead (slow, ~10-20 s a run: only for tests of the
    server handling itself).
    """
    env = dict(os.environ)
    env["BTT_ROOT"] = str(root)
    env["PREFECT_HOME"] = str(root / "prefect")
    env["BTT_PREFECT_SERVER__BACKGROUND"] = "false"  # never start a background server
    env.pop("PREFECT_API_AUTH_STRING", None)
    if temporary_server:
        env.pop("PREFECT_API_URL", None)
    else:
        env["PREFECT_API_URL"] = _SessionServer.get().api_url
    return env


@dataclass(frozen=True)
class PrefectTestServer:
    """The session's Prefect server: what a test needs to talk to it."""

    api_url: str
    ui_url: str
    home: Path
    pid: int


@pytest.fixture(scope="session")
def prefect_server() -> PrefectTestServer:
    """The session's Prefect server (the one :func:`cli_env` points CLI runs at).

    Use it in-process with ``prefect.settings.temporary_settings(updates={PREFECT_API_URL:
    prefect_server.api_url})``. Every run of the session lands in the same server: filter
    what you read (by flow-run id, tag, your own tmp db_path) instead of counting all runs.
    """
    return _SessionServer.get()


def prefect_cli_env(root: Path, server: PrefectTestServer) -> dict[str, str]:
    """:func:`cli_env` pointing at ``server`` (kept for tests that name the fixture)."""
    env = cli_env(root)
    env["PREFECT_API_URL"] = server.api_url
    return env


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory, mirror_server: Any) -> dict[str, Any]:
    """The whole mirror ingested once for the session, as a user does it
    (``baotintuc crawl --max-pages 50``: 381 articles, real pages included). Read it; tests
    that write take :func:`copy_of` it."""
    root = tmp_path_factory.mktemp("ingested")
    db = root / "full.duckdb"
    first = run_cli(root, "crawl", "--base-url", mirror_server.base_url, "--db", str(db),
                    "--max-pages", "50")
    assert first.returncode == 0, first.stderr[-3000:]
    return {"root": root, "db": db, "first": first}


def copy_of(ingested: dict[str, Any], tmp_path: Path) -> Path:
    """A writable copy of the session's warehouse (its archive stays shared, read-only:
    ``archive_segments`` names the files by absolute path)."""
    import shutil

    target = tmp_path / "copy.duckdb"
    shutil.copy(ingested["db"], target)
    return target


def run_cli(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BAOTINTUC), *args], cwd=REPO, env=cli_env(root), capture_output=True, text=True,
        timeout=timeout, check=False,
    )
