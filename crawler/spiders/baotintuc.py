"""The ``baotintuc`` spider: discover articles in feeds and listings, fetch each once.

Run (cwd = project root)::

    python -m scrapy crawl baotintuc -a run_dir=data/runs/<run_id> \
        -a warc_path=data/raw/<YYYY-MM-DD>/<run_id>.warc.gz -a since=2025-07-12 \
        -a skip_ids=data/runs/<run_id>/skip_ids.txt [-a base_url=http://127.0.0.1:8765] \
        [-a mode=all|rss|listings] [-a max_pages=N] [-a categories=phap-luat,130] \
        [-a feeds=tin-moi-nhat,thoi-su] [-a discover_feed_index=false] \
        [-a recheck=data/runs/<run_id>/recheck_urls.txt]

``recheck`` names stored articles due for a re-check (one canonical URL a line): they are
requested directly, whether or not a feed or listing still names them.

Every argument is a string. Outputs (see docs/architecture.md): the WARC of article
pages, ``discovered.jsonl``, ``failures.jsonl`` and ``stats.json`` in ``run_dir``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import scrapy
from parsel import Selector
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import error as tx_error

from baotintuc.clock import VN_TZ, id17_datetime, vn_day_start
from baotintuc.site import KNOWN_FEEDS, TOP_LEVEL, Category, category_by_key
from baotintuc.urls import (
    ARTICLE_RE,
    article_id,
    is_site_url,
    listing_info,
    to_canonical,
    to_fetch_url,
)
from crawler.items import DiscoveredArticle, FetchFailure, RawArticle
from crawler.middlewares import RequestRejected

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

# Publication comes up to ~36 min after the ID17 (creation time): a listing page is
# past ``since`` only when every item on it was created before since - this margin.
PAGINATION_MARGIN = timedelta(hours=1)
# Articles created more than this before ``since`` are not fetched (the flow filters
# exactly on published_at later).
FETCH_MARGIN = timedelta(days=1)
MODES = ("all", "rss", "listings")
FEED_PATH_RE = re.compile(r"^/(?P<slug>[a-z0-9-]+)\.rss$")
NEXT_TEXT = "Tiếp"
MAX_BAD_CHAR_SHARE = 0.5  # of non-ASCII characters; above it a page "cannot be decoded"

# Listing markup (2025 layout), with the older layout as a fallback.
MAIN_ITEMS = "div.lcb-left ul.list-newsest > li.item"
TOP_LINKS = "div.lc-top a.title::attr(href), div.lc-top a.thumb::attr(href)"
OLD_ITEMS = "div.listspecial > ul > li > h3 > a::attr(href)"
NEXT_LINKS = "ul.list-pagination a, div.paging a, div.pager a"
LISTING_SHELLS = "div.lcb-left, ul.list-newsest, div.lc-top, div.listspecial"
ITEMS_PER_PAGE = 20


def _truthy(value: str | bool | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return value.strip().lower() in ("1", "true", "yes", "on")


def _split(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s and s.strip()]


def read_skip_ids(path: str | Path) -> set[str]:
    """ID17s of a file, one per line (blank lines and ``#`` comments ignored)."""
    ids: set[str] = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        token = line.split("#", 1)[0].strip()
        if token:
            ids.add(token)
    return ids


def classify_failure(failure: Failure) -> tuple[str, int | None, str]:
    """``(reason, status, detail)`` for a failed request (codes of docs/architecture.md)."""
    exc = failure.value
    detail = f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, HttpError):
        status = exc.response.status
        return f"http_{status}", status, detail
    if isinstance(exc, RequestRejected):
        return exc.reason, None, detail
    if isinstance(exc, IgnoreRequest):
        text = str(exc).lower()
        if "robots.txt" in text:
            return "robots_forbidden", None, detail
        if "redirection" in text:
            return "redirect_loop", None, detail
        if "max size" in text or "download_maxsize" in text:
            return "too_large", None, detail
        return "ignored", None, detail
    if isinstance(exc, DownloadCancelledError):
        return "too_large", None, detail
    if isinstance(exc, ResponseDataLossError):
        return "truncated", None, detail
    if isinstance(exc, DownloadTimeoutError | tx_error.TimeoutError | tx_error.TCPTimedOutError):
        return "timeout", None, detail
    if isinstance(exc, CannotResolveHostError | tx_error.DNSLookupError):
        return "dns_error", None, detail
    # DownloadConnectionRefusedError, DownloadFailedError, ConnectError, ConnectionLost ...
    return "connection_error", None, detail


