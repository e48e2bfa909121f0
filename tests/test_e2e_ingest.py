"""End to end: the ``baotintuc crawl`` CLI through the mirror over HTTP into DuckDB."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from baotintuc.text import token_f1
from mirror.server import Fault
from tests.support import copy_of, run_cli

pytestmark = pytest.mark.slow
VN = ZoneInfo("Asia/Ho_Chi_Minh")
CONTRACT_EXACT = ("url", "title", "sapo", "byline", "authors", "source", "category", "tags")


def _ro(db: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(db), read_only=True)


@pytest.fixture(scope="module")
def full_run(ingested: dict[str, Any]) -> Iterator[dict]:
    yield ingested


def test_first_run_completes(full_run: dict) -> None:
    proc = full_run["first"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert " new, " in proc.stdout and "query it" in proc.stdout


def test_every_article_present_exactly_once(full_run: dict, ground_truth: dict) -> None:
    with _ro(full_run["db"]) as con:
        ids = [r[0] for r in con.sql("select article_id from articles").fetchall()]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(ground_truth)


def test_contract_columns_equal_ground_truth(full_run: dict, ground_truth: dict) -> None:
    cols = ", ".join(("article_id", "body_text", "published_at", *CONTRACT_EXACT))
    with _ro(full_run["db"]) as con:
        rows = con.sql(f"select {cols} from articles").fetchall()
        names = [d[0] for d in con.sql(f"select {cols} from articles limit 0").description]
        images = con.sql(
            "select article_id, position, url, caption, credit from article_images "
            "order by article_id, position"
        ).fetchall()
    mismatches: list[str] = []
    worst = 1.0
    for row in rows:
        got = dict(zip(names, row, strict=True))
        truth = ground_truth[got["article_id"]]
        for col in CONTRACT_EXACT:
            want = truth[col]
            have = list(got[col]) if isinstance(got[col], list | tuple) else got[col]
            if have != want:
                mismatches.append(f"{got['article_id']}.{col}: {have!r} != {want!r}")
        want_pub = datetime.fromisoformat(truth["published_at"])
        if got["published_at"] != want_pub:
            mismatches.append(f"{got['article_id']}.published_at: {got['published_at']}")
        f1 = token_f1(got["body_text"], truth["body_text"])
        worst = min(worst, f1)
        if f1 < 0.97:
            mismatches.append(f"{got['article_id']}.body_text F1 {f1:.3f}")
    by_article: dict[str, list[dict]] = {}
    for aid, pos, url, caption, credit in images:
        by_article.setdefault(aid, []).append(
            {"position": pos, "url": url, "caption": caption, "credit": credit}
        )
    for aid, truth in ground_truth.items():
        if by_article.get(aid, []) != truth["images"]:
            mismatches.append(f"{aid}.images: {by_article.get(aid)} != {truth['images']}")
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. " + "\n".join(mismatches[:15])
    assert worst >= 0.97


def test_second_run_adds_nothing(full_run: dict, mirror_server: Any, tmp_path: Path) -> None:
    db = copy_of(full_run, tmp_path)  # this test writes: its own copy, whatever the order
    with _ro(db) as con:
        before = con.sql(
            "select article_id, first_seen_at, content_hash from articles order by 1"
        ).fetchall()
    mark = len(mirror_server.requests)
    again = run_cli(tmp_path, "crawl", "--base-url", mirror_server.base_url,
                    "--db", str(db), "--max-pages", "50")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 new, 0 updated" in again.stdout
    with _ro(db) as con:
        after = con.sql(
            "select article_id, first_seen_at, content_hash from articles order by 1"
        ).fetchall()
        runs = con.execute("select count(*) from crawl_runs").fetchone()[0]
    assert after == before
    assert runs == 2
    article_hits = [r for r in mirror_server.requests[mark:] if r.path.endswith(".htm")
                    and r.path[-21:-4].isdigit()]
    assert article_hits == [], "known articles must not be refetched"


def test_since_and_max_pages(tmp_path: Path, mirror_server: Any, ground_truth: dict) -> None:
    days = sorted({datetime.fromisoformat(t["published_at"]).astimezone(VN).date()
                   for t in ground_truth.values()})
    since: date = days[len(days) // 2]
    mark = len(mirror_server.requests)
    proc = run_cli(tmp_path, "crawl", "--base-url", mirror_server.base_url,
                   "--db", str(tmp_path / "s.duckdb"), "--since", since.isoformat(),
                   "--max-pages", "2", "--categories", "phap-luat")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with _ro(tmp_path / "s.duckdb") as con:
        pubs = [r[0] for r in con.sql("select published_at from articles").fetchall()]
    assert pubs, "some articles are newer than the median day"
    assert all(p.astimezone(VN).date() >= since for p in pubs)
    listing_pages = {r.path for r in mirror_server.requests[mark:] if "/trang-" in r.path}
    assert all(p.startswith("/phap-luat-475ct0/") for p in listing_pages)
    assert listing_pages <= {"/phap-luat-475ct0/trang-2.htm"}


def test_a_run_over_the_writer_memory_cap_still_stores_everything(
        tmp_path: Path, mirror_server: Any) -> None:
    """With DuckDB's writer memory capped far too low, every segment and the run's
    bookkeeping are written again uncapped, with a warning: the cap bounds the usual
    peak (64 MB by default), it never fails a run."""
    db = tmp_path / "m.duckdb"
    proc = run_cli(tmp_path, "crawl", "--base-url", mirror_server.base_url, "--db", str(db),
                   "--max-pages", "1", "--categories", "phap-luat",
                   env={"BTT_WAREHOUSE__WRITER_MEMORY_LIMIT": "1MB"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with _ro(db) as con:
        assert con.sql("select status from crawl_runs").fetchall() == [("completed",)]
        (stored,) = con.execute("select count(*) from articles").fetchone() or (0,)
        (urls,) = con.execute(
            "select count(distinct article_id) from article_urls").fetchone() or (0,)
        (segments,) = con.execute("select count(*) from archive_segments").fetchone() or (0,)
    assert stored >= 20 and urls >= stored and segments >= 1
    log = (tmp_path / "data" / "logs" / "baotintuc.log").read_text(encoding="utf-8")
    over = "needed more memory than warehouse.writer_memory_limit = 1MB"
    first = sorted((tmp_path / "data" / "raw").rglob("*.warc.gz"))[0]
    assert f"segment {first.name} {over}" in log
    assert "the bookkeeping of run" in log and log.count(over) >= 3


def test_404_and_503_are_counted_not_fatal(tmp_path: Path, mirror_server: Any,
                                           ground_truth: dict) -> None:
    newest = sorted(ground_truth.values(), key=lambda t: t["published_at"], reverse=True)
    paths = ["/" + t["url"].split("://", 1)[1].split("/", 1)[1] for t in newest[:3]]
    mirror_server.set_fault(paths[0], Fault("status", status=404))
    mirror_server.set_fault(paths[1], Fault("status", status=503, times=1))
    mirror_server.set_fault(paths[2], Fault("status", status=503))
    try:
        started = time.monotonic()
        proc = run_cli(tmp_path, "crawl", "--base-url", mirror_server.base_url,
                       "--db", str(tmp_path / "f.duckdb"), "--mode", "rss")
        assert time.monotonic() - started < 300
    finally:
        mirror_server.clear_faults()
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids = [t["article_id"] for t in newest[:3]]
    with _ro(tmp_path / "f.duckdb") as con:
        stored = {r[0] for r in con.sql("select article_id from articles").fetchall()}
        reasons = dict(con.sql("select url, reason from fetch_failures").fetchall())
    assert ids[0] not in stored and ids[2] not in stored
    assert ids[1] in stored, "a 503 answered once must be retried and stored"
    assert reasons[newest[0]["url"]] == "http_404"
    assert reasons[newest[2]["url"]] == "http_503"
