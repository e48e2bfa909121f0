"""Scheduling and monitoring: a real Prefect server, the served deployments, the quality flow.

One Prefect server (``ensure_server`` on a free port, PREFECT_HOME under tmp) serves the
whole module. ``serve_all`` runs in a subprocess, as ``baotintuc serve`` would, and is
stopped with SIGTERM / SIGINT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pytest
import yaml

from config import PROJECT_ROOT, Settings, load_settings
from flows.deploy import build_deployments, load_flow, load_schedules
from flows.prefect_server import ServerHandle, ensure_server, free_port, is_healthy

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


def _settings(root: Path) -> Settings:
    s = load_settings(root=root)
    s.paths.prefect_home = root / "prefect"
    return s


def _wait_for(what: str, fn: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    root = tmp_path_factory.mktemp("prefect-server")
    handle = ensure_server(_settings(root), port=free_port(), reuse_env=False, startup_timeout=90)
    with handle:
        yield handle
    assert handle.process is not None and handle.process.poll() is not None


def _client(api_url: str) -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True, httpx_settings={"base_url": api_url})


def _api(api_url: str) -> Any:
    """Context manager: the test process talks to ``api_url`` (settings restored after)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: api_url})


def _deployment(api_url: str, flow_name: str, name: str) -> Any:
    import httpx
    from prefect.exceptions import ObjectNotFound

    try:
        with _api(api_url), _client(api_url) as client:
            return client.read_deployment_by_name(f"{flow_name}/{name}")
    except (ObjectNotFound, httpx.TransportError):
        return None  # not registered yet, or the server is not up yet


# --- the server -----------------------------------------------------------------------


def test_server_is_healthy_and_serves_the_ui(server: ServerHandle) -> None:
    import urllib.request

    assert server.owned and server.api_url.startswith("http://127.0.0.1:")
    assert is_healthy(server.api_url)
    with urllib.request.urlopen(server.ui_url, timeout=10) as r:
        page = r.read().decode("utf-8", errors="replace")
    assert r.status == 200 and "<html" in page.lower()
    assert server.log_path is not None and server.log_path.exists()


