"""The ``baotintuc`` spider: discover article URLs, fetch each article once, archive it.

Sources: RSS feeds (``/<slug>.rss``, the index ``/rss.htm``), category listings with
``Tiếp`` pagination, and, in backfill mode, the sitemaps robots.txt names (or
``/sitemap.xml``). Everything the run does is decided by one
:class:`crawler.request.CrawlRequest` (``BTT_CRAWL_REQUEST``).

Accounting: every article URL found becomes a :class:`crawler.items.Discovery` with the
spider's decision (request, alias, known, old, deferred); every requested URL ends as an
archived page or a :class:`baotintuc.model.Failure` recorded under *its own* canonical
URL, also when a redirect or a ``<meta http-equiv="refresh">`` took the request
elsewhere. An ID found under several URLs is fetched once; if that URL fails, its other
URLs are tried before the ID is given up.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin, urlsplit

import feedparser
import scrapy
from scrapy import signals
from scrapy.exceptions import (
    CannotResolveHostError,
    DontCloseSpider,
    DownloadCancelledError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.selector import Selector
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.gz import gunzip, gzip_magic_number
from scrapy.utils.sitemap import Sitemap, sitemap_urls_from_robots
from twisted.internet import error as tx_error
from w3lib.encoding import html_to_unicode

from baotintuc.clock import id17_datetime, vn_day_start
from baotintuc.model import COLUMNS, Failure
from baotintuc.site import Category, category_by_key
from baotintuc.urls import (
    ARTICLE_RE,
    article_id,
    is_site_url,
    listing_info,
    to_canonical,
    to_fetch_url,
)
from crawler.compact import IdMap, id_number
from crawler.frontier import Frontier
from crawler.items import Discovery, Outcome, RawArticle
from crawler.middlewares import RequestRejected
from crawler.request import CrawlRequest, current_request

if TYPE_CHECKING:
    from scrapy.http import Response
    from twisted.python.failure import Failure as TwistedFailure

logger = logging.getLogger(__name__)

# Publication comes up to ~36 min after the ID17 (creation time): a listing page is
# past ``since`` only when every item on it was created before since - this margin.
PAGINATION_MARGIN = timedelta(hours=1)
# Articles created more than this before ``since`` are not fetched (the flow filters
# exactly on published_at later).
FETCH_MARGIN = timedelta(days=1)
FEED_PATH_RE = re.compile(r"^/(?P<slug>[a-z0-9-]+)\.rss$")
NEXT_TEXT = "Tiếp"
MAX_BAD_CHAR_SHARE = 0.5  # of non-ASCII characters; above it a page "cannot be decoded"
MAX_UNRESOLVABLE_PER_FEED = 20  # failure rows per feed for items with no article link
MAX_BAD_ID_ROWS = 100  # failure rows per run for article links with an impossible ID17
MAX_URL_CHARS = COLUMNS["url"].max_chars or 2048  # an article URL longer than this is refused
DISCOVERY_STAGES = ("feed", "feed_index", "listing", "sitemap")
STAGE_OF_VIA = {"rss": "feed", "listing": "listing", "sitemap": "sitemap"}

# Listing markup (2025 layout), with the older layout as a fallback.
MAIN_ITEMS = "div.lcb-left ul.list-newsest > li.item"
TOP_LINKS = "div.lc-top a.title::attr(href), div.lc-top a.thumb::attr(href)"
OLD_ITEMS = "div.listspecial > ul > li > h3 > a::attr(href)"
NEXT_LINKS = "ul.list-pagination a, div.paging a, div.pager a"
LISTING_SHELLS = "div.lcb-left, ul.list-newsest, div.lc-top, div.listspecial"
ITEMS_PER_PAGE = 20


def page_selector(response: Response) -> Selector:
    """A selector over ``response`` that dies with the callback.

    ``response.css`` caches its selector on the response, and the selector points back at
    the response: a reference cycle that only the cyclic garbage collector frees, with
    the page's lxml tree (several MB for a 275 KB listing) invisible to its thresholds.
    At the end of a fast backfill, when listing pages come eight at a time, those trees
    piled up to +80 MB in a sawtooth (100k-article mirror). A local selector is freed by
    reference counting as soon as the callback is done with it.
    """
    return Selector(response)


def read_lines(path: Path | None) -> list[str]:
    """Non-blank lines of a file (``#`` comments dropped); [] without a file."""
    if path is None:
        return []
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        token = line.split("#", 1)[0].strip()
        if token:
            out.append(token)
    return out


def classify_failure(failure: TwistedFailure) -> tuple[str, int | None, str]:
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


@dataclass(slots=True)
class ArticleState:
    """What the run knows of one ID: its URLs in discovery order and where it stands."""

    urls: list[str]
    state: Literal["waiting", "fetching", "failed"] = "waiting"  # then settled
    tried: int = 0  # URLs requested so far
    # Where each URL not requested yet was found (None once there is none: a backfill keeps
    # one of these per article of the archive, so an empty dict each would add up).
    via: dict[str, str] | None = None


# An article the run is done with (archived, or skipped: already stored, too old, deferred)
# keeps only the hashes of its URLs, enough to tell a new alias from a URL seen before: the
# first in an IdMap, the others (rare) in a dict. A backfill holds one entry per article
# of the archive: ~16 bytes here, where an ArticleState with its URL strings took ~0.6 KB
# and a dict entry of the ID string to a tuple of hashes ~0.2 KB (tracemalloc).
# A category's listing pages remembered to notice a site that answers any page number with
# a page already read (page 1 is always kept, and the latest pages): keeping every ID of
# every page was ~75 bytes an article in a backfill.
LISTING_PAGES_KEPT = 8


class BaotintucSpider(scrapy.Spider):
    """Feeds, listings and sitemaps -> article pages, as the run's request says."""

    name = "baotintuc"

    def __init__(self, request: CrawlRequest | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request = request or current_request()
        req = self.request
        self.base_url = req.base_url  # the origin every request goes to (middlewares)
        self.categories: list[Category] = [
            cat for cat in (category_by_key(k) for k in req.categories) if cat is not None
        ]
        # IDs already stored (every article of the warehouse, in a backfill): as numbers.
        self.skip_ids = IdMap.of_keys(n for n in map(id_number, read_lines(req.skip_ids_file))
                                      if n is not None)
        self.recheck_urls: list[str] = read_lines(req.recheck_file)
        self.articles: dict[str, ArticleState] = {}  # IDs not settled yet
        self.settled = IdMap()  # ID -> hash of its first URL
        self.aliases: dict[int, set[int]] = {}  # settled ID -> hashes of its other URLs
        self.seen_pages: set[str] = set()
        self.print_views: set[str] = set()  # canonical print-view URLs reported
        self.bad_ids: set[str] = set()  # canonical URLs of links with an impossible ID17
        # category key -> IDs of its first listing page, and of its latest pages
        self.listed: dict[str, tuple[frozenset[int], deque[frozenset[int]]]] = {}
        self.requested = 0  # article fetches counted against the run's cap
        # Article requests handed to Scrapy and not answered yet, and the listing/sitemap
        # pages held back while there are too many (see _when_room).
        self.queued_articles = 0
        self.held_pages: deque[scrapy.Request] = deque()
        self.frontier = Frontier(req.frontier_file, req.since)
        logger.info(
            "baotintuc crawl %s: base_url=%s mode=%s since=%s max_pages=%s categories=%d "
            "feeds=%d sitemaps=%s cap=%s skip_ids=%d recheck=%d archive=%s/%s-*",
            req.run_id, req.base_url, req.mode, req.since, req.max_pages, len(self.categories),
            len(req.feeds), req.sitemaps, req.max_articles, len(self.skip_ids),
            len(self.recheck_urls), req.archive_dir, req.archive_prefix,
        )

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> BaotintucSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._on_idle, signal=signals.spider_idle)
        return spider

    # -- helpers -------------------------------------------------------------------

    def _inc(self, key: str, count: int = 1) -> None:
        crawler = getattr(self, "crawler", None)
        if crawler is not None and crawler.stats is not None:
            crawler.stats.inc_value(key, count)

    def _page_request(
        self, path_or_url: str, callback: Any, stage: str, **meta: Any
    ) -> scrapy.Request | None:
        """A feed/listing/sitemap request: revalidated through the HTTP cache, fetched once."""
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
            meta={"stage": stage, "canonical": to_canonical(url, self.base_url), **meta},
        )

    def _too_old(self, aid: str, margin: timedelta) -> bool:
        if self.request.since is None:
            return False
        created = id17_datetime(aid)
        return created is not None and created < vn_day_start(self.request.since) - margin

    def _cap_reached(self) -> bool:
        cap = self.request.max_articles
        return cap is not None and self.requested >= cap

    def _article_request(self, aid: str, canonical: str, via: str) -> scrapy.Request:
        return scrapy.Request(
            to_fetch_url(canonical, self.base_url),
            callback=self.parse_article,
            errback=self.on_error,
            dont_filter=True,
            # Articles before discovery pages keep the queue short in a poll; a backfill
            # reads sitemaps and listings as it fetches, so that their pages do not all
            # pile up at the end (measured: +60 MB resident in the spider at 10k articles).
            priority=0 if self.request.mode == "backfill" else 10,
            meta={"stage": "article", "article_id": aid, "canonical": canonical, "via": via,
                  "dont_cache": True},
        )

    def _url_too_long(self, canonical: str) -> str:
        """Why an article URL cannot be requested or stored as it is, or ``""``.

        Scrapy's ``UrlLengthMiddleware`` would drop the request without a trace, and the
        ``url`` column's bound would cut the stored URL: such a URL is a recorded failure.
        """
        fetch = to_fetch_url(canonical, self.base_url)
        crawler = getattr(self, "crawler", None)
        limit = crawler.settings.getint("URLLENGTH_LIMIT") if crawler is not None else 0
        if len(canonical) > MAX_URL_CHARS or (limit and len(fetch) > limit):
            return f"{len(canonical)} characters (at most {MAX_URL_CHARS})"
        return ""

    def _attempt(self, aid: str) -> Iterator[Any]:
        """The request for the ID's next URL that can be requested (a failure row for each
        that cannot); nothing when every URL was tried (then the ID has failed)."""
        st = self.articles.get(aid)
        if st is None:  # settled: nothing more to request
            return
        while st.tried < len(st.urls):
            url = st.urls[st.tried]
            st.tried += 1
            if why := self._url_too_long(url):
                self._inc("btt/url_too_long")
                logger.warning("article %s: URL too long, not requested: %s…", aid, url[:200])
                yield Failure(url=url, stage="article", reason="url_too_long", detail=why,
                              at=datetime.now(UTC), article_id=aid)
                continue
            st.state = "fetching"
            if st.tried > 1:
                self._inc("btt/alias_attempts")
                logger.info("article %s: trying its other URL %s", aid, url)
            self._queued(+1)
            via = st.via.pop(url, "") if st.via else ""
            if not st.via:
                st.via = None
            yield self._article_request(aid, url, via)
            return
        st.state = "failed"

    # -- a bounded queue -------------------------------------------------------------
    # A deep backfill reads listing and sitemap pages far faster than it can fetch the
    # articles they name; every waiting request is a few KB in Scrapy's scheduler, so an
    # unbounded queue made the spider's memory grow with the archive (measured: 20,000
    # waiting requests, +70 MB, at 40k articles). Past ``queued_articles`` the next
    # listing or sitemap page waits here (a few hundred at most, however deep the
    # archive); each answered article lets one go once the queue is down to half.

    def _queued(self, change: int) -> None:
        self.queued_articles = max(0, self.queued_articles + change)
        crawler = getattr(self, "crawler", None)
        if change > 0 and crawler is not None and crawler.stats is not None:
            crawler.stats.max_value("btt/queued_articles_max", self.queued_articles)

    def _when_room(self, req: scrapy.Request | None) -> Iterator[scrapy.Request]:
        """A listing or sitemap page request now, or held until the queue has room."""
        if req is None:
            return
        if self.queued_articles < self.request.queued_articles and not self.held_pages:
            yield req
            return
        self.held_pages.append(req)
        self._inc("btt/discovery_pages_held")

    def _release_page(self) -> Iterator[scrapy.Request]:
        """After an article is answered: one held page, once the queue is down to half."""
        if self.held_pages and self.queued_articles <= self.request.queued_articles // 2:
            yield self.held_pages.popleft()

    def _article_answered(self) -> Iterator[scrapy.Request]:
        self._queued(-1)
        yield from self._release_page()

    def _on_idle(self, spider: scrapy.Spider) -> None:
        """Nothing in flight but pages held back (a count went astray): send one."""
        if spider is self and self.held_pages:
            self.queued_articles = 0
            self.crawler.engine.crawl(self.held_pages.popleft())
            raise DontCloseSpider

    def found(self, href: str, page_url: str, via: str) -> Iterator[Any]:
        """Outputs for one link found in a feed, listing or sitemap: a discovery, maybe a
        request.

        A link shaped like an article URL whose ID17 is no date (month 13, day 32) is a
        ``bad_article_id`` failure under its own URL; a print view (``-n<ID17>``) is
        reported as such (the run's accounting records the ID as failed when no other
        URL of it turns up).
        """
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
            if m is None:
                return
            canonical = to_canonical(absolute, self.base_url)
            if m.group("prefix") == "n":  # print view: the article is found elsewhere
                if (id17_datetime(m.group("id")) is not None and not self._known(m.group("id"))
                        and canonical not in self.print_views):
                    self.print_views.add(canonical)
                    self._inc("btt/print_views")
                    yield Discovery(m.group("id"), canonical, via, "print_only")
                return
            if canonical in self.bad_ids:
                return
            self.bad_ids.add(canonical)
            self._inc("btt/bad_article_ids")
            logger.warning("%s links %s: %s is not an ID17 (no such date)", via, canonical,
                           m.group("id"))
            if len(self.bad_ids) <= MAX_BAD_ID_ROWS:
                stage = STAGE_OF_VIA.get(via.split(":", 1)[0], "listing")
                yield Failure(url=canonical, stage=stage, reason="bad_article_id",
                              detail=f"{m.group('id')} is no date", at=datetime.now(UTC))
            return
        canonical = to_canonical(absolute, self.base_url)
        yield from self._discover(aid, canonical, via)

    def _known(self, aid: str) -> bool:
        """The run has met this ID (it is waiting, being fetched, failed or settled)."""
        return aid in self.articles or int(aid) in self.settled

    def _settle(self, aid: str) -> None:
        """The run is done with this article: keep only what tells its URLs apart."""
        st = self.articles.pop(aid, None)
        if st is not None:
            number = int(aid)
            first, *others = (hash(u) for u in st.urls)
            self.settled[number] = first
            if others:
                self.aliases[number] = set(others)

    def _discover(self, aid: str, canonical: str, via: str) -> Iterator[Any]:
        number = int(aid)
        first = self.settled.get(number)
        if first is not None:  # settled: only a new URL of it is news
            key = hash(canonical)
            if key != first and key not in self.aliases.get(number, ()):
                self.aliases.setdefault(number, set()).add(key)
                self._inc("btt/alias_urls")
                yield Discovery(aid, canonical, via, "alias")
            return
        st = self.articles.get(aid)
        if st is not None:
            if canonical in st.urls:
                return
            st.urls.append(canonical)
            st.via = {**(st.via or {}), canonical: via}  # it may still be requested
            self._inc("btt/alias_urls")
            yield Discovery(aid, canonical, via, "alias")
            if st.state == "failed":  # every earlier URL failed: this one is the last hope
                yield from self._attempt(aid)
            return
        st = ArticleState([canonical], via={canonical: via})
        self.articles[aid] = st
        outcome: Outcome = "request"
        if self._too_old(aid, FETCH_MARGIN):
            outcome = "old"
        elif number in self.skip_ids:
            outcome = "known"
        elif via != "recheck" and self._cap_reached():
            outcome = "deferred"
        self._inc(f"btt/discovered_via/{via.split(':', 1)[0]}")
        yield Discovery(aid, canonical, via, outcome)
        if outcome != "request":
            self._settle(aid)
            return
        if via != "recheck":
            self.requested += 1
            self._inc("btt/article_requests")
        yield from self._attempt(aid)

    def _failure(
        self,
        response: Response,
        reason: str,
        detail: str = "",
        status: int | None = None,
    ) -> Failure:
        meta = response.meta
        stage = meta.get("stage", "article")
        url = meta.get("canonical") or to_canonical(response.url, self.base_url)
        logger.warning("%s %s failed: %s %s", stage, url, reason, detail)
        if stage in DISCOVERY_STAGES:
            self._inc("btt/pages_failed")
        return Failure(
            url=url,
            stage=stage,
            reason=reason,
            status=status if status is not None else response.status,
            detail=detail,
            at=datetime.now(UTC),
            article_id=meta.get("article_id"),
        )

    def _page_ok(self) -> None:
        self._inc("btt/pages_ok")

    # -- crawl -----------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        req = self.request
        for url in self.recheck_urls:  # stored articles due for a re-check
            for out in self.found(url, self.base_url + "/", "recheck"):
                yield out
        if req.mode in ("all", "rss"):
            for slug in req.feeds:
                r = self._page_request(f"/{slug}.rss", self.parse_feed, "feed", feed=slug)
                if r is not None:
                    yield r
            if req.discover_feed_index:
                r = self._page_request("/rss.htm", self.parse_feed_index, "feed_index")
                if r is not None:
                    yield r
        if req.sitemaps:
            r = self._page_request("/robots.txt", self.parse_robots, "sitemap")
            if r is not None:
                r.meta["dont_obey_robotstxt"] = True
                yield r
        if req.mode in ("all", "listings", "backfill"):
            for cat in self.categories:
                page = self.frontier.start_page(cat.key)
                if page is None:
                    self._inc("btt/backfill_categories_done")
                    continue
                r = self._page_request(cat.listing_page_path(page), self.parse_listing,
                                       "listing", category=cat.key, page=page)
                if r is not None:
                    yield r

    def parse_feed_index(self, response: Response) -> Iterator[Any]:
        """``/rss.htm``: every ``/<slug>.rss`` link not yet requested."""
        self._page_ok()
        for href in page_selector(response).css("a::attr(href)").getall():
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
        """An RSS/Atom feed, read by feedparser: each item's link (else its guid).

        An item whose link and guid, once the XML is decoded (entities included), are not
        an article URL of the site is *unresolvable*: counted, logged, and recorded as a
        ``feed_item_unresolvable`` failure of the feed (the first few per feed).
        """
        slug = response.meta.get("feed", "")
        if not response.body.strip():
            yield self._failure(response, "empty_body")
            return
        parsed = feedparser.parse(response.body)
        entries = parsed.get("entries") or []
        if not entries and parsed.get("version") and not parsed.get("bozo"):
            self._page_ok()  # a well-formed feed with no items (a quiet category)
            return
        if not entries:
            # Not a feed at all (an HTML page, garbage): take any article URL in it.
            text = response.body.decode("utf-8", "replace")
            links = re.findall(r"https?://[^\s\"'<>]+?-\d{17}\.htm", text)
            if not links:
                why = str(parsed.get("bozo_exception") or "no items")[:300]
                yield self._failure(response, "not_a_feed", why)
                return
            self._inc("btt/feed_not_rss")
            self._page_ok()
            for link in links:
                yield from self.found(link, response.url, f"rss:{slug}")
            return
        self._page_ok()
        unresolvable = 0
        for entry in entries:
            candidates = [entry.get("link"), *(lk.get("href") for lk in entry.get("links", [])),
                          entry.get("id")]
            link = next((c for c in candidates if c and article_id(urljoin(response.url, c))),
                        None) or next(  # a print view or an impossible ID17: found() says so
                (c for c in candidates
                 if c and ARTICLE_RE.search(urlsplit(urljoin(response.url, c)).path)), None)
            if link is None:
                unresolvable += 1
                self._inc("btt/feed_items_unresolvable")
                if unresolvable <= MAX_UNRESOLVABLE_PER_FEED:
                    shown = ", ".join(repr(c) for c in candidates if c)[:400] or "no link"
                    yield self._failure(response, "feed_item_unresolvable", shown, status=200)
                continue
            yield from self.found(link, response.url, f"rss:{slug}")

    def parse_robots(self, response: Response) -> Iterator[Any]:
        """robots.txt: its ``Sitemap:`` lines, else ``/sitemap.xml`` (tolerant: the live
        site's robots.txt and sitemaps have never been seen)."""
        urls = []
        if response.status == 200:
            urls = [u for u in sitemap_urls_from_robots(response.body, base_url=response.url)
                    if is_site_url(u, self.base_url)]
        if urls:
            logger.info("robots.txt names %d sitemaps", len(urls))
        else:
            logger.info("robots.txt names no sitemap: trying /sitemap.xml")
            urls = ["/sitemap.xml"]
        for url in urls:
            req = self._page_request(to_fetch_url(url, self.base_url), self.parse_sitemap,
                                     "sitemap")
            if req is not None:
                yield req

    def parse_sitemap(self, response: Response) -> Iterator[Any]:
        """A sitemap index (its sitemaps are requested) or a urlset (its article URLs)."""
        body = response.body
        if gzip_magic_number(response):
            try:
                body = gunzip(body, max_size=self.request.politeness.max_page_bytes)
            except Exception as err:
                yield self._failure(response, "bad_sitemap", f"gunzip: {err}")
                return
        try:
            sitemap = Sitemap(body)
        except Exception as err:  # not XML at all
            yield self._failure(response, "bad_sitemap", str(err)[:300])
            return
        self._page_ok()
        path = urlsplit(response.url).path
        if sitemap.type == "sitemapindex":
            for entry in sitemap:
                if self._sitemap_too_old(entry.get("lastmod")):
                    self._inc("btt/sitemaps_skipped_old")
                    continue
                yield from self._when_room(self._page_request(
                    to_fetch_url(entry["loc"], self.base_url), self.parse_sitemap, "sitemap"))
        elif sitemap.type == "urlset":
            for entry in sitemap:
                yield from self.found(entry["loc"], response.url, f"sitemap:{path}")
        else:
            yield self._failure(response, "bad_sitemap", f"root element {sitemap.type!r}")

    def _sitemap_too_old(self, lastmod: str | None) -> bool:
        """A child sitemap last modified before ``since`` lists nothing new enough."""
        if not lastmod or self.request.since is None:
            return False
        try:
            when = datetime.fromisoformat(lastmod.strip().replace("Z", "+00:00"))
        except ValueError:
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when < vn_day_start(self.request.since) - FETCH_MARGIN

    def parse_listing(self, response: Response) -> Iterator[Any]:
        """A category listing page: its 20 items + the top block, then the next page."""
        cat_key: str = response.meta.get("category", "")
        page: int = int(response.meta.get("page", 1))
        via = f"listing:{cat_key}:{page}"
        if not response.body.strip():
            yield self._failure(response, "empty_body")
            return
        self._page_ok()
        sel = page_selector(response)
        main = [
            li.css("a.title::attr(href)").get() or li.css("a.thumb::attr(href)").get() or ""
            for li in sel.css(MAIN_ITEMS)
        ]
        main = [h for h in main if h] or sel.css(OLD_ITEMS).getall()
        top = sel.css(TOP_LINKS).getall()
        if not main and not top and not sel.css(LISTING_SHELLS):
            # No known listing markup at all (a redesign): fall back to every article link.
            # A known shell with no items is an empty category, not a new layout.
            self._inc("btt/listing_layout_unknown")
            logger.warning("Listing %s: no known item markup; taking every article link", via)
            main = sel.css("a::attr(href)").getall()
        for href in [*top, *main]:
            yield from self.found(href, response.url, via)

        main_ids = [i for i in (article_id(urljoin(response.url, h)) for h in main) if i]
        numbers = frozenset(int(i) for i in main_ids)
        kept = self.listed.get(cat_key)
        repeating = kept is not None and bool(numbers) and numbers <= kept[0].union(*kept[1])
        if kept is None:
            self.listed[cat_key] = (numbers, deque(maxlen=LISTING_PAGES_KEPT))
        else:
            kept[1].append(numbers)
        self.frontier.reached(cat_key, page)
        max_pages = self.request.max_pages
        if (max_pages is not None and page >= max_pages) or not main_ids:
            self.frontier.finished(cat_key, page)
            return
        if repeating:
            # A site that answers any page number with a page already read (the last
            # page, page 1) would otherwise be paginated for ever in backfill mode.
            self._inc("btt/pagination_stopped_repeating")
            logger.warning("Listing %s repeats items of earlier pages: not paginating", via)
            return
        if self.request.since and all(self._too_old(i, PAGINATION_MARGIN) for i in main_ids):
            self._inc("btt/pagination_stopped_by_since")
            logger.info("Listing %s: every item is older than %s, not paginating", via,
                        self.request.since)
            self.frontier.finished(cat_key, page)
            return
        next_url = self.next_page_url(response, page, sel)
        if not next_url:
            self.frontier.finished(cat_key, page)
            return
        yield from self._when_room(self._page_request(
            next_url, self.parse_listing, "listing", category=cat_key, page=page + 1
        ))

    def next_page_url(self, response: Response, page: int,
                      sel: Selector | None = None) -> str | None:
        """The category's page N+1: its ``Tiếp`` link, else the ``/trang-<N+1>.htm`` pattern.

        A ``Tiếp`` link that leads anywhere but this category's page N+1 (back to page 1,
        into another category) is replaced by the pattern: followed, it would hide the
        category's later pages.
        """
        cat = category_by_key(response.meta.get("category", ""))
        info = listing_info(response.url)
        if cat is None and info is not None:
            slug, cat_id, parent_id, _ = info
            cat = Category(cat_id, slug, "", parent_id)
        expected = cat.listing_page_path(page + 1) if cat is not None else None
        sel = sel if sel is not None else page_selector(response)
        linked = False
        for a in sel.css(NEXT_LINKS):
            text = " ".join(a.css("::text").getall()).strip()
            href = (a.attrib.get("href") or "").strip()
            if text.startswith(NEXT_TEXT) and href and not href.startswith("javascript:"):
                linked = True
                absolute = urljoin(response.url, href)
                target = listing_info(absolute)
                if is_site_url(absolute, self.base_url) and (
                    cat is None or (target is not None and target[1] == cat.id
                                    and target[3] == page + 1)
                ):
                    return absolute
        if linked:
            if expected is not None:
                self._inc("btt/next_link_replaced")
                logger.warning("Listing %s page %d: its Tiếp link does not lead to page %d; "
                               "reading %s instead", response.url, page, page + 1, expected)
            return expected
        if info is None or sel.css(NEXT_LINKS):
            return None  # pagination markup without a `Tiếp` link: this is the last page
        if len(sel.css(MAIN_ITEMS)) < ITEMS_PER_PAGE:
            return None  # a short page is the last one
        return expected

    def parse_article(self, response: Response) -> Iterator[Any]:
        """Check an article response and archive it (or record why not, and try the ID's
        other URLs)."""
        aid: str = response.meta["article_id"]
        yield from self._article_answered()
        problem = self._check_article(response)
        if problem is not None:
            yield problem
            yield from self._give_up_or_retry(aid)
            return
        final_id = article_id(response.url)
        if final_id == aid:
            yield self._archive(aid, response)
            self._settle(aid)
            return
        # A redirect or a meta refresh took the request to another page of the site.
        target = to_canonical(response.url, self.base_url)
        if final_id is None:
            yield self._failure(response, "redirect_not_article", f"ended at {target}")
            yield from self._give_up_or_retry(aid)
            return
        yield self._failure(response, "redirect_other_article", f"ended at {target}")
        yield from self._give_up_or_retry(aid)
        yield from self._adopt(final_id, target, response, via=f"redirect:{aid}")

    def _adopt(self, aid: str, canonical: str, response: Response, via: str) -> Iterator[Any]:
        """A page fetched for another ID: account for its own ID, and archive it when
        that ID wants fetching now (instead of fetching it again)."""
        for out in self._discover(aid, canonical, via):
            if isinstance(out, scrapy.Request):  # scheduled just now: we hold its page
                self._queued(-1)  # never sent
                yield self._archive(aid, response)
                self._settle(aid)
            else:
                yield out

    def _give_up_or_retry(self, aid: str) -> Iterator[Any]:
        if aid not in self.articles:  # a request this run did not make (tests, by hand)
            return
        yield from self._attempt(aid)

    def _archive(self, aid: str, response: Response) -> RawArticle:
        return RawArticle(
            article_id=aid,
            url=to_canonical(response.url, self.base_url),
            fetch_url=response.url,
            status=response.status,
            headers=[
                (k.decode("latin-1"), v.decode("utf-8", "replace"))
                for k, values in response.headers.items()
                for v in values
            ],
            body=response.body,
            fetched_at=datetime.now(UTC),
            via=response.meta.get("via", ""),
        )

    def _check_article(self, response: Response) -> Failure | None:
        """Why an article response cannot be archived, or None."""
        body = response.body
        if response.status != 200:
            return self._failure(response, f"http_{response.status}")
        if "dataloss" in response.flags:
            return self._failure(response, "truncated", "dataloss flag")
        declared = response.headers.get(b"Content-Length")
        if (
            declared
            and declared.isdigit()
            and b"Content-Encoding" not in response.headers
            and len(body) < int(declared)
        ):
            return self._failure(response, "truncated", f"{len(body)} of {int(declared)} bytes")
        if not body.strip():
            return self._failure(response, "empty_body")
        ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        head = body[:1024].lstrip().lower()
        looks_html = head.startswith((b"<!doctype html", b"<html")) or b"<html" in head
        if (ctype and "html" not in ctype) or (not ctype and not looks_html) or b"\0" in head:
            return self._failure(response, "non_html", ctype or "no content type")
        bad = self._undecodable(response)
        if bad:
            return self._failure(response, "invalid_encoding", bad)
        return None

    def _undecodable(self, response: Response) -> str:
        """Why the page cannot be read as text, or ``""`` (a few bad bytes are kept).

        w3lib decodes it as browsers do (BOM, HTTP charset, ``<meta>`` charset, UTF-8).
        """
        ctype = response.headers.get(b"Content-Type")
        encoding, text = html_to_unicode(ctype.decode("latin-1") if ctype else None,
                                         response.body)
        bad = text.count("\ufffd")
        if not bad:
            return ""
        non_ascii = sum(1 for ch in text if ord(ch) > 127)
        if non_ascii >= 20 and bad / non_ascii > MAX_BAD_CHAR_SHARE:
            return f"{bad} of {non_ascii} non-ASCII characters are not {encoding}"
        self._inc("btt/invalid_bytes_kept")
        logger.warning("%s: %d invalid %s sequences; archived as is", response.url, bad, encoding)
        return ""

    def on_error(self, failure: TwistedFailure) -> Iterator[Any]:
        """Errback of every request: one failures.jsonl row under the URL the run asked
        for (not where a redirect went), then the ID's other URLs; the crawl goes on."""
        request = failure.request  # type: ignore[attr-defined]
        meta = request.meta
        reason, status, detail = classify_failure(failure)
        stage = meta.get("stage", "article")
        url = meta.get("canonical") or to_canonical(request.url, self.base_url)
        logger.warning("%s %s failed: %s (%s)", stage, url, reason, detail)
        if stage in DISCOVERY_STAGES:
            self._inc("btt/pages_failed")
        elif stage == "article":
            yield from self._article_answered()
        yield Failure(url=url, stage=stage, reason=reason, status=status, detail=detail,
                      at=datetime.now(UTC), article_id=meta.get("article_id"))
        if stage == "article" and meta.get("article_id") in self.articles:
            yield from self._give_up_or_retry(meta["article_id"])

    def closed(self, reason: str) -> None:
        self.frontier.save(force=True)
        ids = (ARTICLE_RE.search(urlsplit(u).path) for u in self.print_views)
        orphans = {m.group("id") for m in ids if m and not self._known(m.group("id"))}
        if orphans:
            logger.warning("%d articles were linked only as print views (not fetched; "
                           "recorded as print_view_only failures)", len(orphans))

