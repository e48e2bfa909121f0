"""The spider's callbacks on real and hand-written responses (no network)."""

from __future__ import annotations

import gc
import gzip
import sys
import weakref
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scrapy import Request  # noqa: E402
from scrapy.exceptions import (  # noqa: E402
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import HtmlResponse, Response, TextResponse, XmlResponse  # noqa: E402
from scrapy.settings import Settings  # noqa: E402
from scrapy.spidermiddlewares.httperror import HttpError  # noqa: E402
from scrapy.utils.test import get_crawler  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402

from baotintuc.model import Failure as FetchFailure  # noqa: E402
from baotintuc.urls import article_id  # noqa: E402
from config import load_settings  # noqa: E402
from crawler.items import Discovery, RawArticle  # noqa: E402
from crawler.middlewares import (  # noqa: E402
    BackoffRetryMiddleware,
    RequestRejected,
    retry_after_seconds,
)
from crawler.request import REQUEST_ENV, CrawlRequest  # noqa: E402
from crawler.spiders.baotintuc import (  # noqa: E402
    LISTING_PAGES_KEPT,
    BaotintucSpider,
    classify_failure,
)

BASE = "http://127.0.0.1:8765"
LISTING = REPO / "tests/resources/listing/listing_phap-luat-475ct0_2025-07-13T2047.html.gz"
LISTING_URL = f"{BASE}/phap-luat-475ct0.htm"
# The 20 items of the main list and the 4 of the top block, as printed on the page.
MAIN_IDS = [
    "20250713191701431", "20250713181930566", "20250713103406962", "20250712222012046",
    "20250712172356620", "20250712151305276", "20250712143006367", "20250712124713292",
    "20250712123032118", "20250712100502617", "20250712093817422", "20250711215257577",
    "20250711210242081", "20250711193936129", "20250711183753778", "20250711165749458",
    "20250711154733171", "20250711140623717", "20250711113840250", "20250711113444917",
]  # fmt: skip
TOP_IDS = ["20250713172223794", "20250712205905640", "20250712172851049", "20250711214655686"]

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Pháp luật - baotintuc.vn</title>
<item><title>Bắt giữ vụ buôn lậu</title>
  <link>https://baotintuc.vn/phap-luat/bat-giu-vu-buon-lau-thuoc-la-so-luong-lon-20250712205905640.htm</link>
  <guid>https://baotintuc.vn/phap-luat/bat-giu-vu-buon-lau-thuoc-la-so-luong-lon-20250712205905640.htm</guid>
  <description><![CDATA[<a href="https://baotintuc.vn/x.htm"><img src="https://cdnthumb.baotintuc.vn/a.jpg"></a>Sapo]]></description>
  <pubDate>Sat, 12 Jul 2025 21:11:00 +0700</pubDate></item>
<item><title>Same, with tracking</title>
  <link>https://baotintuc.vn/phap-luat/bat-giu-vu-buon-lau-thuoc-la-so-luong-lon-20250712205905640.htm?utm_source=rss</link></item>
<item><title>Same, over http</title>
  <link>http://baotintuc.vn/phap-luat/bat-giu-vu-buon-lau-thuoc-la-so-luong-lon-20250712205905640.htm</link></item>
<item><title>Print view</title><link>https://baotintuc.vn/in-bai-n20250713000000001.htm</link></item>
<item><title>Video</title><link>https://baotintuc.vn/video/clip-hay-v20250713080000002.htm</link></item>
<item><title>Offsite</title><link>https://example.com/phap-luat/tin-khac-20250713090000003.htm</link></item>
<item><title>Known</title><link>https://baotintuc.vn/phap-luat/da-co-20250713100000004.htm</link></item>
<item><title>Old</title><link>https://baotintuc.vn/phap-luat/tin-cu-20250701100000005.htm</link></item>
</channel></rss>
"""  # noqa: E501


def make_request(
    tmp_path: Path,
    *,
    max_pages: int | None = 1,
    since: str | None = None,
    skip_ids: Path | None = None,
    feeds: tuple[str, ...] = ("tin-moi-nhat",),
    mode: str = "all",
    categories: list[str] | None = None,
    discover_feed_index: bool = True,
    max_articles: int | None = 0,
    frontier: Path | None = None,
) -> CrawlRequest:
    req = CrawlRequest.resolve(
        load_settings(),
        run_id="test-run",
        mode=mode,
        base_url=BASE,
        since=datetime.fromisoformat(since).date() if since else None,
        max_pages=max_pages,
        categories=categories,
        max_articles=max_articles,
        run_dir=tmp_path / "run",
        archive_dir=tmp_path / "raw",
        skip_ids_file=skip_ids,
        frontier_file=frontier,
    )
    return req.model_copy(update={"feeds": feeds, "discover_feed_index": discover_feed_index})


def make_spider(tmp_path: Path, **args: Any) -> BaotintucSpider:
    crawler = get_crawler(BaotintucSpider, {})
    return BaotintucSpider.from_crawler(crawler, request=make_request(tmp_path, **args))


def listing_response(page: int = 1) -> HtmlResponse:
    req = Request(
        LISTING_URL, meta={"stage": "listing", "category": "phap-luat-475ct0", "page": page}
    )
    return HtmlResponse(LISTING_URL, body=gzip.decompress(LISTING.read_bytes()), request=req)


def split(out: list[Any]) -> tuple[list[Request], list[Discovery]]:
    return (
        [o for o in out if isinstance(o, Request)],
        [o for o in out if isinstance(o, Discovery)],
    )


def test_listing_gives_main_and_top_items_once(tmp_path: Path) -> None:
    spider = make_spider(tmp_path, max_pages=3)
    requests, found = split(list(spider.parse_listing(listing_response())))
    articles = [r for r in requests if r.meta["stage"] == "article"]
    assert sorted(article_id(r.url) or "" for r in articles) == sorted(MAIN_IDS + TOP_IDS)
    assert all(r.url.startswith(BASE + "/") for r in articles)
    assert all(r.meta["dont_cache"] and r.errback == spider.on_error for r in articles)
    assert articles[0].url == (
        f"{BASE}/an-ninh-trat-tu/tam-giu-doi-tuong-no-sung-lam-bi-thuong-trung-ta-cong-an-"
        "xa-dong-giang-lam-dong-20250713172223794.htm"
    )
    assert [d.article_id for d in found] == [article_id(r.url) for r in articles]
    assert found[0].url.startswith("https://baotintuc.vn/an-ninh-trat-tu/")
    assert {d.via for d in found} == {"listing:phap-luat-475ct0:1"}
    # The same page again (another category listing the same articles): nothing new.
    again = [r for r in spider.parse_listing(listing_response()) if isinstance(r, Request)]
    assert all(r.meta["stage"] == "listing" for r in again) and len(again) <= 1


def test_listing_page_is_freed_when_its_callback_ends(tmp_path: Path) -> None:
    """The page and its parsed tree die with the callback (reference counting), not at
    some later pass of the cycle collector: at the end of a fast backfill listing pages
    arrive eight at a time, and trees left to the collector piled up (+80 MB at 100k)."""
    spider = make_spider(tmp_path, max_pages=3)
    response = listing_response()
    alive = weakref.ref(response)
    gc.disable()
    try:
        out = list(spider.parse_listing(response))
        del response
        assert len(out) > 20 and alive() is None
    finally:
        gc.enable()


def test_listing_next_page(tmp_path: Path) -> None:
    spider = make_spider(tmp_path, max_pages=2)
    requests, _ = split(list(spider.parse_listing(listing_response())))
    pages = [r for r in requests if r.meta["stage"] == "listing"]
    assert [r.url for r in pages] == [f"{BASE}/phap-luat-475ct0/trang-2.htm"]
    assert pages[0].meta["page"] == 2
    assert pages[0].headers.get("Cache-Control") == b"max-age=0"  # revalidate via the cache
    assert "dont_cache" not in pages[0].meta
    # max_pages reached: no further page.
    spider = make_spider(tmp_path, max_pages=1)
    assert not [r for r in spider.parse_listing(listing_response()) if _is_listing(r)]


def test_next_page_from_trang_pattern_without_pagination_markup(tmp_path: Path) -> None:
    spider = make_spider(tmp_path, max_pages=5)
    body = gzip.decompress(LISTING.read_bytes()).replace(b"list-pagination", b"no-pagination")
    url = f"{BASE}/phap-luat-475ct0/trang-3.htm"
    req = Request(url, meta={"stage": "listing", "category": "phap-luat-475ct0", "page": 3})
    out = list(spider.parse_listing(HtmlResponse(url, body=body, request=req)))
    assert [r.url for r in out if _is_listing(r)] == [f"{BASE}/phap-luat-475ct0/trang-4.htm"]


def _is_listing(obj: object) -> bool:
    return isinstance(obj, Request) and obj.meta.get("stage") == "listing"


def test_since_stops_pagination_and_skips_old_articles(tmp_path: Path) -> None:
    # Newest item created 2025-07-13 19:17: with since = 07-14 the page is all older.
    spider = make_spider(tmp_path, max_pages=5, since="2025-07-14")
    requests, found = split(list(spider.parse_listing(listing_response())))
    assert not [r for r in requests if r.meta["stage"] == "listing"]
    fetched = sorted(article_id(r.url) or "" for r in requests)
    assert fetched == sorted(i for i in MAIN_IDS + TOP_IDS if i.startswith("20250713"))
    # Every item is accounted for: requested, or discovered as too old.
    assert sorted(d.article_id for d in found if d.outcome == "request") == fetched
    assert sorted(d.article_id for d in found if d.outcome == "old") == sorted(
        i for i in MAIN_IDS + TOP_IDS if not i.startswith("20250713")
    )
    # since = 07-13: some items are newer, so the next page is read.
    spider = make_spider(tmp_path, max_pages=5, since="2025-07-13")
    assert [r for r in spider.parse_listing(listing_response()) if _is_listing(r)]


def test_since_margins(tmp_path: Path) -> None:
    spider = make_spider(tmp_path, since="2025-07-14")
    created_2330 = "20250713233000000"  # may be published after midnight: keep paginating
    assert not spider._too_old(created_2330, timedelta(hours=1))
    assert spider._too_old("20250713225900000", timedelta(hours=1))
    assert not spider._too_old("20250713000000000", timedelta(days=1))
    assert spider._too_old("20250712235959999", timedelta(days=1))


def test_feed_items_deduped_rewritten_and_filtered(tmp_path: Path) -> None:
    skip = tmp_path / "skip_ids.txt"
    skip.write_text("# known\n20250713100000004\n\n", encoding="utf-8")
    spider = make_spider(tmp_path, skip_ids=skip, since="2025-07-12")
    url = f"{BASE}/phap-luat.rss"
    req = Request(url, meta={"stage": "feed", "feed": "phap-luat"})
    resp = XmlResponse(url, body=RSS.encode(), request=req)
    requests, found = split(list(spider.parse_feed(resp)))
    assert [r.url for r in requests] == [
        f"{BASE}/phap-luat/bat-giu-vu-buon-lau-thuoc-la-so-luong-lon-20250712205905640.htm",
        f"{BASE}/video/clip-hay-v20250713080000002.htm",
    ]
    assert [(d.article_id, d.via, d.outcome) for d in found] == [
        ("20250712205905640", "rss:phap-luat", "request"),
        ("20250713000000001", "rss:phap-luat", "print_only"),  # reported, never fetched
        ("20250713080000002", "rss:phap-luat", "request"),
        ("20250713100000004", "rss:phap-luat", "known"),  # discovered, not fetched
        ("20250701100000005", "rss:phap-luat", "old"),
    ]
    assert found[0].url == (
        "https://baotintuc.vn/phap-luat/bat-giu-vu-buon-lau-thuoc-la-so-luong-lon-"
        "20250712205905640.htm"
    )
    assert spider.crawler.stats.get_value("btt/offsite_links") == 1
    # The same article in a listing later is not requested again.
    requests, _ = split(list(spider.parse_listing(listing_response())))
    assert "20250712205905640" not in {article_id(r.url) for r in requests}


def test_feed_served_as_html_is_still_read(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    url = f"{BASE}/phap-luat.rss"
    req = Request(url, meta={"stage": "feed", "feed": "phap-luat"})
    resp = HtmlResponse(url, body=RSS.encode(), request=req)  # wrong type: <link> is void in HTML
    requests, _ = split(list(spider.parse_feed(resp)))
    assert len(requests) == 4


def test_feed_index_adds_new_feeds_only(tmp_path: Path) -> None:
    spider = make_spider(tmp_path, feeds=("tin-moi-nhat",))
    started = [r.url for r in _drain_start(spider)]
    assert f"{BASE}/tin-moi-nhat.rss" in started and f"{BASE}/rss.htm" in started
    body = (
        '<html><body><a href="/tin-moi-nhat.rss">x</a><a href="/thoi-su.rss">x</a>'
        '<a href="https://baotintuc.vn/the-gioi.rss">x</a><a href="/rss/kinh-te.rss">x</a>'
        '<a href="https://example.com/khac.rss">x</a></body></html>'
    )
    req = Request(f"{BASE}/rss.htm", meta={"stage": "feed_index"})
    out = list(spider.parse_feed_index(HtmlResponse(req.url, body=body.encode(), request=req)))
    assert [r.url for r in out] == [f"{BASE}/thoi-su.rss", f"{BASE}/the-gioi.rss"]
    assert [r.meta["feed"] for r in out] == ["thoi-su", "the-gioi"]


def _drain_start(spider: BaotintucSpider) -> list[Request]:
    import asyncio

    async def collect() -> list[Request]:
        return [r async for r in spider.start()]

    return asyncio.run(collect())


def test_start_modes_and_categories(tmp_path: Path) -> None:
    spider = make_spider(
        tmp_path, mode="listings", categories=["phap-luat", "130", "kinh-te-128ct0"]
    )
    assert [r.url for r in _drain_start(spider)] == [
        f"{BASE}/phap-luat-475ct0.htm",
        f"{BASE}/the-gioi-130ct0.htm",
        f"{BASE}/kinh-te-128ct0.htm",
    ]
    spider = make_spider(tmp_path, mode="rss", feeds=("thoi-su",), discover_feed_index=False)
    assert [r.url for r in _drain_start(spider)] == [f"{BASE}/thoi-su.rss"]
    spider = make_spider(tmp_path, mode="listings")
    assert len(_drain_start(spider)) == 19  # every top-level category
    with pytest.raises(ValueError, match="unknown category"):
        make_spider(tmp_path, categories=["khong-co"])
    with pytest.raises(ValueError, match="mode"):
        make_spider(tmp_path, mode="everything")


ARTICLE_URL = f"{BASE}/phap-luat/bat-giu-vu-buon-lau-thuoc-la-so-luong-lon-20250712205905640.htm"
PAGE = (
    '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"></head><body>'
    "<h1>Bắt giữ vụ buôn lậu thuốc lá số lượng lớn</h1><p>Lực lượng chức năng đã "
    "bắt giữ, tạm giữ hàng hóa vi phạm.</p></body></html>"
).encode()


def article_response(
    body: bytes, ctype: str | None = "text/html; charset=utf-8", **headers: str
) -> Response:
    req = Request(
        ARTICLE_URL,
        meta={"stage": "article", "article_id": "20250712205905640", "via": "rss:phap-luat"},
    )
    hdrs = {**({"Content-Type": ctype} if ctype else {}), **headers}
    cls = HtmlResponse if ctype is None or "html" in ctype else Response
    return cls(ARTICLE_URL, body=body, headers=hdrs, request=req)


def test_article_archived_with_canonical_url(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    (item,) = list(spider.parse_article(article_response(PAGE, ETag='"x"')))
    assert isinstance(item, RawArticle)
    assert item.url == (
        "https://baotintuc.vn/phap-luat/bat-giu-vu-buon-lau-thuoc-la-so-luong-lon-"
        "20250712205905640.htm"
    )
    assert item.fetch_url == ARTICLE_URL
    assert item.article_id == "20250712205905640"
    assert item.body == PAGE and item.status == 200 and item.via == "rss:phap-luat"
    assert ("Etag", '"x"') in item.headers  # Scrapy title-cases header names
    assert item.fetched_at.tzinfo is not None


@pytest.mark.parametrize(
    ("body", "ctype", "headers", "reason"),
    [
        (b"%PDF-1.4 binary", "application/pdf", {}, "non_html"),
        (b"", "text/html; charset=utf-8", {}, "empty_body"),
        (b"   \n", "text/html; charset=utf-8", {}, "empty_body"),
        (PAGE[:50], "text/html; charset=utf-8", {"Content-Length": str(len(PAGE))}, "truncated"),
        ("Bắt giữ ".encode("utf-16-le") * 50, "text/html; charset=utf-8", {}, "non_html"),
    ],
)
def test_article_rejections(
    tmp_path: Path, body: bytes, ctype: str, headers: dict[str, str], reason: str
) -> None:
    spider = make_spider(tmp_path)
    (failure,) = list(spider.parse_article(article_response(body, ctype, **headers)))
    assert isinstance(failure, FetchFailure)
    assert (failure.reason, failure.stage, failure.status) == (reason, "article", 200)
    assert failure.url.startswith("https://baotintuc.vn/phap-luat/")


def test_undecodable_page_is_rejected(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    garbage = PAGE.decode("utf-8").encode("utf-16-be")[2:] * 4  # not UTF-8 at all
    body = b"<!DOCTYPE html><html><body>" + bytes(b if b else 0xFF for b in garbage)
    (failure,) = list(spider.parse_article(article_response(body)))
    assert isinstance(failure, FetchFailure) and failure.reason == "invalid_encoding"
    few_bad = PAGE.replace("ắ".encode(), b"\xe1\xba")
    (item,) = list(spider.parse_article(article_response(few_bad)))
    assert isinstance(item, RawArticle) and item.body == few_bad


def _failure(exc: Exception, url: str = ARTICLE_URL) -> Failure:
    try:
        raise exc
    except Exception:
        failure = Failure()
    failure.request = Request(url, meta={"stage": "article"})  # type: ignore[attr-defined]
    return failure


def test_errback_reasons(tmp_path: Path) -> None:
    req = Request(ARTICLE_URL)
    resp_404 = TextResponse(ARTICLE_URL, status=404, body=b"nope", request=req)
    cases = [
        (HttpError(resp_404, "Ignoring non-200 response"), "http_404", 404),
        (DownloadTimeoutError("took longer"), "timeout", None),
        (DownloadConnectionRefusedError("refused"), "connection_error", None),
        (ResponseDataLossError(), "truncated", None),
        (DownloadCancelledError("larger than download max size"), "too_large", None),
        (IgnoreRequest("Forbidden by robots.txt"), "robots_forbidden", None),
        (IgnoreRequest("max redirections reached"), "redirect_loop", None),
        (RequestRejected("redirect_offsite", "x -> y"), "redirect_offsite", None),
    ]
    for exc, reason, status in cases:
        assert classify_failure(_failure(exc))[:2] == (reason, status)
    spider = make_spider(tmp_path)
    (row,) = list(spider.on_error(_failure(DownloadTimeoutError("slow"))))
    assert row.to_json()["url"] == (
        "https://baotintuc.vn/phap-luat/bat-giu-vu-buon-lau-thuoc-la-so-luong-lon-"
        "20250712205905640.htm"
    )
    assert (row.stage, row.reason, row.status) == ("article", "timeout", None)


def test_retry_after_and_backoff() -> None:
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds(b"soon") is None
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= (retry_after_seconds(format_datetime(later, usegmt=True)) or 0) <= 31
    past = format_datetime(datetime(2020, 1, 1, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(past) == 0.0
    mw = BackoffRetryMiddleware(Settings({"RETRY_BACKOFF_BASE": 2.0, "RETRY_BACKOFF_MAX": 10}))
    assert [mw.backoff_delay(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 10.0]
    resp = Response(ARTICLE_URL, status=429, headers={"Retry-After": "3"})
    assert mw.backoff_delay(1, resp) == 3.0
    resp = Response(ARTICLE_URL, status=503, headers={"Retry-After": "3600"})
    assert mw.backoff_delay(1, resp) == 10.0  # capped


def test_scrapy_settings_come_from_the_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scrapy's settings of a run are the request's, and the request's are the config's."""
    import importlib

    from crawler import request as request_module

    crawl = load_settings().crawl
    req = make_request(tmp_path)
    monkeypatch.setenv(REQUEST_ENV, str(req.write()))
    request_module.current_request.cache_clear()
    from crawler import settings as s

    s = importlib.reload(s)
    try:
        assert crawl.full_user_agent == s.USER_AGENT and "baotintuc-pipeline" in s.USER_AGENT
        assert s.ROBOTSTXT_OBEY is crawl.obey_robots_txt
        assert crawl.download_timeout == s.DOWNLOAD_TIMEOUT
        assert crawl.max_page_bytes == s.DOWNLOAD_MAXSIZE and crawl.retry_times == s.RETRY_TIMES
        assert str(req.httpcache_dir) == s.HTTPCACHE_DIR
        assert s.REMOTE_CONTROL_ENABLED is False and s.TELNETCONSOLE_ENABLED is False
        assert s.COOKIES_ENABLED is False and s.HTTPCACHE_ENABLED is True
        assert s.HTTPCACHE_POLICY.endswith("RFC2616Policy")
        # The mirror on loopback is crawled fast; a real origin politely.
        assert req.fast_loopback and s.DOWNLOAD_DELAY == 0
        polite = req.model_copy(update={"fast_loopback": False}).scrapy_settings()
        assert polite["DOWNLOAD_DELAY"] == crawl.download_delay
        assert polite["CONCURRENT_REQUESTS_PER_DOMAIN"] == crawl.concurrent_requests
    finally:
        request_module.current_request.cache_clear()


# --------------------------------------------------------------------------- accounting

ID_A = "20250712205905640"
URL_A1 = f"{BASE}/phap-luat/ten-cu-{ID_A}.htm"  # a renamed slug: dead
URL_A2 = f"{BASE}/an-ninh-trat-tu/ten-moi-{ID_A}.htm"


def _respond(
    req: Request,
    body: bytes = PAGE,
    status: int = 200,
    url: str | None = None,
    ctype: str = "text/html; charset=utf-8",
) -> Response:
    cls = HtmlResponse if "html" in ctype else Response
    return cls(
        url or req.url, status=status, body=body, headers={"Content-Type": ctype}, request=req
    )


def test_one_id_under_two_urls_first_dead_then_the_other(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    out = list(spider.found(URL_A1, BASE + "/phap-luat.rss", "rss:phap-luat"))
    (req1,) = [o for o in out if isinstance(o, Request)]
    # The second URL arrives while the first is being fetched: recorded, not fetched.
    out2 = list(spider.found(URL_A2, BASE + "/an-ninh-trat-tu-579ct475.htm", "listing:x:1"))
    assert [type(o) for o in out2] == [Discovery] and out2[0].outcome == "alias"
    # The first URL 404s: its failure is recorded under its own URL, then the other is tried.
    out3 = list(spider.parse_article(_respond(req1, b"gone", 404)))
    failure, retry = out3
    assert isinstance(failure, FetchFailure) and failure.reason == "http_404"
    assert failure.url == "https://baotintuc.vn/phap-luat/ten-cu-20250712205905640.htm"
    assert failure.article_id == ID_A
    assert isinstance(retry, Request) and retry.url == URL_A2
    (item,) = list(spider.parse_article(_respond(retry)))
    assert isinstance(item, RawArticle) and item.url.endswith(f"/ten-moi-{ID_A}.htm")


def test_an_alias_found_after_every_url_failed_is_tried(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    (req1,) = [o for o in spider.found(URL_A1, BASE + "/", "rss:x") if isinstance(o, Request)]
    out = list(spider.on_error(_failure_for(req1, DownloadTimeoutError("slow"))))
    assert [type(o) for o in out] == [FetchFailure]  # nothing else to try yet
    late = list(spider.found(URL_A2, BASE + "/", "listing:y:1"))
    assert [type(o) for o in late] == [Discovery, Request] and late[1].url == URL_A2


def _failure_for(req: Request, exc: Exception) -> Failure:
    try:
        raise exc
    except Exception:
        failure = Failure()
    failure.request = req  # type: ignore[attr-defined]
    return failure


def test_redirect_to_another_article_accounts_for_both(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    (req,) = [o for o in spider.found(URL_A1, BASE + "/", "rss:x") if isinstance(o, Request)]
    other = f"{BASE}/the-gioi/bai-khac-20250713080000002.htm"  # a meta refresh went here
    out = list(spider.parse_article(_respond(req, url=other)))
    failures = [o for o in out if isinstance(o, FetchFailure)]
    found = [o for o in out if isinstance(o, Discovery)]
    pages = [o for o in out if isinstance(o, RawArticle)]
    assert [(f.url.split("/")[-1], f.reason, f.article_id) for f in failures] == [
        (f"ten-cu-{ID_A}.htm", "redirect_other_article", ID_A)
    ]
    assert [(d.article_id, d.outcome, d.via) for d in found] == [
        ("20250713080000002", "request", f"redirect:{ID_A}")
    ]
    assert [p.article_id for p in pages] == ["20250713080000002"]  # archived, not refetched
    assert not [o for o in out if isinstance(o, Request)]


def test_redirect_to_a_page_that_is_no_article_is_a_failure(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    (req,) = [o for o in spider.found(URL_A1, BASE + "/", "rss:x") if isinstance(o, Request)]
    (failure,) = list(spider.parse_article(_respond(req, url=f"{BASE}/")))
    assert (failure.reason, failure.article_id) == ("redirect_not_article", ID_A)
    assert failure.url.endswith(f"ten-cu-{ID_A}.htm")


def test_offsite_redirect_failure_is_recorded_under_the_requested_url(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    (req,) = [o for o in spider.found(URL_A1, BASE + "/", "rss:x") if isinstance(o, Request)]
    hop = req.replace(url="https://example.org/elsewhere.htm")  # meta is carried over
    (failure,) = list(spider.on_error(_failure_for(hop, RequestRejected("redirect_offsite"))))
    assert (failure.reason, failure.article_id) == ("redirect_offsite", ID_A)
    assert failure.url == f"https://baotintuc.vn/phap-luat/ten-cu-{ID_A}.htm"


def test_run_cap_defers_the_rest(tmp_path: Path) -> None:
    spider = make_spider(tmp_path, max_pages=1, max_articles=5)
    requests, found = split(list(spider.parse_listing(listing_response())))
    articles = [r for r in requests if r.meta["stage"] == "article"]
    assert len(articles) == 5
    assert [d.outcome for d in found].count("deferred") == 24 - 5
    assert {d.outcome for d in found} == {"request", "deferred"}


FEED_SPLIT = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title>
<item><title>Split by an entity</title>
  <link>https://baotintuc.vn/phap-luat/a-&amp;-b-20250713100000007.htm</link></item>
<item><title>Link to a listing</title><link>https://baotintuc.vn/phap-luat-475ct0.htm</link>
  <guid isPermaLink="false">id-123</guid></item>
<item><title>No link, guid is the URL</title>
  <guid>https://baotintuc.vn/xa-hoi/guid-only-20250713100000008.htm</guid></item>
<item><title>Month 13</title><link>https://baotintuc.vn/xa-hoi/x-20251313100000009.htm</link></item>
</channel></rss>
"""


def test_feed_is_read_by_a_real_feed_parser(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    url = f"{BASE}/phap-luat.rss"
    req = Request(url, meta={"stage": "feed", "feed": "phap-luat"})
    out = list(spider.parse_feed(XmlResponse(url, body=FEED_SPLIT.encode(), request=req)))
    requests, found = split(out)
    assert [d.url for d in found] == [
        "https://baotintuc.vn/phap-luat/a-&-b-20250713100000007.htm",  # the whole link
        "https://baotintuc.vn/xa-hoi/guid-only-20250713100000008.htm",
    ]
    unresolvable = [o for o in out if isinstance(o, FetchFailure)]
    assert [(f.reason, f.stage, f.article_id) for f in unresolvable] == [
        ("feed_item_unresolvable", "feed", None),  # a listing link, an opaque guid
        ("bad_article_id", "feed", None),  # month 13 is no creation time: under its own URL
    ]
    assert unresolvable[0].url == "https://baotintuc.vn/phap-luat.rss"
    assert "20251313100000009" in unresolvable[1].url
    assert spider.crawler.stats.get_value("btt/feed_items_unresolvable") == 1
    assert spider.crawler.stats.get_value("btt/bad_article_ids") == 1


def test_empty_feed_is_fine_and_garbage_is_a_failure(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    url = f"{BASE}/quan-su.rss"
    req = Request(url, meta={"stage": "feed", "feed": "quan-su"})
    empty = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    assert list(spider.parse_feed(XmlResponse(url, body=empty, request=req))) == []
    (failure,) = list(spider.parse_feed(XmlResponse(url, body=b"<html>oops</html>", request=req)))
    assert failure.reason == "not_a_feed"


SITEMAP_INDEX = """<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>https://baotintuc.vn/sitemaps/2025-07.xml</loc><lastmod>2025-07-13</lastmod></sitemap>
<sitemap><loc>https://baotintuc.vn/sitemaps/2019-01.xml</loc><lastmod>2019-01-31</lastmod></sitemap>
<sitemap><loc>https://baotintuc.vn/sitemaps/news.xml</loc></sitemap>
</sitemapindex>"""
URLSET = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc>https://baotintuc.vn/phap-luat/a-{ID_A}.htm</loc>
  <news:news><news:publication_date>2025-07-12T21:11:00+07:00</news:publication_date>
  <news:title>A</news:title></news:news></url>
<url><loc>https://baotintuc.vn/phap-luat-475ct0.htm</loc></url>
</urlset>"""


def test_sitemaps_from_robots_index_and_urlset(tmp_path: Path) -> None:
    spider = make_spider(tmp_path, mode="backfill", since="2025-01-01")
    assert spider.request.sitemaps
    started = _drain_start(spider)
    (robots_req,) = [r for r in started if r.url.endswith("/robots.txt")]
    robots = TextResponse(
        robots_req.url,
        body=b"User-agent: *\nSitemap: https://baotintuc.vn/s.xml\n",
        request=robots_req,
    )
    (idx_req,) = list(spider.parse_robots(robots))
    assert idx_req.url == f"{BASE}/s.xml"
    index = XmlResponse(idx_req.url, body=SITEMAP_INDEX.encode(), request=idx_req)
    children = list(spider.parse_sitemap(index))
    assert [r.url for r in children] == [
        f"{BASE}/sitemaps/2025-07.xml",
        f"{BASE}/sitemaps/news.xml",
    ]
    urlset = XmlResponse(children[0].url, body=URLSET.encode(), request=children[0])
    requests, found = split(list(spider.parse_sitemap(urlset)))
    assert [(d.article_id, d.via) for d in found] == [(ID_A, "sitemap:/sitemaps/2025-07.xml")]
    assert [r.meta["stage"] for r in requests] == ["article"]
    # No Sitemap line: /sitemap.xml is tried.
    spider2 = make_spider(tmp_path, mode="backfill")
    (req,) = [r for r in _drain_start(spider2) if r.url.endswith("/robots.txt")]
    (guess,) = list(
        spider2.parse_robots(TextResponse(req.url, body=b"User-agent: *\n", request=req))
    )
    assert guess.url == f"{BASE}/sitemap.xml"


def test_a_restarted_backfill_goes_on_where_it_was(tmp_path: Path) -> None:
    frontier = tmp_path / "w.duckdb.backfill.json"
    spider = make_spider(tmp_path, mode="backfill", max_pages=None, since="2025-01-01",
                         categories=["phap-luat", "the-gioi"], frontier=frontier)
    assert [r.url for r in _drain_start(spider) if _is_listing(r)] == [
        f"{BASE}/phap-luat-475ct0.htm", f"{BASE}/the-gioi-130ct0.htm"]
    out = list(spider.parse_listing(listing_response(page=7)))  # page 7 read, more to come
    assert [r.meta["page"] for r in out if _is_listing(r)] == [8]
    spider.frontier.finished("the-gioi-130ct0", 3)
    spider.closed("shutdown")  # a kill: the frontier is on disk
    again = make_spider(tmp_path, mode="backfill", max_pages=None, since="2025-01-01",
                        categories=["phap-luat", "the-gioi"], frontier=frontier)
    starts = [r for r in _drain_start(again) if _is_listing(r)]
    assert [(r.url, r.meta["page"]) for r in starts] == [
        (f"{BASE}/phap-luat-475ct0/trang-6.htm", 6)]  # one page of overlap; the-gioi done
    other = make_spider(tmp_path, mode="backfill", max_pages=None, since="2024-01-01",
                        categories=["phap-luat"], frontier=frontier)
    assert [r.meta["page"] for r in _drain_start(other) if _is_listing(r)] == [1]


def test_a_long_queue_holds_back_listing_pages_until_half_is_answered(tmp_path: Path) -> None:
    """Past ``crawl.queued_articles`` waiting article requests, the next listing page is
    held (a deep backfill would otherwise queue the whole archive in memory); answered
    articles let it go once the queue is down to half, and nothing is dropped."""
    spider = make_spider(tmp_path, mode="backfill", max_pages=None)
    spider.request = spider.request.model_copy(update={"queued_articles": 6})
    out = list(spider.parse_listing(listing_response(page=1)))
    articles = [r for r in out if isinstance(r, Request) and r.meta["stage"] == "article"]
    assert len(articles) > 6 and spider.queued_articles == len(articles)
    assert not any(_is_listing(r) for r in out)  # page 2 is held, not sent
    assert [r.meta["page"] for r in spider.held_pages] == [2]
    released: list[Request] = []
    for n, req in enumerate(articles, start=1):
        for o in spider.on_error(_failure_for(req, DownloadTimeoutError("slow"))):
            if _is_listing(o):
                released.append(o)
                assert len(articles) - n <= 3, "released before the queue was down to half"
    assert [r.meta["page"] for r in released] == [2] and not spider.held_pages
    assert spider.queued_articles == 0
    assert spider.crawler.stats.get_value("btt/discovery_pages_held") == 1
    assert spider.crawler.stats.get_value("btt/queued_articles_max") == len(articles)


def test_without_a_long_queue_the_next_listing_page_goes_at_once(tmp_path: Path) -> None:
    spider = make_spider(tmp_path, mode="backfill", max_pages=None)
    out = list(spider.parse_listing(listing_response(page=1)))
    assert [r.meta["page"] for r in out if _is_listing(r)] == [2] and not spider.held_pages


def test_a_settled_article_reports_each_new_url_once(tmp_path: Path) -> None:
    """Once archived, an article keeps only hashes of its URLs: a link to a URL seen
    before is nothing, a new URL of it is one alias discovery (and never a request)."""
    spider = make_spider(tmp_path)
    (req,) = [o for o in spider.found(URL_A1, BASE + "/", "rss:x") if isinstance(o, Request)]
    (item,) = list(spider.parse_article(_respond(req)))
    assert isinstance(item, RawArticle) and ID_A not in spider.articles
    assert int(ID_A) in spider.settled
    assert list(spider.found(URL_A1, BASE + "/", "listing:y:1")) == []
    late = list(spider.found(URL_A2, BASE + "/", "listing:y:2"))
    assert [(type(o), o.outcome) for o in late] == [(Discovery, "alias")]
    assert list(spider.found(URL_A2, BASE + "/", "listing:y:3")) == []
    assert spider.crawler.stats.get_value("btt/alias_urls") == 1


def test_settled_articles_cost_a_few_bytes_each(tmp_path: Path) -> None:
    """A backfill remembers every article it settled: 16 bytes each in IdMap's arrays (and
    ~100 for the latest few thousand, in its dict), where a dict of ID strings to tuples
    of hashes took ~190 (tracemalloc)."""
    import tracemalloc

    # (past the run's cap of one article, each is deferred: settled, no request built)
    spider = make_spider(tmp_path, max_pages=None, mode="backfill", max_articles=1)
    n = 50_000
    start = datetime(2025, 1, 1, tzinfo=UTC)
    urls = [f"{BASE}/thoi-su/bai-so-{i}-{start + timedelta(seconds=97 * i):%Y%m%d%H%M%S}123.htm"
            for i in range(n)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for url in urls:
            aid = article_id(url)
            assert aid is not None
            for _ in spider._discover(aid, url, "sitemap"):
                pass
            spider._settle(aid)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(spider.settled) == n and not spider.articles
    assert grown / n < 64, f"{grown / n:.0f} bytes an article"


def test_a_listing_repeating_an_earlier_page_stops_pagination(tmp_path: Path) -> None:
    """A site that answers any page number with a page already read is not paginated
    for ever: the first page and the latest pages of a category are remembered."""
    spider = make_spider(tmp_path, max_pages=None, mode="backfill")
    first = [r for r in spider.parse_listing(listing_response(1)) if _is_listing(r)]
    assert first, "page 1 asks for page 2"
    again = [r for r in spider.parse_listing(listing_response(40)) if _is_listing(r)]
    assert again == []
    assert spider.crawler.stats.get_value("btt/pagination_stopped_repeating") == 1
    # Eight other pages later (the latest pages kept), page 1 is still remembered.
    first_page, latest = spider.listed["phap-luat-475ct0"]
    latest.extend(frozenset({n}) for n in range(LISTING_PAGES_KEPT))
    assert all(len(seen) == 1 for seen in latest)
    assert [r for r in spider.parse_listing(listing_response(50)) if _is_listing(r)] == []
    assert spider.crawler.stats.get_value("btt/pagination_stopped_repeating") == 2
