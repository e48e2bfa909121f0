"""Running the real ``baotintuc`` CLI against a stand-in site, and reading what it left.

Every CLI run starts Prefect's temporary server (~10-20 s); one ``PREFECT_HOME`` for the
whole session pays its migrations once. When the session Prefect server fixture lands in
``tests/support.py``, :func:`hostile_env` is the one place to point runs at it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
import pytest

from tests.support import BAOTINTUC, REPO, cli_env

# Fast, deterministic runs: no retries to wait for unless a test asks for them.
FAST = {
    "BTT_CRAWL__RETRY_TIMES": "1",
    "BTT_CRAWL__RETRY_BACKOFF_BASE": "0.2",
    "BTT_CRAWL__DOWNLOAD_TIMEOUT": "10",
    "BTT_CRAWL__DISCOVER_FEED_INDEX": "false",
}


def hostile_env(root: Path, factory: pytest.TempPathFactory, **settings: str) -> dict[str, str]:
    """``cli_env`` with a session-wide Prefect home, :data:`FAST` and ``settings``
    (``BTT_*`` variables)."""
    env = cli_env(root)
    env["PREFECT_HOME"] = str(factory.getbasetemp() / "prefect-hostile")
    env |= FAST
    env |= settings
    return env


def run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BAOTINTUC), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """The CLI in its own process group (so a test can find every process it started)."""
    return subprocess.Popen([str(BAOTINTUC), *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def dicts(db: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def runs(db: Path) -> list[dict[str, Any]]:
    """``crawl_runs`` oldest first, ``stats`` decoded."""
    out = dicts(db, "select * from crawl_runs order by started_at")
    for r in out:
        r["stats"] = json.loads(r["stats"]) if isinstance(r["stats"], str) else r["stats"]
    return out


def artifact(env: dict[str, str], key: str, flow_run_id: str) -> dict[str, Any]:
    """The Prefect artifact ``key`` of a flow run, as the UI shows it, from the API the run
    reported to (``PREFECT_API_URL`` of ``env``)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(
        sync_client=True
    ) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)]),
        ))
    assert found, f"no artifact {key!r} for flow run {flow_run_id}"
    art = found[-1]
    table = json.loads(art.data) if isinstance(art.data, str) else art.data
    return {"description": art.description, "table": table}


def one_line(stderr: str) -> str:
    """The CLI's own message: exactly one ``baotintuc:`` line and no traceback."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [ln for ln in stderr.splitlines() if ln.startswith("baotintuc: ")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def assert_invariant(run_row: dict[str, Any]) -> None:
    r = run_row
    assert r["lost"] == 0, r
    assert r["discovered"] == r["stored"] + r["skipped"] + r["failed"], r


__all__ = ["FAST", "artifact", "assert_invariant", "dicts", "hostile_env", "one_line", "rows",
           "run", "runs", "start"]