class BaotintucSpider(scrapy.Spider):
    """Feeds (``/<slug>.rss``, ``/rss.htm``) and category listings -> article pages."""

    name = "baotintuc"

    base_url: str
    run_dir: Path
    warc_path: Path
    since: date | None
    max_pages: int
    categories: list[Category]
    feeds: list[str]
    skip_ids: set[str]
    recheck_urls: list[str]
    discover_feed_index: bool
    mode: str

    def __init__(
        self,
        base_url: str | None = None,
        run_dir: str | None = None,
        warc_path: str | None = None,
        since: str | None = None,
        max_pages: str | int | None = None,
        categories: str | None = None,
        feeds: str | None = None,
        skip_ids: str | None = None,
        discover_feed_index: str | bool | None = None,
        mode: str = "all",
        recheck: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._args: dict[str, Any] = {
            "base_url": base_url,
            "run_dir": run_dir,
            "warc_path": warc_path,
            "since": since,
            "max_pages": max_pages,
            "categories": categories,
            "feeds": feeds,
            "skip_ids": skip_ids,
            "discover_feed_index": discover_feed_index,
            "mode": mode,
            "recheck": recheck,
        }
        self.seen_ids: set[str] = set()
        self.seen_pages: set[str] = set()
        self.print_only: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.configure(crawler.settings)
        return spider

    def configure(self, settings: BaseSettings) -> None:
        """Resolve the arguments against the settings (spider args win); fail fast."""
        a = self._args
        base = a["base_url"] or settings.get("BTT_BASE_URL") or "https://baotintuc.vn"
        parts = urlsplit(base.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url is not an http(s) origin: {base!r}")
        self.base_url = f"{parts.scheme}://{parts.netloc}"

        self.mode = (a["mode"] or "all").strip().lower()
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}: {a['mode']!r}")
        self.since = date.fromisoformat(a["since"].strip()) if a["since"] else None
        self.max_pages = int(a["max_pages"] or settings.getint("BTT_MAX_PAGES", 1))
        if self.max_pages < 1:
            raise ValueError(f"max_pages must be >= 1: {self.max_pages}")

        keys = _split(a["categories"])
        if keys is None:
            keys = list(settings.getlist("BTT_CATEGORIES"))
        cats: list[Category] = []
        for key in keys:
            cat = category_by_key(key)
            if cat is None:
                raise ValueError(f"unknown category: {key!r}")
            if cat not in cats:
                cats.append(cat)
        self.categories = cats or list(TOP_LEVEL)

        feeds = _split(a["feeds"])
        if feeds is None:
            feeds = list(settings.getlist("BTT_FEEDS")) or list(KNOWN_FEEDS)
        self.feeds = list(dict.fromkeys(f.removesuffix(".rss").strip("/") for f in feeds))
        self.discover_feed_index = _truthy(
            a["discover_feed_index"], settings.getbool("BTT_DISCOVER_FEED_INDEX", True)
        )
        self.skip_ids = read_skip_ids(a["skip_ids"]) if a["skip_ids"] else set()
        self.recheck_urls = sorted(read_skip_ids(a["recheck"])) if a["recheck"] else []

        run_id = "manual-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        if a["run_dir"]:
            self.run_dir = Path(a["run_dir"])
        else:
            from config import load_settings

            self.run_dir = load_settings().paths.runs_dir / run_id
        if a["warc_path"]:
            self.warc_path = Path(a["warc_path"])
        else:
            today = datetime.now(VN_TZ).date().isoformat()
            self.warc_path = self.run_dir.parent.parent / "raw" / today / f"{run_id}.warc.gz"
        logger.info(
            "baotintuc crawl: base_url=%s mode=%s since=%s max_pages=%d categories=%d "
            "feeds=%d feed_index=%s skip_ids=%d recheck=%d run_dir=%s warc=%s",
            self.base_url,
            self.mode,
            self.since,
            self.max_pages,
            len(self.categories),
            len(self.feeds),
            self.discover_feed_index,
            len(self.skip_ids),
            len(self.recheck_urls),
            self.run_dir,
            self.warc_path,
        )

    # -- helpers -------------------------------------------------------------------

    def _inc(self, key: str, count: int = 1) -> None:
        crawler = getattr(self, "crawler", None)
        if crawler is not None and crawler.stats is not None:
            crawler.stats.inc_value(key, count)

    def _page_request(
        self, path_or_url: str, callback: Any, stage: str, **meta: Any
    ) -> scrapy.Request | None:
        """A feed/listing request: revalidated through the HTTP cache, fetched once."""
        url = to_fetch_url(urljoin(self.base_url + "/", path_or_url), self.base_url)
        if url in self.seen_pages:
            return None
        self.seen_pages.add(url)
        return scrapy.Request(
            url,
            callback=callback,
            errback=self.on_error,
            dont_filter=True,  # deduplicated here; redirects must never be dropped silently
            headers={"Cache-Control": "max-age=0"},
            meta={"stage": stage, **meta},
        )

    def _too_old(self, aid: str, margin: timedelta) -> bool:
        if self.since is None:
            return False
        created = id17_datetime(aid)
        if created is None:
            return False
        start = vn_day_start(self.since)
        return created < start - margin

    def found(self, href: str, page_url: str, via: str) -> Iterator[DiscoveredArticle | Any]:
        """Outputs for one link found in a feed or listing: a discovery and a request."""
        href = (href or "").strip()
        if not href or href.startswith(("javascript:", "mailto:", "#")):
            return
        absolute = urljoin(page_url, href)
        if urlsplit(absolute).scheme not in ("http", "https"):
            return
        if not is_site_url(absolute, self.base_url):
            self._inc("btt/offsite_links")
            return
        aid = article_id(absolute)
        if aid is None:
            m = ARTICLE_RE.search(urlsplit(absolute).path)
            if m and m.group("prefix") == "n":  # print view: the article is found elsewhere
                self.print_only.add(m.group("id"))
            return
        if aid in self.seen_ids:
            return
        self.seen_ids.add(aid)
        if self._too_old(aid, FETCH_MARGIN):
            self._inc("btt/skipped_old")
            return
        canonical = to_canonical(absolute, self.base_url)
        yield DiscoveredArticle(article_id=aid, url=canonical, via=via)
        if aid in self.skip_ids:
            self._inc("btt/skipped_known")
            return
        yield scrapy.Request(
            to_fetch_url(canonical, self.base_url),
            callback=self.parse_article,
            errback=self.on_error,
            dont_filter=True,
            priority=10,
            meta={"stage": "article", "article_id": aid, "via": via, "dont_cache": True},
        )

    def _failure(
        self, response: Response, reason: str, detail: str = "", status: int | None = None
    ) -> FetchFailure:
        stage = response.meta.get("stage", "article")
        logger.warning("%s %s failed: %s %s", stage, response.url, reason, detail)
        return FetchFailure(
            url=to_canonical(response.url, self.base_url),
            stage=stage,
            reason=reason,
            status=status if status is not None else response.status,
            detail=detail,
        )

    # -- crawl -----------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        for url in self.recheck_urls:  # stored articles due for a re-check
            for out in self.found(url, self.base_url + "/", "recheck"):
                yield out
        if self.mode in ("all", "rss"):
            for slug in self.feeds:
                req = self._page_request(f"/{slug}.rss", self.parse_feed, "feed", feed=slug)
                if req is not None:
                    yield req
            if self.discover_feed_index:
                req = self._page_request("/rss.htm", self.parse_feed_index, "feed_index")
                if req is not None:
                    yield req
        if self.mode in ("all", "listings"):
            for cat in self.categories:
                req = self._page_request(
                    cat.listing_path, self.parse_listing, "listing", category=cat.key, page=1
                )
                if req is not None:
                    yield req

    def parse_feed_index(self, response: Response) -> Iterator[Any]:
        """``/rss.htm``: every ``/<slug>.rss`` link not yet requested."""
        for href in response.css("a::attr(href)").getall():
            absolute = urljoin(response.url, href.strip())
            if not is_site_url(absolute, self.base_url):
                continue
            m = FEED_PATH_RE.match(urlsplit(absolute).path)
            if not m:  # also skips /rss/<x>.rss, which answers HTML
                continue
            slug = m.group("slug")
            req = self._page_request(f"/{slug}.rss", self.parse_feed, "feed", feed=slug)
            if req is not None:
                self._inc("btt/feeds_from_index")
                yield req

    def parse_feed(self, response: Response) -> Iterator[Any]:
        """An RSS 2.0 (or Atom) feed: the items' ``<link>``/``<guid>`` (absolute URLs)."""
        slug = response.meta.get("feed", "")
        if not response.body.strip():
            yield self._failure(response, "empty_body")
            return
        links: list[str] = []
        try:
            sel = Selector(body=response.body, type="xml")
            links = sel.xpath(
                "//*[local-name()='item']/*[local-name()='link' or local-name()='guid']/text()"
                " | //*[local-name()='entry']/*[local-name()='link']/@href"
            ).getall()
        except Exception as err:  # not XML at all: fall back to any article URL in it
            logger.warning("Feed %s is not XML (%s); scanning it for article links", slug, err)
        if not links:
            text = response.body.decode("utf-8", "replace")
            links = re.findall(r"https?://[^\s\"'<>]+?-\d{17}\.htm", text)
            if links:
                self._inc("btt/feed_not_rss")
        for link in links:
            yield from self.found(link, response.url, f"rss:{slug}")

    def parse_listing(self, response: Response) -> Iterator[Any]:
        """A category listing page: its 20 items + the top block, then the next page."""
        cat_key: str = response.meta.get("category", "")
        page: int = int(response.meta.get("page", 1))
        via = f"listing:{cat_key}:{page}"
        if not response.body.strip():
            yield self._failure(response, "empty_body")
            return
        main = [
            li.css("a.title::attr(href)").get() or li.css("a.thumb::attr(href)").get() or ""
            for li in response.css(MAIN_ITEMS)
        ]
        main = [h for h in main if h] or response.css(OLD_ITEMS).getall()
        top = response.css(TOP_LINKS).getall()
        if not main and not top and not response.css(LISTING_SHELLS):
            # No known listing markup at all (a redesign): fall back to every article link.
            # A known shell with no items is an empty category, not a new layout.
            self._inc("btt/listing_layout_unknown")
            logger.warning("Listing %s: no known item markup; taking every article link", via)
            main = response.css("a::attr(href)").getall()
        for href in [*top, *main]:
            yield from self.found(href, response.url, via)

        main_ids = [i for i in (article_id(urljoin(response.url, h)) for h in main) if i]
        if page >= self.max_pages or not main_ids:
            return
        if self.since and all(self._too_old(i, PAGINATION_MARGIN) for i in main_ids):
            self._inc("btt/pagination_stopped_by_since")
            logger.info("Listing %s: every item is older than %s, not paginating", via, self.since)
            return
        next_url = self.next_page_url(response, page)
        if next_url:
            req = self._page_request(
                next_url, self.parse_listing, "listing", category=cat_key, page=page + 1
            )
            if req is not None:
                yield req

    def next_page_url(self, response: Response, page: int) -> str | None:
        """The ``Tiếp`` link of the pagination, else the ``/trang-<N+1>.htm`` pattern."""
        for a in response.css(NEXT_LINKS):
            text = " ".join(a.css("::text").getall()).strip()
            href = (a.attrib.get("href") or "").strip()
            if text.startswith(NEXT_TEXT) and href and not href.startswith("javascript:"):
                absolute = urljoin(response.url, href)
                if is_site_url(absolute, self.base_url):
                    return absolute
        info = listing_info(response.url)
        if info is None or response.css(NEXT_LINKS):
            return None  # pagination markup without a `Tiếp` link: this is the last page
        if len(response.css(MAIN_ITEMS)) < ITEMS_PER_PAGE:
            return None  # a short page is the last one
        slug, cat_id, parent_id, _ = info
        return Category(cat_id, slug, "", parent_id).listing_page_path(page + 1)

    def parse_article(self, response: Response) -> Iterator[Any]:
        """Check an article response and hand it to the archive (or record why not)."""
        body = response.body
        if response.status != 200:
            yield self._failure(response, f"http_{response.status}")
            return
        if "dataloss" in response.flags:
            yield self._failure(response, "truncated", "dataloss flag")
            return
        declared = response.headers.get(b"Content-Length")
        if (
            declared
            and declared.isdigit()
            and b"Content-Encoding" not in response.headers
            and len(body) < int(declared)
        ):
            yield self._failure(response, "truncated", f"{len(body)} of {int(declared)} bytes")
            return
        if not body.strip():
            yield self._failure(response, "empty_body")
            return
        ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        head = body[:1024].lstrip().lower()
        looks_html = head.startswith((b"<!doctype html", b"<html")) or b"<html" in head
        if (ctype and "html" not in ctype) or (not ctype and not looks_html) or b"\0" in head:
            yield self._failure(response, "non_html", ctype or "no content type")
            return
        bad = self._undecodable(response)
        if bad:
            yield self._failure(response, "invalid_encoding", bad)
            return
        aid = article_id(response.url) or response.meta["article_id"]
        url = response.url if article_id(response.url) else response.request.url
        yield RawArticle(
            article_id=aid,
            url=to_canonical(url, self.base_url),
            fetch_url=response.url,
            status=response.status,
            headers=[
                (k.decode("latin-1"), v.decode("utf-8", "replace"))
                for k, values in response.headers.items()
                for v in values
            ],
            body=body,
            fetched_at=datetime.now(UTC),
            via=response.meta.get("via", ""),
        )

    def _undecodable(self, response: Response) -> str:
        """Why the page cannot be read as text, or ``""`` (a few bad bytes are kept)."""
        encoding = getattr(response, "encoding", None) or "utf-8"
        try:
            response.body.decode(encoding)
            return ""
        except (UnicodeDecodeError, LookupError):
            pass
        text = response.body.decode(encoding if encoding else "utf-8", "replace")
        non_ascii = sum(1 for ch in text if ord(ch) > 127)
        bad = text.count("\ufffd")
        if non_ascii >= 20 and bad / non_ascii > MAX_BAD_CHAR_SHARE:
            return f"{bad} of {non_ascii} non-ASCII characters are not {encoding}"
        self._inc("btt/invalid_bytes_kept")
        logger.warning("%s: %d invalid %s sequences; archived as is", response.url, bad, encoding)
        return ""

    def on_error(self, failure: Failure) -> Iterator[FetchFailure]:
        """Errback of every request: one failures.jsonl row; the crawl goes on."""
        request = failure.request  # type: ignore[attr-defined]
        reason, status, detail = classify_failure(failure)
        stage = request.meta.get("stage", "article")
        logger.warning("%s %s failed: %s (%s)", stage, request.url, reason, detail)
        yield FetchFailure(
            url=to_canonical(request.url, self.base_url),
            stage=stage,
            reason=reason,
            status=status,
            detail=detail,
        )

    def closed(self, reason: str) -> None:
        orphans = self.print_only - self.seen_ids
        if orphans:
            logger.info("%d articles were linked only as print views (not fetched)", len(orphans))
