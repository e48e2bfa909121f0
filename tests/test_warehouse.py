"""Warehouse: migrations, the loader, search folding, locking. Real DuckDB files."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

import warehouse.load as load_module
from baotintuc.model import Article, Failure, ImageRecord
from baotintuc.site import ALL_CATEGORIES
from config import Settings, load_settings
from flows.batches import SegmentLoader
from flows.transform import Parsed
from tests.support import REPO
from warehouse import DUCKDB_ALLOCATOR_CONF, DUCKDB_ALLOCATOR_ENV
from warehouse.db import (
    WarehouseLocked,
    connect,
    migrate,
    migration_files,
    reader,
    refresh_views,
    write,
    writer,
)
from warehouse.load import (
    ARTICLE_COLUMNS,
    FAILURE_COLUMNS,
    content_hash,
    finish_run,
    known_articles,
    load_batch,
    loaded_segments,
    record_urls,
    replace_failures,
    start_run,
    stored_ids,
    to_storage_row,
    unfinished_runs,
)

VN = timezone(timedelta(hours=7))
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=VN)


def parsed(article_id: str = "20240501100000123", **changes: Any) -> Article:
    base = Article(
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


def art(p: Article, fetched_at: datetime = T0) -> Article:
    return replace(p, fetched_at=fetched_at)


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
        "article_urls",
        "archive_segments",
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


def test_article_columns_match_the_ddl(con: duckdb.DuckDBPyConnection) -> None:
    """The model's columns (+ the warehouse's bookkeeping) are exactly the table's."""
    ddl = dict(table(con, "select column_name, data_type from information_schema.columns "
                          "where table_name = 'articles'"))
    alias = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}
    assert ddl == {c: alias.get(t, t) for c, t in ARTICLE_COLUMNS.items()}
    images = {r[0] for r in table(con, "select column_name from information_schema.columns "
                                       "where table_name = 'article_images'")}
    assert {f.name for f in fields(ImageRecord)} <= images
    failures = {r[0] for r in table(con, "select column_name from information_schema.columns "
                                         "where table_name = 'fetch_failures'")}
    assert set(FAILURE_COLUMNS) == failures
    assert {f.name for f in fields(Failure)} <= failures


def load(
    con: duckdb.DuckDBPyConnection, articles: list[Article], run_id: str = "run-1",
    failures: list[Failure] | None = None, **kwargs: Any,
) -> Any:
    return load_batch(con, run_id, articles, failures or [], **kwargs)


def test_same_batch_twice_leaves_identical_rows(con: duckdb.DuckDBPyConnection) -> None:
    batch = [art(parsed()), art(parsed("20240501110000456", title="Bài hai", images=[]))]
    first = load(con, batch, flow_run_id="flow-1")
    assert (first.new, first.updated, first.unchanged, first.images) == (2, 0, 0, 2)
    snap = {
        t: table(con, f"select * from {t} order by all")
        for t in ("articles", "article_images", "categories")
    }

    second = load(con, batch, flow_run_id="flow-1")
    assert (second.new, second.updated, second.unchanged, second.written) == (0, 0, 2, 0)
    for t, rows in snap.items():
        assert table(con, f"select * from {t} order by all") == rows, t
    assert table(con, "select count(*) from article_versions") == [(0,)]

    # A later re-fetch with the same content: fetched_at moves, nothing else.
    later = T0 + timedelta(hours=6)
    third = load(con, [art(parsed(), later)], "run-2", flow_run_id="flow-2")
    assert (third.unchanged, third.written) == (1, 1)
    got = table(
        con,
        "select first_seen_at, fetched_at, last_changed_at, version, flow_run_id "
        "from articles where article_id = '20240501100000123'",
    )
    assert got == [(T0, later, T0, 1, "flow-2")]
    assert table(con, "select count(*) from article_versions") == [(0,)]


def test_changed_content_keeps_previous_version(con: duckdb.DuckDBPyConnection) -> None:
    load(con, [art(parsed())], flow_run_id="flow-1")
    edited = parsed(
        title="Nâng cao hiệu quả công tác dân vận (cập nhật)",
        images=[ImageRecord(0, "https://cdnmedia.baotintuc.vn/c.jpg", "Ảnh mới", None)],
    )
    later = T0 + timedelta(hours=3)
    res = load(con, [art(edited, later)], "run-2", flow_run_id="flow-2")
    assert (res.new, res.updated, res.unchanged, res.images) == (0, 1, 0, 1)

    cur = table(
        con,
        "select title, version, first_seen_at, last_changed_at, fetched_at, content_hash "
        "from articles",
    )
    assert cur == [(edited.title, 2, T0, later, later,
                    content_hash(to_storage_row(art(edited, later))))]
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
    again = load(con, [art(edited, later)], "run-2", flow_run_id="flow-2")
    assert again.unchanged == 1
    assert table(con, "select count(*) from article_versions") == [(1,)]


