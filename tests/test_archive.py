"""WARC writing and reading: round trip, atomic publication, truncated archives."""

from __future__ import annotations

import gzip
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from warcio.archiveiterator import ArchiveIterator  # noqa: E402

from crawler.archive import WarcWriter, iter_pages  # noqa: E402
from crawler.items import RawArticle, RawPage  # noqa: E402

LISTING = REPO / "tests/resources/listing/listing_phap-luat-475ct0_2025-07-13T2047.html.gz"
T0 = datetime(2025, 7, 13, 14, 0, 1, 123456, tzinfo=UTC)


def pages(n: int = 3) -> list[RawPage]:
    body = gzip.decompress(LISTING.read_bytes())  # a real 160 KB page of Vietnamese HTML
    return [
        RawPage(
            url=f"https://baotintuc.vn/phap-luat/bai-{i}-2025071320000000{i}.htm",
            fetch_url=f"http://127.0.0.1:8765/phap-luat/bai-{i}-2025071320000000{i}.htm",
            status=200,
            headers={"Content-Type": "text/html; charset=utf-8", "Etag": f'"e{i}"'},
            body=body + str(i).encode(),
            fetched_at=T0 + timedelta(seconds=i),
        )
        for i in range(n)
    ]


def write(path: Path, items: list[RawPage]) -> None:
    with WarcWriter(path, info={"software": "test"}) as warc:
        for page in items:
            warc.write_page(page)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "raw" / "2025-07-13" / "run.warc.gz"
    written = pages()
    write(path, written)
    read = list(iter_pages(path))
    assert [p.url for p in read] == [p.url for p in written]
    for got, want in zip(read, written, strict=True):
        assert got.fetch_url == want.fetch_url
        assert got.status == 200
        assert got.body == want.body
        assert got.fetched_at == want.fetched_at
        assert got.headers["Content-Type"] == "text/html; charset=utf-8"
        assert got.headers["Etag"] == want.headers["Etag"]
        assert got.headers["Content-Length"] == str(len(want.body))


def test_records_are_standard_warc(tmp_path: Path) -> None:
    path = tmp_path / "run.warc.gz"
    write(path, pages(2))
    with open(path, "rb") as fh:
        records = list(_summaries(fh))
    assert records[0][0] == "warcinfo"
    assert [r[0] for r in records[1:]] == ["response", "response"]
    rtype, uri, fetch, date, status = records[1]
    assert uri == "https://baotintuc.vn/phap-luat/bai-0-20250713200000000.htm"
    assert fetch == "http://127.0.0.1:8765/phap-luat/bai-0-20250713200000000.htm"
    assert date == "2025-07-13T14:00:01.123456Z"
    assert status == "200"
    # gzip per record: the file is a sequence of gzip members, each one a record.
    data = path.read_bytes()
    assert data.count(b"\x1f\x8b\x08") >= 3


def _summaries(fh: object) -> list[tuple[str, str, str, str, str]]:
    out = []
    for rec in ArchiveIterator(fh):
        h = rec.rec_headers
        status = rec.http_headers.get_statuscode() if rec.http_headers else ""
        out.append(
            (
                rec.rec_type,
                h.get_header("WARC-Target-URI"),
                h.get_header("WARC-X-Fetch-URI"),
                h.get_header("WARC-Date"),
                status,
            )
        )
    return out


