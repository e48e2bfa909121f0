"""Scheduling and monitoring: prefect.yaml, ``baotintuc serve`` (deploy + worker), the
quality flow. Everything talks to the session's Prefect server (``prefect_server``).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pytest
import yaml

from config import PROJECT_ROOT, ConfigError
from flows.deploy import load_deployments
from tests.support import BAOTINTUC, PrefectTestServer, prefect_cli_env

T = TypeVar("T")
SCHEMA = PROJECT_ROOT / "warehouse" / "schema" / "001_core.sql"
EXPECTED = {
    # name: (flow name, cron, parameters)
    "rss-poll": ("ingest-baotintuc", "*/15 * * * *", {"mode": "rss"}),
    "listing-sweep": ("ingest-baotintuc", "5 * * * *", {"mode": "listings", "max_pages": 1}),
    "nightly-backfill": ("ingest-baotintuc", "30 2 * * *", {"mode": "listings", "max_pages": 20}),
    "quality-report": ("quality-report", "30 6 * * *", {"hours": 24}),
}
TZ = "Asia/Ho_Chi_Minh"


def wait_for(what: str, fn: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def api(server: PrefectTestServer) -> Any:
    """Context manager: this test process talks to the session's server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: server.api_url})


def client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def read_deployment(server: PrefectTestServer, flow_name: str, name: str) -> Any:
    from prefect.exceptions import ObjectNotFound

    try:
        with api(server), client() as c:
            return c.read_deployment_by_name(f"{flow_name}/{name}")
    except ObjectNotFound:
        return None


# --- prefect.yaml: the one definition of the schedules ---------------------------------------


