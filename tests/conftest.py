"""Shared fixtures: the offline mirror (built once per session) served over real HTTP, and
one Prefect server for the whole session (``prefect_server`` + ``prefect_cli_env``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import PrefectTestServer, _SessionServer, run_cli


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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _SessionServer.stop()


@pytest.fixture(scope="session")
def prefect_server() -> PrefectTestServer:
    """The session's Prefect server (the one :func:`cli_env` points CLI runs at).

    Use it in-process with ``prefect.settings.temporary_settings(updates={PREFECT_API_URL:
    prefect_server.api_url})``. Every run of the session lands in the same server: filter
    what you read (by flow-run id, tag, your own tmp db_path) instead of counting all runs.
    """
    return _SessionServer.get()


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
