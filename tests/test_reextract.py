"""``baotintuc reextract``: re-parse the WARC archive offline; idempotent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support import copy_of, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_reextract_repairs_stale_rows_and_is_idempotent(
    tmp_path: Path, mirror_server: Any, ingested: dict[str, Any]
) -> None:
    db = copy_of(ingested, tmp_path)
    with duckdb.connect(str(db)) as con:
        total = con.execute("select count(*) from articles").fetchone()[0]
        # Rows as an older parser left them: a wrong title, an old version label, and one
        # article whose load was lost (archived but not stored).
        con.execute("""update articles set title = title || ' (cũ)', parser_version = 'old-0'
                       where article_id in (select article_id from articles order by 1 limit 3)""")
        lost = con.execute("select article_id from articles order by 1 desc limit 1").fetchone()[0]
        lost_images = con.execute(
            "select position, url, caption, credit from article_images where article_id = ? "
            "order by position", [lost]).fetchall()
        con.execute("delete from article_images where article_id = ?", [lost])
        con.execute("delete from articles where article_id = ?", [lost])
        stale = con.execute("select title from articles order by article_id limit 3").fetchall()
    before_hits = len(mirror_server.requests)

    # No network: the mirror's request log must not move.
    first = run_cli(tmp_path, "reextract", "--db", str(db))
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(mirror_server.requests) == before_hits
    m = re.search(r"(\d+) rows changed, (\d+) unchanged, (\d+) rejected, (\d+) added", first.stdout)
    assert m, first.stdout
    assert (int(m[1]), int(m[3]), int(m[4])) == (3, 0, 1)
    assert int(m[2]) == total - 4
    assert "title: 3" in first.stdout and "parser_version: 3" in first.stdout

    with duckdb.connect(str(db), read_only=True) as con:
        titles = con.execute(
            "select title from articles order by article_id limit 3").fetchall()
        assert [t[0] + " (cũ)" for t in titles] == [t[0] for t in stale]
        assert con.execute("select count(*) from articles").fetchone()[0] == total
        assert con.execute(
            "select position, url, caption, credit from article_images where article_id = ? "
            "order by position", [lost]).fetchall() == lost_images
        # The tampering did not touch content_hash, so the loader sees no edit of content.
        assert con.execute("select count(*) from article_versions").fetchone()[0] == 0

    second = run_cli(tmp_path, "reextract", "--db", str(db))
    assert second.returncode == 0
    assert "0 rows changed" in second.stdout and "0 added" in second.stdout
    assert "fields changed: none" in second.stdout


def _archives(tmp_path: Path) -> list[Path]:
    """Three small archives: x fetched twice (newer in b), y twice at the same instant,
    z once, and a listing page (not an article)."""
    from datetime import UTC, datetime, timedelta

    from crawler.archive import WarcWriter
    from crawler.items import RawPage

    t0 = datetime(2025, 7, 13, 14, 0, tzinfo=UTC)

    def page(path: str, at: datetime) -> RawPage:
        return RawPage(url=f"https://baotintuc.vn{path}", fetch_url=f"http://127.0.0.1{path}",
                       status=200, headers={"Content-Type": "text/html"},
                       body=b"<html>" + path.encode() + b"</html>", fetched_at=at)

    x, y, z = (f"/thoi-su/bai-{c}-2025071320000000{i}.htm" for i, c in enumerate("xyz"))
    archives = {
        "a": [page(x, t0), page(y, t0)],
        "b": [page(x, t0 + timedelta(hours=1)), page(y, t0), page("/thoi-su-128ct0.htm", t0)],
        "c": [page(z, t0)],
    }
    paths = []
    for name, items in archives.items():
        paths.append(tmp_path / f"{name}.warc.gz")
        with WarcWriter(paths[-1], info={"software": "test"}) as warc:
            for p in items:
                warc.write_page(p)
    return paths


def test_the_newest_fetch_of_each_article_is_the_one_re_parsed(tmp_path: Path) -> None:
    """Across archives, the newest fetch wins; of two at the same instant, the later
    archive's; a page that is not an article counts as read but is never parsed. The
    fetches come from a scan (an archive without a record) or from the record the loader
    wrote (parse_archive's list): both give the same answer."""
    from config import get_settings
    from flows.reextract import newest_records, recorded_archives, scan_fetches
    from flows.transform import parse_archive
    from warehouse.db import transaction, writer
    from warehouse.load import Manifest, record_manifests

    paths = _archives(tmp_path)
    settings = get_settings()
    scanned = scan_fetches([str(p) for p in paths])
    parsed = [parse_archive(str(p)) for p in paths]
    assert [(x.pages, x.fetches) for x in parsed] == scanned
    assert [len(f) for _, f in scanned] == [2, 2, 1]

    for name, lists in (("scanned", scanned), ("loaded", [(x.pages, x.fetches or [])
                                                          for x in parsed])):
        db = tmp_path / f"{name}.duckdb"
        with writer(db, settings.warehouse) as con, transaction(con):
            record_manifests(con, [Manifest(str(p), p.stat().st_size, n, f)
                                   for p, (n, f) in zip(paths, lists, strict=True)])
        assert recorded_archives(db, settings, paths) == set(paths)
        pages, wanted = newest_records(db, settings, paths)
        assert pages == 6
        assert wanted == {paths[1]: [0, 1], paths[2]: [0]}
        # In the other time order, the same instant goes to the other archive.
        assert newest_records(db, settings, [paths[1], paths[0], paths[2]])[1] == {
            paths[1]: [0], paths[0]: [1], paths[2]: [0]}

    # A record is trusted only for a file of the size it had: a rewritten one is scanned.
    with paths[2].open("ab") as fh:
        fh.write(b"\0")
    assert recorded_archives(tmp_path / "loaded.duckdb", settings, paths) == set(paths[:2])


def test_reextract_reads_recorded_archives_once_and_records_the_others(
    tmp_path: Path, mirror_server: Any, ingested: dict[str, Any]
) -> None:
    """A crawl records where every fetch of its segments is, so reextract scans none;
    a warehouse without the records (an older version's) is scanned once, recorded, and
    gives the same result; the next run scans none again."""
    db = copy_of(ingested, tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        segments, pages = con.execute(
            "select count(*), sum(pages) from archive_segments").fetchone()
        assert segments >= 2
        assert con.execute("select count(*), sum(pages) from archive_manifests").fetchone() == (
            segments, pages)
        # Every stored article has its fetch recorded, where its archive has it.
        assert con.execute("select count(*) from articles anti join archive_fetches "
                           "using (article_id)").fetchone()[0] == 0

    def counts(out: str) -> tuple[int, ...]:
        m = re.search(r"\((\d+) fetches in (\d+) WARC files, (\d+) scanned first\): "
                      r"(\d+) rows changed, (\d+) unchanged", out)
        assert m, out
        return tuple(int(g) for g in m.groups())

    recorded = run_cli(tmp_path, "reextract", "--db", str(db))
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    fetches, files, scanned, changed, unchanged = counts(recorded.stdout)
    assert (files, scanned, changed) == (segments, 0, 0) and fetches == pages

    with duckdb.connect(str(db)) as con:
        before = con.execute("select * from archive_fetches order by all").fetchall()
        con.execute("delete from archive_fetches")
        con.execute("delete from archive_manifests")
    rescanned = run_cli(tmp_path, "reextract", "--db", str(db))
    assert rescanned.returncode == 0, rescanned.stderr[-2000:]
    assert counts(rescanned.stdout) == (fetches, files, segments, 0, unchanged)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select * from archive_fetches order by all").fetchall() == before

    again = run_cli(tmp_path, "reextract", "--db", str(db))
    assert counts(again.stdout) == (fetches, files, 0, 0, unchanged)
