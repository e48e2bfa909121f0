"""Warehouse: migrations, the loader, search folding, locking. Real DuckDB files."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from baotintuc.model import ImageRecord, ParsedArticle
from baotintuc.site import ALL_CATEGORIES
from warehouse.db import (
    WarehouseLocked,
    connect,
    migrate,
    migration_files,
    reader,
    refresh_views,
    writer,
)
from warehouse.load import (
    content_hash,
    finish_run,
    known_articles,
    load_run,
    start_run,
    write_quality,
)

VN = timezone(timedelta(hours=7))
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=VN)


def parsed(article_id: str = "20240501100000123", **changes: Any) -> ParsedArticle:
    base = ParsedArticle(
        article_id=article_id,
        url=f"https://baotintuc.vn/thoi-su/bai-viet-{article_id}.htm",
        title="Nâng cao hiệu quả công tác dân vận",
        sapo="Sáng 1/5, tại Hà Nội, hội nghị đã diễn ra.",
        body_text="Đoạn một.\n\nĐoạn hai về hoà bình.",
        body_markdown="Đoạn một.\n\nĐoạn hai về hoà bình.",
        byline="Minh Anh - Ngọc Thành (TTXVN)",
        authors=["Minh Anh", "Ngọc Thành"],
        source="TTXVN",
        published_at=datetime(2024, 5, 1, 10, 0, tzinfo=VN),
        modified_at=None,
        date_source="meta",
        date_disagreement=False,
        category="Chính trị",
        category_id=321,
        parent_category_id=472,
        tags=["dân vận", "Hà Nội"],
        related_article_ids=["20240430090000111"],
        word_count=8,
        kind="article",
        video_urls=[],
        images=[
            ImageRecord(
                0, "https://cdnmedia.baotintuc.vn/a.jpg", "Quang cảnh. Ảnh: TTXVN", "TTXVN"
            ),
            ImageRecord(1, "https://cdnmedia.baotintuc.vn/b.jpg", "", None),
        ],
        parser_version="baotintuc-v1",
        extractor_version="trafilatura-2.3.1",
    )
    return replace(base, **changes)


def row(p: ParsedArticle, fetched_at: datetime = T0) -> dict[str, Any]:
    r = p.to_row()
    r["fetched_at"] = fetched_at
    return r


def run(run_id: str = "run-1", **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "started_at": T0 - timedelta(minutes=5),
        "finished_at": T0,
        "base_url": "http://127.0.0.1:8765",
        "params": {"categories": ["thoi-su"], "max_pages": 2},
        "status": "completed",
        "discovered": 3,
        "fetched": 2,
        "rejected": 0,
        "requests": 7,
        "bytes": 123456,
        **extra,
    }


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sub" / "warehouse.duckdb"


@pytest.fixture
def con(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = connect(db)
    migrate(c)
    yield c
    c.close()


def table(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


# --------------------------------------------------------------------------- migrations


def test_migrate_creates_everything_and_second_run_is_a_noop(db: Path) -> None:
    c = connect(db)
    assert db.parent.is_dir()
    assert migrate(c) == [f"{v:03d}_{name}" for v, name, _ in migration_files()]
    tables = {r[0] for r in table(c, "select table_name from duckdb_tables()")}
    assert {
        "articles",
        "article_images",
        "article_versions",
        "categories",
        "crawl_runs",
        "fetch_failures",
        "run_quality",
        "schema_migrations",
    } <= tables
    views = {r[0] for r in table(c, "select view_name from duckdb_views() where not internal")}
    assert {"articles_search", "article_history"} <= views
    assert table(c, "select count(*) from categories")[0][0] == len(ALL_CATEGORIES)
    before = {
        t: table(c, f"select * from {t} order by all")
        for t in ("schema_migrations", "schema_views", "categories")
    }
    c.close()

    c = connect(db)
    assert migrate(c) == []
    assert refresh_views(c) == []
    after = {t: table(c, f"select * from {t} order by all") for t in before}
    assert after == before
    c.close()


def test_every_schema_file_is_idempotent_on_its_own(con: duckdb.DuckDBPyConnection) -> None:
    from warehouse.db import migration_files

    for _, _, path in migration_files():
        con.execute(path.read_text(encoding="utf-8"))  # must not raise on an up-to-date DB


# --------------------------------------------------------------------------- loading


def test_same_batch_twice_leaves_identical_rows(con: duckdb.DuckDBPyConnection) -> None:
    batch = [row(parsed()), row(parsed("20240501110000456", title="Bài hai", images=[]))]
    first = load_run(con, run(), batch, [], flow_run_id="flow-1")
    assert (first.new, first.updated, first.unchanged, first.images) == (2, 0, 0, 2)
    snap = {
        t: table(con, f"select * from {t} order by all")
        for t in ("articles", "article_images", "categories")
    }

    second = load_run(con, run(), batch, [], flow_run_id="flow-1")
    assert (second.new, second.updated, second.unchanged) == (0, 0, 2)
    for t, rows in snap.items():
        assert table(con, f"select * from {t} order by all") == rows, t
    assert table(con, "select count(*) from article_versions") == [(0,)]
    # The run row reports the latest load of the run.
    assert table(con, "select new, unchanged from crawl_runs") == [(0, 2)]

    # A later re-fetch with the same content: fetched_at moves, nothing else.
    later = T0 + timedelta(hours=6)
    third = load_run(con, run("run-2"), [row(parsed(), later)], [], flow_run_id="flow-2")
    assert third.unchanged == 1
    got = table(
        con,
        "select first_seen_at, fetched_at, last_changed_at, version, flow_run_id "
        "from articles where article_id = '20240501100000123'",
    )
    assert got == [(T0, later, T0, 1, "flow-2")]
    assert table(con, "select count(*) from article_versions") == [(0,)]


def test_changed_content_keeps_previous_version(con: duckdb.DuckDBPyConnection) -> None:
    load_run(con, run(), [row(parsed())], [], flow_run_id="flow-1")
    edited = parsed(
        title="Nâng cao hiệu quả công tác dân vận (cập nhật)",
        images=[ImageRecord(0, "https://cdnmedia.baotintuc.vn/c.jpg", "Ảnh mới", None)],
    )
    later = T0 + timedelta(hours=3)
    res = load_run(con, run("run-2"), [row(edited, later)], [], flow_run_id="flow-2")
    assert (res.new, res.updated, res.unchanged, res.images) == (0, 1, 0, 1)

    cur = table(
        con,
        "select title, version, first_seen_at, last_changed_at, fetched_at, content_hash "
        "from articles",
    )
    assert cur == [(edited.title, 2, T0, later, later, content_hash(row(edited)))]
    old = table(
        con,
        "select version, title, fetched_at, replaced_at, flow_run_id, replaced_by_flow_run_id, "
        "changed_fields, [i.url for i in images] from article_versions",
    )
    assert old == [
        (
            1,
            "Nâng cao hiệu quả công tác dân vận",
            T0,
            later,
            "flow-1",
            "flow-2",
            ["title", "images"],
            ["https://cdnmedia.baotintuc.vn/a.jpg", "https://cdnmedia.baotintuc.vn/b.jpg"],
        )
    ]
    images = table(con, "select position, url, caption, credit, flow_run_id from article_images")
    assert images == [(0, "https://cdnmedia.baotintuc.vn/c.jpg", "Ảnh mới", None, "flow-2")]
    history = table(con, "select version, is_current from article_history order by version")
    assert history == [(1, False), (2, True)]

    # Re-loading the edited batch does not add another version.
    again = load_run(con, run("run-2"), [row(edited, later)], [], flow_run_id="flow-2")
    assert again.unchanged == 1
    assert table(con, "select count(*) from article_versions") == [(1,)]


def test_reparse_changing_only_derived_fields_is_not_an_edit(
    con: duckdb.DuckDBPyConnection,
) -> None:
    load_run(con, run(), [row(parsed())], [])
    reparsed = parsed(body_markdown="# changed", word_count=99, parser_version="baotintuc-v2")
    res = load_run(con, run("run-2"), [row(reparsed)], [])
    assert res.unchanged == 1
    assert table(
        con, "select body_markdown, word_count, parser_version, version from articles"
    ) == [("# changed", 99, "baotintuc-v2", 1)]


def test_in_batch_duplicates_are_deduplicated(con: duckdb.DuckDBPyConnection) -> None:
    newer = row(parsed(title="Bản mới"), T0 + timedelta(minutes=10))
    older = row(parsed(title="Bản cũ"), T0)
    res = load_run(con, run(), [newer, older], [])
    assert (res.new, res.duplicates) == (1, 1)
    assert table(con, "select title, fetched_at from articles") == [
        ("Bản mới", T0 + timedelta(minutes=10))
    ]
    assert table(con, "select count(*) from article_images") == [(2,)]


def test_older_fetch_is_stale_and_skipped(con: duckdb.DuckDBPyConnection) -> None:
    load_run(con, run(), [row(parsed(title="Mới"), T0)], [])
    res = load_run(con, run("old"), [row(parsed(title="Cũ"), T0 - timedelta(days=1))], [])
    assert (res.stale, res.updated) == (1, 0)
    assert table(con, "select title, version from articles") == [("Mới", 1)]


def test_failures_and_runs_recorded(con: duckdb.DuckDBPyConnection) -> None:
    start_run(con, "run-1", flow_run_id="flow-1", base_url="http://x", params={"a": 1})
    assert table(con, "select status from crawl_runs") == [("running",)]
    failures = [
        {
            "url": "https://baotintuc.vn/a-20240501100000999.htm",
            "stage": "article",
            "reason": "http_404",
            "status": 404,
            "detail": "Not Found",
            "at": "2024-05-01T12:00:01+07:00",
        },
        {
            "url": "https://baotintuc.vn/x.rss",
            "stage": "feed",
            "reason": "timeout",
            "status": None,
            "detail": "",
            "at": T0,
        },
    ]
    r = run(responses=6, retries=1)
    res = load_run(con, r, [row(parsed())], failures, flow_run_id="flow-1")
    assert res.failures == 2
    res = load_run(con, r, [row(parsed())], failures, flow_run_id="flow-1")  # idempotent
    got = table(
        con,
        'select run_id, url, stage, reason, status, "at", flow_run_id from fetch_failures '
        "order by stage",
    )
    assert got == [
        (
            "run-1",
            failures[0]["url"],
            "article",
            "http_404",
            404,
            T0 + timedelta(seconds=1),
            "flow-1",
        ),
        ("run-1", failures[1]["url"], "feed", "timeout", None, T0, "flow-1"),
    ]
    finish_run(con, "run-1", status="completed", finished_at=T0 + timedelta(minutes=1))
    runs = table(
        con,
        "select run_id, flow_run_id, status, discovered, fetched, new, unchanged, failed, "
        "requests, bytes, duration_s, params->>'$.max_pages', stats->>'$.responses' "
        "from crawl_runs",
    )
    assert runs == [("run-1", "flow-1", "completed", 3, 2, 0, 1, 2, 7, 123456, 360.0, "2", "6")]


def test_categories_seeded_and_updated_from_pages(con: duckdb.DuckDBPyConnection) -> None:
    assert table(con, "select slug, name, parent_id from categories where id = 321") == [
        ("chinh-tri", "Chính trị", 472)
    ]
    load_run(
        con,
        run(),
        [row(parsed(category="Chuyên mục lạ", category_id=9999, parent_category_id=472))],
        [],
    )
    assert table(con, "select slug, name, parent_id, source from categories where id = 9999") == [
        (None, "Chuyên mục lạ", 472, "page")
    ]


def test_protect_fields_keeps_stored_values(con: duckdb.DuckDBPyConnection) -> None:
    load_run(con, run(), [row(parsed())], [])
    drifted = parsed(title="", body_text="", body_markdown="", word_count=0)
    later = T0 + timedelta(hours=1)
    res = load_run(con, run("r2"), [row(drifted, later)], [], protect_fields=True)
    assert res.protected_fields == {"title": 1, "body_text": 1}
    assert res.protected == 2
    assert res.unchanged == 1  # nothing else changed once the stored values are kept
    assert table(con, "select title, body_text, word_count from articles") == [
        (parsed().title, parsed().body_text, 8)
    ]
    # Without protection the empty title is stored (and the change versioned).
    res = load_run(con, run("r3"), [row(drifted, later + timedelta(hours=1))], [])
    assert res.updated == 1
    assert table(con, "select title from articles") == [("",)]


def test_timestamptz_round_trips_the_instant(db: Path) -> None:
    with writer(db) as c:
        load_run(c, run(), [row(parsed())], [])
    expected = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    for tz in ("Asia/Ho_Chi_Minh", None):
        c = connect(db, read_only=True, timezone=tz)
        (published, epoch) = c.execute(
            "select published_at, epoch(published_at) from articles"
        ).fetchone() or (None, None)
        assert published == expected
        assert published.utcoffset() in (timedelta(hours=7), timedelta(0))
        assert epoch == expected.timestamp()
        c.close()
    with reader(db) as c:
        assert c.execute("select strftime(published_at, '%H:%M') from articles").fetchone() == (
            "10:00",
        )


def test_known_articles_and_quality(con: duckdb.DuckDBPyConnection) -> None:
    load_run(con, run(), [row(parsed())], [], quality={"title": 1.0})
    known = known_articles(con)
    k = known["20240501100000123"]
    assert (k.fetched_at, k.published_at, k.version) == (T0, parsed().published_at, 1)
    assert k.content_hash == content_hash(row(parsed()))
    assert (
        write_quality(
            con,
            "run-1",
            {
                "title": {
                    "fill_rate": 1.0,
                    "filled": 1,
                    "total": 1,
                    "threshold": 0.9,
                    "passed": True,
                },
                "sapo": 0.5,
            },
        )
        == 2
    )
    assert table(con, "select field, fill_rate, passed from run_quality order by field") == [
        ("sapo", 0.5, None),
        ("title", 1.0, True),
    ]


def test_naive_datetime_is_rejected(con: duckdb.DuckDBPyConnection) -> None:
    bad = row(parsed(published_at=datetime(2024, 5, 1, 10, 0)))
    with pytest.raises(ValueError, match="naive"):
        load_run(con, run(), [bad], [])
    assert table(con, "select count(*) from articles") == [(0,)]


# --------------------------------------------------------------------------- search


def test_vn_fold_search_works_from_a_read_only_connection(db: Path) -> None:
    titles = {
        "20240501100000001": "Nâng cao hiệu quả công tác Dân Vận",
        "20240501100000002": "Giữ gìn hoà bình",
        "20240501100000003": "Giữ gìn hòa bình",
        "20240501100000004": "Chị Thuý đạt giải",
        "20240501100000005": "Chị Thúy đạt giải",
        "20240501100000006": unicodedata.normalize("NFD", "Đà Nẵng đón khách"),
        "20240501100000007": "Thời tiết hôm nay",
    }
    with writer(db) as c:
        load_run(c, run(), [row(parsed(i, title=t)) for i, t in titles.items()], [])

    with reader(db) as c:
        assert c.execute("select vn_fold('Đà Nẵng HOÀ Thúy')").fetchone() == ("da nang hoa thuy",)

        def find(q: str) -> set[str]:
            rows = c.execute(
                "select article_id from articles "
                "where vn_fold(title) like '%' || vn_fold(?) || '%'",
                [q],
            ).fetchall()
            return {r[0][-1] for r in rows}

        assert find("dan van") == {"1"}
        assert find("hoa binh") == {"2", "3"}
        assert find("hoà bình") == find("hòa bình") == {"2", "3"}
        assert find("thuý") == find("thúy") == {"4", "5"}
        assert find("da nang") == {"6"}
        via_view = c.execute(
            "select article_id from articles_search where title_key like ?",
            ["%" + "dan van" + "%"],
        ).fetchall()
        assert [r[0] for r in via_view] == ["20240501100000001"]
        stored = c.execute(
            "select macro_definition from duckdb_functions() where function_name = 'vn_fold'"
        ).fetchall()
        assert stored  # the macro lives in the file's catalog


# --------------------------------------------------------------------------- locking

HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)


@pytest.fixture
def holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    """A real second process holding the file read-write for ~3 s."""
    c = connect(db)
    migrate(c)
    c.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), "3"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=10)


def test_connect_waits_for_a_lock_then_succeeds(
    db: Path, holder: subprocess.Popen[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="warehouse.db")
    t = time.monotonic()
    c = connect(db, lock_timeout=30, retry_interval=0.2)
    waited = time.monotonic() - t
    assert c.execute("select count(*) from schema_migrations").fetchone() == (
        len(migration_files()),
    )
    c.close()
    assert 0.5 < waited < 25
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    msg = warnings[0].getMessage()
    assert str(db) in msg and f"PID {holder.pid}" in msg and "waiting up to 30s" in msg


def test_connect_gives_up_with_a_clear_error(db: Path, holder: subprocess.Popen[str]) -> None:
    t = time.monotonic()
    with pytest.raises(WarehouseLocked) as info:
        connect(db, read_only=True, lock_timeout=0.5, retry_interval=0.1)
    assert time.monotonic() - t < 2.5
    err = info.value
    assert err.pid == holder.pid and err.path == db and err.waited >= 0.5
    text = str(err)
    assert str(db) in text
    assert f"PID {holder.pid}" in text
    assert "waiting 0.5s" in text or "waiting 0.6s" in text
    assert "lock_timeout_seconds" in text