def test_a_batch_of_stored_and_new_articles_reads_the_stored_ones_only(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """The stored rows are found by their keys first: the new ids of a mixed batch must
    neither hide a stored row nor match one."""
    first = parsed()
    load(con, [art(first), art(parsed("20240501110000456", title="Bài hai", images=[]))])
    later = T0 + timedelta(hours=1)
    batch = [
        art(parsed(title="Nâng cao hiệu quả công tác dân vận (sửa)"), later),
        art(parsed("20240501110000456", title="Bài hai", images=[]), later),
        art(parsed("20240501120000789", title="Bài ba", images=[]), later),
    ]
    res = load(con, batch, "run-2")
    assert (res.new, res.updated, res.unchanged) == (1, 1, 1)
    assert table(con, "select article_id, version from articles order by article_id") == [
        ("20240501100000123", 2), ("20240501110000456", 1), ("20240501120000789", 1)]
    assert table(con, "select article_id, title from article_versions") == [
        ("20240501100000123", first.title)]


def test_reparse_changing_only_derived_fields_is_not_an_edit(
    con: duckdb.DuckDBPyConnection,
) -> None:
    load(con, [art(parsed())])
    reparsed = parsed(body_markdown="# changed", word_count=99, parser_version="baotintuc-v2")
    res = load(con, [art(reparsed)], "run-2")
    assert (res.unchanged, res.written) == (1, 1)
    assert res.changed_fields == {"body_markdown": 1, "word_count": 1, "parser_version": 1}
    assert table(
        con, "select body_markdown, word_count, parser_version, version from articles"
    ) == [("# changed", 99, "baotintuc-v2", 1)]


def test_in_batch_duplicates_are_deduplicated(con: duckdb.DuckDBPyConnection) -> None:
    newer = art(parsed(title="Bản mới"), T0 + timedelta(minutes=10))
    older = art(parsed(title="Bản cũ"), T0)
    res = load(con, [newer, older])
    assert (res.new, res.duplicates) == (1, 1)
    assert table(con, "select title, fetched_at from articles") == [
        ("Bản mới", T0 + timedelta(minutes=10))
    ]
    assert table(con, "select count(*) from article_images") == [(2,)]


def test_older_fetch_is_stale_and_skipped(con: duckdb.DuckDBPyConnection) -> None:
    load(con, [art(parsed(title="Mới"), T0)])
    res = load(con, [art(parsed(title="Cũ"), T0 - timedelta(days=1))], "old")
    assert (res.stale, res.updated) == (1, 0)
    assert table(con, "select title, version from articles") == [("Mới", 1)]


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_discovered_urls_are_recorded_in_batches_that_merge_exactly(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    batch: int
) -> None:
    """``record_urls`` reads ``discovered.jsonl`` a batch of pairs at a time (memory does
    not grow with the run); a pair seen in several batches, in any order, keeps its
    earliest sighting and the way it came in then, and its latest sighting."""
    monkeypatch.setattr(load_module, "URL_BATCH", batch)
    a, b = ("20240501100000123", "https://baotintuc.vn/a-20240501100000123.htm"), (
        "20240501100000124", "https://baotintuc.vn/b-20240501100000124.htm")
    seen = [(a, "listing:y:2", 5), (b, "rss:x", 1), (a, "rss:x", 2), (b, "listing:z:1", 9),
            (a, "sitemap:s", 7)]
    discovered = tmp_path / "discovered.jsonl"
    discovered.write_text("".join(
        json.dumps({"article_id": aid, "url": url, "via": via, "outcome": "request",
                    "at": (T0 + timedelta(minutes=m)).isoformat()}) + "\n"
        for (aid, url), via, m in seen) + "not json\n" + '{"torn', "utf-8")
    assert record_urls(con, "run-1", discovered) >= 2
    rows = "select article_id, via, first_seen_at, last_seen_at, run_id from article_urls"
    assert table(con, rows + " order by 1") == [
        (a[0], "rss:x", T0 + timedelta(minutes=2), T0 + timedelta(minutes=7), "run-1"),
        (b[0], "rss:x", T0 + timedelta(minutes=1), T0 + timedelta(minutes=9), "run-1"),
    ]
    # A later run that sees a URL again moves only its last sighting (and the run).
    later = tmp_path / "later.jsonl"
    later.write_text(json.dumps({"article_id": a[0], "url": a[1], "via": "rss:x",
                                 "at": (T0 + timedelta(days=1)).isoformat()}) + "\n", "utf-8")
    assert record_urls(con, "run-2", later) == 1
    assert table(con, rows + " where article_id = '20240501100000123'") == [
        (a[0], "rss:x", T0 + timedelta(minutes=2), T0 + timedelta(days=1), "run-2")]


def test_failures_segments_and_runs_recorded(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    start_run(con, "run-1", flow_run_id="flow-1", base_url="http://x", mode="all",
              params={"max_pages": 2}, archive_prefix="run-1", started_at=T0)
    assert table(con, "select status, archive_prefix from crawl_runs") == [("running", "run-1")]
    assert unfinished_runs(con) == [("run-1", "run-1")]
    spider = [
        Failure("https://baotintuc.vn/a-20240501100000999.htm", "article", "http_404", 404,
                "Not Found", T0 + timedelta(seconds=1), "20240501100000999"),
        Failure("https://baotintuc.vn/x.rss", "feed", "timeout", None, "", T0),
    ]
    parse_reject = Failure("https://baotintuc.vn/b-20240501100000998.htm", "parse",
                           "parse_error:no_title", 200, "", T0, "20240501100000998")
    res = load(con, [art(parsed())], failures=[parse_reject], flow_run_id="flow-1",
               segments=[("/raw/run-1-00001.warc.gz", 2)])
    assert res.failures == 1
    assert loaded_segments(con) == {"/raw/run-1-00001.warc.gz"}
    assert replace_failures(con, "run-1", spider, flow_run_id="flow-1") == 2
    assert replace_failures(con, "run-1", spider, flow_run_id="flow-1") == 2  # idempotent
    got = table(
        con,
        'select run_id, url, stage, reason, status, "at", flow_run_id, article_id '
        "from fetch_failures order by stage",
    )
    assert got == [
        ("run-1", spider[0].url, "article", "http_404", 404, T0 + timedelta(seconds=1),
         "flow-1", "20240501100000999"),
        ("run-1", spider[1].url, "feed", "timeout", None, T0, "flow-1", None),
        ("run-1", parse_reject.url, "parse", "parse_error:no_title", 200, T0, "flow-1",
         "20240501100000998"),
    ]
    discovered = tmp_path / "discovered.jsonl"
    lines = [
        {"article_id": "20240501100000123", "url": "https://baotintuc.vn/a-20240501100000123.htm",
         "via": "rss:x", "outcome": "request", "at": T0.isoformat()},
        {"article_id": "20240501100000123", "url": "https://baotintuc.vn/b-20240501100000123.htm",
         "via": "listing:y:1", "outcome": "alias", "at": T0.isoformat()},
    ]
    discovered.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"torn', "utf-8")
    assert record_urls(con, "run-1", discovered) == 2
    assert record_urls(con, "run-1", discovered) == 2  # seen again: no duplicate rows
    assert table(con, "select url, via, first_seen_at from article_urls order by url") == [
        (lines[0]["url"], "rss:x", T0), (lines[1]["url"], "listing:y:1", T0)]
    finish_run(con, "run-1", status="completed", finished_at=T0 + timedelta(minutes=6),
               quality={"title": {"fill_rate": 1.0, "filled": 1, "total": 1, "threshold": 0.9,
                                  "passed": True}, "sapo": 0.5},
               discovered=3, stored=1, skipped=0, failed=2, lost=0, new=1,
               stats={"responses": 6})
    runs = table(
        con,
        "select run_id, flow_run_id, status, mode, discovered, stored, failed, lost, "
        "duration_s, params->>'$.max_pages', stats->>'$.responses' from crawl_runs",
    )
    assert runs == [("run-1", "flow-1", "completed", "all", 3, 1, 2, 0, 360.0, "2", "6")]
    assert unfinished_runs(con) == []
    assert table(con, "select field, fill_rate, passed from run_quality order by field") == [
        ("sapo", 0.5, None),
        ("title", 1.0, True),
    ]


def test_categories_seeded_and_updated_from_pages(con: duckdb.DuckDBPyConnection) -> None:
    assert table(con, "select slug, name, parent_id from categories where id = 321") == [
        ("chinh-tri", "Chính trị", 472)
    ]
    load(con, [art(parsed(category="Chuyên mục lạ", category_id=9999, parent_category_id=472))])
    assert table(con, "select slug, name, parent_id, source from categories where id = 9999") == [
        (None, "Chuyên mục lạ", 472, "page")
    ]


def test_protect_fields_keeps_stored_values(con: duckdb.DuckDBPyConnection) -> None:
    load(con, [art(parsed())])
    drifted = parsed(title="", body_text="", body_markdown="", word_count=0)
    later = T0 + timedelta(hours=1)
    res = load(con, [art(drifted, later)], "r2", protect_fields=True)
    assert res.protected_fields == {"title": 1, "body_text": 1}
    assert res.protected == 2
    assert res.unchanged == 1  # nothing else changed once the stored values are kept
    assert table(con, "select title, body_text, body_markdown, word_count from articles") == [
        (parsed().title, parsed().body_text, parsed().body_markdown, 8)
    ]
    # Without protection the empty title is stored (and the change versioned).
    res = load(con, [art(drifted, later + timedelta(hours=1))], "r3")
    assert res.updated == 1
    assert table(con, "select title from articles") == [("",)]


def test_timestamptz_round_trips_the_instant(db: Path) -> None:
    with writer(db) as c:
        load(c, [art(parsed())])
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


def test_known_articles(con: duckdb.DuckDBPyConnection) -> None:
    load(con, [art(parsed())])
    k = known_articles(con)["20240501100000123"]
    assert (k.fetched_at, k.published_at, k.url) == (T0, parsed().published_at, parsed().url)


def test_known_articles_born_after_keeps_every_young_one(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """``born_after`` reads only what may be young (a run's re-check candidates), never
    fewer: the ID17 day is compared a day early, as it is the Vietnam day."""
    born_after = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    young = {  # ID17 (Vietnam time) and page date after born_after
        "20261206090000123": datetime(2026, 12, 6, 9, 0, tzinfo=VN),
        "20261204200000123": datetime(2026, 12, 4, 20, 0, tzinfo=VN),  # 13:00 UTC
    }
    old = {"20240501100000123": datetime(2024, 5, 1, 10, 0, tzinfo=VN)}
    load(con, [art(parsed(aid, published_at=when)) for aid, when in {**young, **old}.items()])
    assert set(known_articles(con)) == {*young, *old}
    some = known_articles(con, born_after=born_after)
    assert set(young) <= set(some) and not set(old) & set(some)
    assert sorted(stored_ids(con)) == sorted({*young, *old})


def test_naive_datetime_and_missing_fetch_time_are_rejected(
    con: duckdb.DuckDBPyConnection,
) -> None:
    with pytest.raises(ValueError, match="naive"):
        load(con, [art(parsed(published_at=datetime(2024, 5, 1, 10, 0)))])
    with pytest.raises(ValueError, match="fetched_at"):
        load(con, [parsed()])
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
        load_batch(c, "run-1", [art(parsed(i, title=t)) for i, t in titles.items()])

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


def _capped(limit: str) -> Settings:
    base = load_settings()
    return base.model_copy(update={
        "warehouse": base.warehouse.model_copy(update={"writer_memory_limit": limit}),
    })


def _row_groups(db: Path, name: str) -> list[int]:
    with reader(db) as c:
        return [n for (n,) in c.execute(
            f"select sum(count)::int from pragma_storage_info('{name}') "
            "where column_path = '[0]' group by row_group_id order by row_group_id").fetchall()]


@pytest.mark.parametrize(("size", "groups"), [(2048, [2000, 2000]), (0, [4000])])
def test_the_loader_writes_row_groups_of_the_configured_size(
    db: Path, size: int, groups: list[int]
) -> None:
    """``warehouse.row_group_size`` reaches DuckDB (an ``ATTACH`` option it does not keep
    in the file). At a checkpoint DuckDB merges adjacent row groups that fit in one, so
    with its default size (122,880) loads of 200 articles are merged into groups of
    4,000, 8,000, ... rows, each merge rewriting them all; with 2,048 nothing is merged."""
    base = load_settings()
    settings = base.model_copy(update={
        "warehouse": base.warehouse.model_copy(update={"row_group_size": size}),
    })
    loader = SegmentLoader(db, settings, since=None, flow_run_id=None)
    for s in range(20):
        arts = [art(parsed(f"202405011{s:04d}{i:04d}")) for i in range(200)]
        assert loader.load(Path(f"seg-{s:05d}.warc.gz"), "r1",
                           parsed=Parsed(articles=arts, pages=len(arts))).new == 200
    assert _row_groups(db, "articles") == groups
    with reader(db) as c:  # the file reads the same in a plain session
        assert table(c, "select count(*), count(distinct article_id) from articles") == [
            (4000, 4000)]


@pytest.mark.parametrize(("bulk", "groups"), [(False, [2048, 2048, 904]), (True, [5000])])
def test_a_bulk_writer_keeps_duckdbs_own_row_groups(
    db: Path, bulk: bool, groups: list[int]
) -> None:
    """The search index is written 1,000 articles a transaction (``bulk``): its postings
    keep DuckDB's default row groups, as deletes across 2,048-row groups of 20 M postings
    ran out of the index's memory cap."""
    write(db, load_settings().warehouse,
          lambda c: c.execute("create table t as select range as i from range(5000)"),
          what="a test table", bulk=bulk)
    assert _row_groups(db, "t") == groups


def test_a_load_over_the_writer_memory_cap_is_done_again_without_it(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A segment that needs more than ``warehouse.writer_memory_limit`` is rolled back and
    loaded again uncapped, with a warning: a low cap bounds the usual peak, never a run."""
    arts = [art(parsed(f"2024050110000{i:04d}", title=f"Bài {i}")) for i in range(30)]
    loader = SegmentLoader(db, _capped("1MB"), since=None, flow_run_id=None)
    with caplog.at_level(logging.WARNING, logger="flows.batches"):
        result = loader.load(Path("seg-00001.warc.gz"), "r1",
                             parsed=Parsed(articles=arts, pages=len(arts)))
    assert (result.new, result.written) == (30, 30)
    assert any("writer_memory_limit = 1MB" in r.getMessage() for r in caplog.records)
    with reader(db) as c:
        assert table(c, "select count(*) from articles") == [(30,)]
        assert table(c, "select path, pages from archive_segments") == [("seg-00001.warc.gz", 30)]
    # Under a cap it fits in, the same segment again is one quiet, capped pass.
    caplog.clear()
    again = SegmentLoader(db, _capped("64MB"), since=None, flow_run_id=None)
    with caplog.at_level(logging.WARNING, logger="flows.batches"):
        assert again.load(Path("seg-00001.warc.gz"), "r1",
                          parsed=Parsed(articles=arts, pages=len(arts))).unchanged == 30
    assert not caplog.records


def test_a_checkpoint_over_the_writer_memory_cap_is_done_again_without_it(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint out of memory is fatal to DuckDB's instance; the committed rows are in
    its write-ahead log, and the writer opens the file again uncapped to checkpoint them."""
    with writer(db):
        pass
    with caplog.at_level(logging.WARNING, logger="warehouse.db"), \
            writer(db, _capped("2MB").warehouse) as c:
        # A write that fits (made uncapped here) whose checkpoint does not.
        c.execute("reset memory_limit")
        c.execute("create table big (i bigint primary key, s varchar)")
        c.execute("insert into big select range, repeat('x', 200) || range from range(1000)")
        c.execute("set memory_limit = '2MB'")
    assert any("checkpoint of" in r.getMessage() for r in caplog.records)
    with reader(db) as c:
        assert table(c, "select count(*) from big") == [(1000,)]
    assert (db.parent / (db.name + ".wal")).exists() is False


_FIRST_DUCKDB_IMPORT = textwrap.dedent("""
    import importlib.abc, os, sys

    class Watch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "duckdb" and "seen" not in globals():
                globals()["seen"] = os.environ.get("DUCKDB_JE_MALLOC_CONF")
            return None

    sys.meta_path.insert(0, Watch())
    {load}
    print(repr(globals().get("seen", "never imported")))
""")


@pytest.mark.parametrize("load", [
    "import flows.reextract",
    "import flows.quality",
    "from prefect.utilities.importtools import import_object; "
    "import_object('flows.ingest:ingest')",
    "import warehouse.search",
])
def test_duckdb_loads_with_the_warehouses_allocator_options(load: str) -> None:
    """DuckDB reads its allocator's options once, when it is first imported: every way
    the pipeline starts (the CLI, a deployment's entrypoint, the warehouse alone) sets
    them before that."""
    env = {k: v for k, v in os.environ.items() if k != DUCKDB_ALLOCATOR_ENV}
    out = subprocess.run([sys.executable, "-c", _FIRST_DUCKDB_IMPORT.format(load=load)],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == repr(DUCKDB_ALLOCATOR_CONF)


def test_duckdb_reads_the_allocator_option_variable() -> None:
    """The variable is DuckDB's own (its jemalloc's): an option it does not know stops it,
    so a DuckDB that stopped reading the variable would fail this test, not go unnoticed."""
    env = {**os.environ, DUCKDB_ALLOCATOR_ENV: "abort_conf:true,no_such_option:1"}
    out = subprocess.run([sys.executable, "-c", "import warehouse.db"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "no_such_option" in out.stderr
