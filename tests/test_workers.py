"""Scheduled deployments run on Prefect workers: two ``prefect worker start`` processes
share the work pool, as workers on two hosts would.

The deployments are registered from the real ``prefect.yaml`` (only the pool renamed, so
this test owns its pool on the session's server) with ``prefect deploy``. Two runs are
created at once, ``quality-report`` on a tmp DuckDB file and ``rss-poll`` against the
offline mirror into another tmp file; each worker takes one run at a time (``--limit
1``), so the two runs go to the two workers. Prefect's own worker events tell which
worker executed which run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import PROJECT_ROOT
from flows.deploy import ensure_work_pool, register
from tests.support import PrefectTestServer, prefect_cli_env
from tests.test_serve import api, client, tiny_db, wait_for

POOL = "baotintuc-test-workers"
WORKERS = ("worker-a", "worker-b")
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def deployed(prefect_server: PrefectTestServer, tmp_path: Path) -> Path:
    raw = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    for dep in raw["deployments"]:
        dep["work_pool"] = {"name": POOL, "work_queue_name": "default"}
    file = tmp_path / "prefect.yaml"
    file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    env = prefect_cli_env(tmp_path, prefect_server)
    with api(prefect_server), client() as c:
        ensure_work_pool(c, POOL)
    register(file, tmp_path / "deploy.log", env=env)
    return file


@pytest.fixture
def workers(
    prefect_server: PrefectTestServer, deployed: Path, tmp_path: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = prefect_cli_env(tmp_path, prefect_server) | {
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    }
    procs = []
    for name in WORKERS:
        log = (tmp_path / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL,
                 "--name", name, "--limit", "1"],
                cwd=tmp_path,  # not the checkout: workers import the installed package
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        )
    try:
        wait_for("both workers online", lambda: _online(prefect_server) >= set(WORKERS), 60)
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def _online(server: PrefectTestServer) -> set[str]:
    with api(server), client() as c:
        return {w.name for w in c.read_workers_for_work_pool(POOL) if w.status.value == "ONLINE"}


def _executed_by(server: PrefectTestServer, run_ids: set[str]) -> dict[str, str]:
    """flow-run id -> name of the worker that executed it (Prefect's worker events)."""
    from prefect.events.filters import EventFilter, EventNameFilter

    with api(server), client() as c:
        page = c.read_events(
            filter=EventFilter(event=EventNameFilter(name=["prefect.worker.executed-flow-run"])),
            limit=50,
        )
    out = {}
    for ev in page.events:
        for rel in ev.related:
            run_id = rel.id.removeprefix("prefect.flow-run.")
            if rel.role == "flow-run" and run_id in run_ids:
                out[run_id] = ev.resource.get("prefect.resource.name", ev.resource.id)
    return out


def test_two_workers_share_the_pool(
    prefect_server: PrefectTestServer,
    workers: list[subprocess.Popen[bytes]],
    mirror_server: Any,
    tmp_path: Path,
) -> None:
    quality_db = tmp_path / "tiny.duckdb"
    tiny_db(quality_db)
    ingest_db = tmp_path / "ingest.duckdb"
    with api(prefect_server), client() as c:
        quality = c.read_deployment_by_name("quality-report/quality-report")
        rss = c.read_deployment_by_name("ingest-baotintuc/rss-poll")
        assert quality.work_pool_name == POOL and rss.work_pool_name == POOL
        runs = [
            c.create_flow_run_from_deployment(
                quality.id, parameters={"db_path": str(quality_db), "hours": 24}
            ),
            c.create_flow_run_from_deployment(
                rss.id,
                parameters={"mode": "rss", "base_url": mirror_server.base_url,
                            "db_path": str(ingest_db)},
            ),  # fmt: skip
        ]
    ids = {str(r.id) for r in runs}

    def finished() -> list[Any] | None:
        with api(prefect_server), client() as c:
            now = [c.read_flow_run(r.id) for r in runs]
        for p in workers:
            assert p.poll() is None, "a worker died; see its log under tmp_path"
        return now if all(r.state_type.value in FINAL for r in now) else None

    done = wait_for("both runs to finish", finished, 240, every=1)
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("worker-*.log")}
    assert [r.state_type.value for r in done] == ["COMPLETED", "COMPLETED"], logs
    by_worker = wait_for("the workers' events", lambda: (
        m if len(m := _executed_by(prefect_server, ids)) == 2 else None), 30)  # fmt: skip
    assert set(by_worker.values()) == set(WORKERS), by_worker
    # Executed by the workers' subprocesses, not by this test process.
    for r in done:
        assert r.infrastructure_pid and int(r.infrastructure_pid) != os.getpid()
    assert ingest_db.exists(), "the rss-poll run wrote the tmp warehouse it was given"