def test_decoded_body_headers_are_consistent(tmp_path: Path) -> None:
    """Scrapy hands over decoded bodies: encoding headers must not claim otherwise."""
    path = tmp_path / "run.warc.gz"
    body = "<html><body>Xin chào</body></html>".encode()
    item = RawArticle(
        article_id="20250713200000001",
        url="https://baotintuc.vn/a/b-20250713200000001.htm",
        fetch_url="http://127.0.0.1:1/a/b-20250713200000001.htm",
        status=200,
        headers=[
            ("Content-Type", "text/html"),
            ("Content-Encoding", "gzip"),
            ("Content-Length", "17"),
            ("Transfer-Encoding", "chunked"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ],
        body=body,
        fetched_at=T0,
    )
    with WarcWriter(path) as warc:
        warc.write_page(item.to_raw_page())
    (page,) = iter_pages(path)
    assert page.body == body
    assert "Content-Encoding" not in page.headers and "Transfer-Encoding" not in page.headers
    assert page.headers["X-Original-Content-Encoding"] == "gzip"
    assert page.headers["Content-Length"] == str(len(body))
    assert page.headers["Set-Cookie"] == "a=1, b=2"


def test_atomic_publication(tmp_path: Path) -> None:
    path = tmp_path / "run.warc.gz"
    part = tmp_path / "run.warc.gz.part"
    warc = WarcWriter(path)
    first, second = pages(2)
    warc.write_page(first)
    # While the crawl runs only the .part file exists, and it is readable so far.
    assert part.exists() and not path.exists()
    assert [p.url for p in iter_pages(part)] == [first.url]
    warc.write_page(second)
    assert warc.close() == path
    assert path.exists() and not part.exists()
    assert len(list(iter_pages(path))) == 2


def test_failed_crawl_does_not_publish(tmp_path: Path) -> None:
    path = tmp_path / "run.warc.gz"
    with pytest.raises(RuntimeError), WarcWriter(path) as warc:
        warc.write_page(pages(1)[0])
        raise RuntimeError("killed")
    assert not path.exists()
    assert len(list(iter_pages(path.with_name("run.warc.gz.part")))) == 1


def test_empty_run_gives_a_valid_empty_archive(tmp_path: Path) -> None:
    path = tmp_path / "run.warc.gz"
    WarcWriter(path).close()
    assert path.exists()
    assert list(iter_pages(path)) == []


@pytest.mark.parametrize("keep", [0.99, 0.9, 0.75, 0.5, 0.3])
def test_truncated_archive_yields_complete_records(
    tmp_path: Path, keep: float, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.warc.gz"
    written = pages(3)
    write(path, written)
    data = path.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: int(len(data) * keep)])
    with caplog.at_level(logging.WARNING, logger="crawler.archive"):
        read = list(iter_pages(cut))
    assert len(read) < 3
    for got, want in zip(read, written, strict=False):
        assert got.body == want.body  # every page yielded is complete
    assert "truncated" in caplog.text or "unreadable" in caplog.text


@pytest.mark.parametrize("attempt", range(3))  # record IDs differ: other cut points
def test_every_cut_is_tolerated(tmp_path: Path, attempt: int) -> None:
    """Cut the archive at every byte: only whole, identical pages ever come back."""
    path = tmp_path / "run.warc.gz"
    written = [
        RawPage(p.url, p.fetch_url, p.status, p.headers, p.body[:3000], p.fetched_at)
        for p in pages(2)
    ]
    write(path, written)
    data = path.read_bytes()
    counts = []
    cut = tmp_path / "cut.warc.gz"
    for size in range(len(data) + 1):
        cut.write_bytes(data[:size])
        got = list(iter_pages(cut))
        for g, w in zip(got, written, strict=False):
            assert (g.url, g.fetch_url, g.status, g.body, g.fetched_at) == (
                w.url, w.fetch_url, w.status, w.body, w.fetched_at
            ), size
            assert g.headers["Etag"] == w.headers["Etag"], size
        counts.append(len(got))
    assert counts == sorted(counts)  # never fewer pages from a longer prefix
    assert counts[-1] == 2


def test_archives_are_read_with_isa_l_when_it_is_installed() -> None:
    """warcio gunzips through ISA-L (several times zlib's speed; the cut tests above run
    through it)."""
    pytest.importorskip("isal", reason="python-isal is not installed")
    from warcio.bufferedreaders import BufferedReader

    from crawler.archive import _isal_gunzip

    assert BufferedReader.DECOMPRESSORS["gzip"] is _isal_gunzip
    data = gzip.compress(b"WARC/1.0\r\n" * 1000)
    assert _isal_gunzip().decompress(data) == b"WARC/1.0\r\n" * 1000