def test_reuses_a_healthy_server_named_by_prefect_api_url(
    server: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", server.api_url)
    with ensure_server(_settings(tmp_path), port=free_port()) as reused:
        assert not reused.owned and reused.api_url == server.api_url
    assert is_healthy(server.api_url), "stopping a reused handle must not stop the server"


def test_start_failure_is_reported_within_the_bound(tmp_path: Path) -> None:
    from flows.prefect_server import ServerStartError

    t0 = time.monotonic()
    with pytest.raises(ServerStartError, match="did not answer"):
        ensure_server(_settings(tmp_path), port=free_port(), reuse_env=False, startup_timeout=0.5)
    assert time.monotonic() - t0 < 15


# --- the deployments --------------------------------------------------------------------


def test_schedules_file_gives_the_four_deployments() -> None:
    cfg = load_schedules()
    assert cfg.timezone == TZ
    assert {n: (d.cron, d.parameters) for n, d in cfg.deployments.items()} == {
        n: (cron, params) for n, (_, cron, params) in EXPECTED.items()
    }


def test_build_deployments_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    deps = {d.name: d for d in build_deployments()}
    assert set(deps) == set(EXPECTED)
    for name, (flow_name, cron, params) in EXPECTED.items():
        d = deps[name]
        assert d.flow_name == flow_name
        assert d.parameters == params
        assert len(d.schedules) == 1
        sched = d.schedules[0].schedule
        assert (sched.cron, sched.timezone) == (cron, TZ)
        assert d.schedules[0].slug == f"{name}-cron"
        assert d.concurrency_limit == 1
        assert d.concurrency_options is not None
        assert d.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert deps["rss-poll"].entrypoint == "flows/ingest.py:ingest"
    assert deps["quality-report"].entrypoint == "flows/quality.py:quality_report"


def test_bad_schedules_file_names_the_setting(tmp_path: Path) -> None:
    from config import ConfigError

    bad = tmp_path / "schedules.toml"
    bad.write_text(
        'timezone = "Asia/Ho_Chi_Minh"\n[deployments.x]\n'
        'entrypoint = "flows/ingest.py:ingest"\ncron = "every minute"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"deployments\.x\.cron"):
        load_schedules(bad)


def test_prefect_yaml_mirrors_the_schedules_file() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    raw = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    model = PrefectYamlModel.model_validate(raw)  # what `prefect deploy` validates
    cfg = load_schedules()
    assert [d.name for d in model.deployments] == list(cfg.deployments)
    for d in raw["deployments"]:
        want = cfg.deployments[d["name"]]
        assert d["entrypoint"] == want.entrypoint
        assert load_flow(d["entrypoint"]).name == EXPECTED[d["name"]][0]  # entrypoint imports
        assert d["parameters"] == want.parameters
        assert d["description"] == want.description
        assert d["tags"] == want.tags
        [s] = d["schedules"]
        assert s == {
            "cron": want.cron,
            "timezone": cfg.timezone_of(want),
            "slug": f"{d['name']}-cron",
            "active": True,
        }
        assert d["concurrency_limit"] == {
            "limit": want.concurrency_limit,
            "collision_strategy": want.collision_strategy,
        }


# --- serve_all in a subprocess ------------------------------------------------------------


def _serve_env(root: Path, api_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env |= {
        "BTT_ROOT": str(root),
        "PREFECT_HOME": str(root / "data" / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # A scheduled run firing during the test must not go to the internet.
        "BTT_CRAWL__BASE_URL": "http://127.0.0.1:9",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def _start_serve(root: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.deploy"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=(root / "serve.out").open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(proc: subprocess.Popen[str], sig: signal.Signals, bound: float, out: Path) -> float:
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(
            f"serve_all ignored {sig.name} for {bound} s:\n{out.read_text()}"
        ) from None
    took = time.monotonic() - t0
    assert rc == 0, f"serve_all exited {rc} on {sig.name}:\n{out.read_text()[-3000:]}"
    return took


def _cleanup(proc: subprocess.Popen[str]) -> None:
    """After a failure: SIGTERM first, so serve_all still stops a server it started."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _all_served(api_url: str, proc: subprocess.Popen[str], out: Path) -> dict[str, Any] | None:
    if proc.poll() is not None:
        raise AssertionError(f"serve_all exited early ({proc.returncode}):\n{out.read_text()}")
    deps = {n: _deployment(api_url, f, n) for n, (f, _, _) in EXPECTED.items()}
    ok = all(d is not None and not d.paused for d in deps.values())
    return deps if ok else None


def test_serve_all_registers_schedules_and_stops_cleanly(
    server: ServerHandle, tmp_path: Path
) -> None:
    out = tmp_path / "serve.out"
    proc = _start_serve(tmp_path, _serve_env(tmp_path, server.api_url))
    try:
        deps = _wait_for(
            "the served deployments", lambda: _all_served(server.api_url, proc, out), 60
        )
        for name, (_, cron, params) in EXPECTED.items():
            d = deps[name]
            assert d.parameters == params
            [s] = d.schedules
            assert (s.schedule.cron, s.schedule.timezone, s.active) == (cron, TZ, True)
            assert s.slug == f"{name}-cron"
            assert d.global_concurrency_limit is not None
            assert d.global_concurrency_limit.limit == 1
            assert d.concurrency_options.collision_strategy.value == "CANCEL_NEW"
            assert d.entrypoint in ("flows/ingest.py:ingest", "flows/quality.py:quality_report")
        time.sleep(1)  # let the runner enter its polling loop before the signal
        took = _stop(proc, signal.SIGTERM, 30, out)
    finally:
        _cleanup(proc)
    text = out.read_text()
    assert "Prefect UI: " + server.ui_url in text
    assert took < 30
    # pause_on_shutdown: nothing fires while nobody serves; the next serve resumes.
    assert _deployment(server.api_url, "ingest-baotintuc", "rss-poll").paused
    assert is_healthy(server.api_url), "a server serve_all did not start must keep running"

    proc = _start_serve(tmp_path, _serve_env(tmp_path, server.api_url))
    try:
        _wait_for("schedules resumed", lambda: _all_served(server.api_url, proc, out), 60)
        time.sleep(1)
        _stop(proc, signal.SIGINT, 30, out)
    finally:
        _cleanup(proc)


@pytest.mark.slow
def test_serve_all_owns_its_server_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    sched = tmp_path / "schedules.toml"
    text = (PROJECT_ROOT / "config" / "schedules.toml").read_text(encoding="utf-8")
    sched.write_text(text.replace("port = 4200", f"port = {port}"), encoding="utf-8")
    env = _serve_env(tmp_path, None) | {"BTT_SCHEDULES_FILE": str(sched)}
    out = tmp_path / "serve.out"
    proc = _start_serve(tmp_path, env)
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait_for("the served deployments", lambda: _all_served(api, proc, out), 90)
        assert (tmp_path / "data" / "prefect" / "server.log").exists()  # under BTT_ROOT
        time.sleep(1)
        _stop(proc, signal.SIGINT, 40, out)
    finally:
        _cleanup(proc)
    assert not is_healthy(api, timeout=1), "serve_all must stop the server it started"
    assert "stopping the Prefect server" in out.read_text()


# --- the quality report -------------------------------------------------------------------


def _tiny_db(path: Path) -> None:
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
    """Send the in-process flow's logs now, while the module's server still runs."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)


def _latest_artifact(api_url: str, key: str) -> Any:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with _api(api_url), _client(api_url) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
        )
    return max(arts, key=lambda a: a.created) if arts else None


def test_quality_report_on_a_tiny_database(server: ServerHandle, tmp_path: Path) -> None:
    from flows.quality import quality_report

    db = tmp_path / "tiny.duckdb"
    _tiny_db(db)
    with _api(server.api_url):
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
    md = _latest_artifact(server.api_url, "quality-report")
    assert md is not None and md.type == "markdown"
    assert "| sapo | 1/3 | 33.3 %" in md.data and "`http_404`: 2" in md.data
    table = _latest_artifact(server.api_url, "quality-fill-rates")
    assert table is not None and table.type == "table"
    assert '"field": "sapo"' in str(table.data) or "sapo" in str(table.data)


def test_quality_report_tolerates_a_missing_database(server: ServerHandle, tmp_path: Path) -> None:
    from flows.quality import quality_report

    missing = tmp_path / "nothing-here.duckdb"
    with _api(server.api_url):
        report = quality_report(db_path=str(missing), hours=24)
        _flush_logs()
    assert not report.db_exists and report.articles == 0
    assert not missing.exists(), "the report must not create the database"
    md = _latest_artifact(server.api_url, "quality-report")
    assert md is not None and "no database at" in md.data


def test_quality_report_tolerates_an_empty_database(tmp_path: Path) -> None:
    from flows.quality import build_report

    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    report = build_report(db)
    assert report.db_exists and report.articles == 0
    assert any("no table articles" in n for n in report.notes)