def test_prefect_yaml_defines_the_four_deployments() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    raw = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    PrefectYamlModel.model_validate(raw)  # what `prefect deploy` validates
    assert raw["pull"] == [], "no pull steps: workers import the installed package"
    got = {d["name"]: d for d in raw["deployments"]}
    assert set(got) == set(EXPECTED)
    for name, (flow_name, cron, params) in EXPECTED.items():
        d = got[name]
        assert d["parameters"] == params
        assert d["schedules"] == [
            {"cron": cron, "timezone": TZ, "slug": f"{name}-cron", "active": True}
        ]
        assert d["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
        assert d["work_pool"]["name"] == "baotintuc"
        from prefect.flows import load_flow_from_entrypoint

        assert load_flow_from_entrypoint(d["entrypoint"]).name == flow_name


def test_load_deployments_reads_prefect_yaml() -> None:
    specs = load_deployments()
    assert [s.name for s in specs] == list(EXPECTED)
    assert {s.work_pool for s in specs} == {"baotintuc"}


def test_a_bad_prefect_yaml_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "prefect.yaml"
    bad.write_text("deployments:\n  - name: x\n    schedules: 12\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=str(bad)):
        load_deployments(bad)
    two = tmp_path / "two.yaml"
    raw = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    raw["deployments"][0]["work_pool"] = {"name": "elsewhere"}
    two.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="one work pool"):
        load_deployments(two)


def test_no_second_schedule_definition_remains() -> None:
    assert not (PROJECT_ROOT / "config" / "schedules.toml").exists()


# --- baotintuc serve in a subprocess ------------------------------------------------------------


def _start_serve(root: Path, server: PrefectTestServer) -> tuple[subprocess.Popen[str], Path]:
    env = prefect_cli_env(root, server) | {
        # A scheduled run firing during the test must not go to the internet.
        "BTT_CRAWL__BASE_URL": "http://127.0.0.1:9",
        "PYTHONUNBUFFERED": "1",
    }
    out = root / "serve.out"
    proc = subprocess.Popen(
        [str(BAOTINTUC), "serve"], cwd=PROJECT_ROOT, env=env,
        stdout=out.open("w"), stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return proc, out


def _stop(proc: subprocess.Popen[str], sig: signal.Signals, out: Path) -> None:
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"serve ignored {sig.name}:\n{out.read_text()}") from None
    assert rc == 0, f"serve exited {rc} on {sig.name}:\n{out.read_text()[-3000:]}"


def _cleanup(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _all_served(
    server: PrefectTestServer, proc: subprocess.Popen[str], out: Path
) -> dict[str, Any] | None:
    if proc.poll() is not None:
        raise AssertionError(f"serve exited early ({proc.returncode}):\n{out.read_text()}")
    if "Ctrl-C stops" not in out.read_text():
        return None
    deps = {n: read_deployment(server, f, n) for n, (f, _, _) in EXPECTED.items()}
    ok = all(d is not None and not d.paused for d in deps.values())
    return deps if ok else None


def _worker_online(server: PrefectTestServer, pool: str) -> bool:
    with api(server), client() as c:
        return any(w.status.value == "ONLINE" for w in c.read_workers_for_work_pool(pool))


def test_serve_registers_prefect_yaml_runs_a_worker_and_pauses_on_stop(
    prefect_server: PrefectTestServer, tmp_path: Path
) -> None:
    proc, out = _start_serve(tmp_path, prefect_server)
    try:
        deps = wait_for("the deployments", lambda: _all_served(prefect_server, proc, out), 90)
        for name, (_, cron, params) in EXPECTED.items():
            d = deps[name]
            assert d.parameters == params
            assert d.work_pool_name == "baotintuc"
            assert d.pull_steps == []
            [s] = d.schedules
            assert (s.schedule.cron, s.schedule.timezone, s.active) == (cron, TZ, True)
            assert d.global_concurrency_limit is not None
            assert d.global_concurrency_limit.limit == 1
            assert d.concurrency_options.collision_strategy.value == "CANCEL_NEW"
        wait_for("a worker of the pool", lambda: _worker_online(prefect_server, "baotintuc"), 60)
        _stop(proc, signal.SIGTERM, out)
    finally:
        _cleanup(proc)
    text = out.read_text()
    assert f"Prefect UI: {prefect_server.ui_url}" in text
    assert "schedules paused" in text
    # pause on stop: nothing fires while nobody serves; the next serve resumes.
    assert read_deployment(prefect_server, "ingest-baotintuc", "rss-poll").paused
    proc, out = _start_serve(tmp_path, prefect_server)
    try:
        wait_for("schedules resumed", lambda: _all_served(prefect_server, proc, out), 90)
        _stop(proc, signal.SIGINT, out)
    finally:
        _cleanup(proc)


# --- the quality report -------------------------------------------------------------------


def tiny_db(path: Path) -> None:
    """Three recent articles, one old one, four failures, one run."""
    now = datetime.now(UTC)
    con = duckdb.connect(str(path))
    try:
        con.execute(SCHEMA.read_text(encoding="utf-8"))
        art = (
            "insert into articles (article_id, url, title, sapo, body_text, published_at, "
            "date_disagreement, category, authors, parser_version, content_hash, "
            "first_seen_at, fetched_at, last_changed_at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'h', ?, ?, ?)"
        )
        rows = [
            ("20240101000000001", "Tiêu đề một", "Sapo", "Thân bài", False, ["Minh Anh"], "v1", 1),
            ("20240101000000002", "Tiêu đề hai", "", "Thân bài", True, [], "v1", 2),
            ("20240101000000003", "Tiêu đề ba", None, "Thân bài", False, ["Ngọc"], "generic", 3),
            ("20230101000000004", "Cũ", "Sapo", "Thân bài", True, ["X"], "v0", 72),  # old
        ]
        for aid, title, sapo, body, dis, authors, pv, hours_ago in rows:
            at = now - timedelta(hours=hours_ago)
            con.execute(
                art,
                [aid, f"https://baotintuc.vn/a-{aid}.htm", title, sapo, body, at, dis,
                 "Thời sự", authors, pv, at, at, at],
            )  # fmt: skip
        fail = (
            'insert into fetch_failures (run_id, url, stage, reason, "at") values (?, ?, ?, ?, ?)'
        )
        for reason, hours_ago in (("http_404", 1), ("http_404", 2), ("timeout", 3), ("x", 48)):
            con.execute(fail, ["r1", "https://baotintuc.vn/x.htm", "article", reason,
                               now - timedelta(hours=hours_ago)])  # fmt: skip
        con.execute(
            "insert into crawl_runs (run_id, started_at, status, fetched, new) values "
            "('r1', ?, 'completed', 3, 3)",
            [now - timedelta(hours=1)],
        )
    finally:
        con.close()


def _flush_logs() -> None:
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)


def _latest_artifact(server: PrefectTestServer, key: str) -> Any:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with api(server), client() as c:
        arts = c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return max(arts, key=lambda a: a.created) if arts else None


def test_quality_report_on_a_tiny_database(
    prefect_server: PrefectTestServer, tmp_path: Path
) -> None:
    from flows.quality import quality_report

    db = tmp_path / "tiny.duckdb"
    tiny_db(db)
    with api(prefect_server):
        report = quality_report(db_path=str(db), hours=24)
        _flush_logs()
    assert report.db_exists and report.articles == 3
    fill = {f.field: f for f in report.fill}
    assert (fill["title"].filled, fill["sapo"].filled, fill["authors"].filled) == (3, 1, 2)
    assert fill["sapo"].passed is False and fill["title"].passed is True  # thresholds 0.95/0.99
    assert report.parser_versions == {"v1": 2, "generic": 1}
    assert report.date_disagreements == 1
    assert report.failures_by_reason == {"http_404": 2, "timeout": 1}
    assert [r["run_id"] for r in report.runs] == ["r1"]
    md = _latest_artifact(prefect_server, "quality-report")
    assert md is not None and md.type == "markdown"
    assert "| sapo | 1/3 | 33.3 %" in md.data and "`http_404`: 2" in md.data
    table = _latest_artifact(prefect_server, "quality-fill-rates")
    assert table is not None and table.type == "table"
    assert "sapo" in str(table.data)


def test_quality_report_tolerates_a_missing_database(
    prefect_server: PrefectTestServer, tmp_path: Path
) -> None:
    from flows.quality import quality_report

    missing = tmp_path / "nothing-here.duckdb"
    with api(prefect_server):
        report = quality_report(db_path=str(missing), hours=24)
        _flush_logs()
    assert not report.db_exists and report.articles == 0
    assert not missing.exists(), "the report must not create the database"
    md = _latest_artifact(prefect_server, "quality-report")
    assert md is not None and "no database at" in md.data


def test_quality_report_tolerates_an_empty_database(tmp_path: Path) -> None:
    from flows.quality import build_report

    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    report = build_report(db)
    assert report.db_exists and report.articles == 0
    assert any("no table articles" in n for n in report.notes)
