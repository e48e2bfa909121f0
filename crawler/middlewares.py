"""Downloader middlewares of the baotintuc crawl.

* :class:`OffsiteGuardMiddleware` (before everything): no request ever leaves the origin
  of the spider's ``base_url``.
* :class:`BackoffRetryMiddleware` (replaces Scrapy's retry): exponential backoff and
  ``Retry-After``, waiting without blocking the reactor.
* :class:`RedirectGuardMiddleware` (sees responses before the redirect middleware):
  redirects to another origin (``redirect_offsite``) and redirect loops (``redirect_loop``).
* :class:`WireStatsMiddleware` (next to the downloader): what really went over the wire,
  ``304 Not Modified`` answers included (the HTTP cache turns them into cached 200s).
"""

from __future__ import annotations

import logging
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.asyncio import sleep
from scrapy.utils.response import response_status_message

from baotintuc.urls import same_origin

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class RequestRejected(IgnoreRequest):
    """A request refused by our own guards; ``reason`` is a failures.jsonl code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _base_url(crawler: Crawler) -> str:
    """The origin of the run (the spider's, from its request)."""
    base = getattr(crawler.spider, "base_url", None)
    if not base:
        raise RuntimeError("the spider has no base_url")
    return str(base)


class OffsiteGuardMiddleware:
    """Refuse every request whose scheme/host/port differ from the spider's ``base_url``.

    The spider never builds such requests, so one reaching this point comes from a
    redirect (HTTP or meta refresh): it fails with ``redirect_offsite``.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        base = _base_url(self.crawler)
        if same_origin(request.url, base):
            return
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("btt/redirect_offsite")
        logger.warning("Blocked a request to another origin than %s: %s", base, request.url)
        raise RequestRejected("redirect_offsite", request.url)


class RedirectGuardMiddleware:
    """Stop redirects that leave the origin or come back to a URL already in the chain."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.max_redirects = crawler.settings.getint("REDIRECT_MAX_TIMES")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status not in REDIRECT_CODES or b"Location" not in response.headers:
            return response
        location = response.headers[b"Location"].decode("latin-1")
        target = urljoin(request.url, location)
        assert self.crawler.stats is not None
        if not same_origin(target, _base_url(self.crawler)):
            self.crawler.stats.inc_value("btt/redirect_offsite")
            logger.warning("Not following redirect of %s to another origin: %s", request, target)
            raise RequestRejected("redirect_offsite", f"{request.url} -> {target}")
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if target in chain or len(chain) > self.max_redirects:
            self.crawler.stats.inc_value("btt/redirect_loop")
            logger.warning("Redirect loop: %s", " -> ".join([*chain, target]))
            raise RequestRejected("redirect_loop", " -> ".join([*chain, target]))
        return response


def retry_after_seconds(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry with exponential backoff and ``Retry-After``, waiting asynchronously.

    Delay before retry ``n`` (1-based): ``RETRY_BACKOFF_BASE * 2 ** (n - 1)``, or the
    response's ``Retry-After``, capped at ``RETRY_BACKOFF_MAX`` seconds. The wait is an
    ``await`` on the reactor's clock: other downloads go on meanwhile.
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 2.0)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", 120.0)

    def backoff_delay(self, retry_times: int, response: Response | None = None) -> float:
        delay = self.backoff_base * 2 ** max(0, retry_times - 1)
        if response is not None:
            after = retry_after_seconds(response.headers.get(b"Retry-After"))
            if after is not None:
                delay = after
        return max(0.0, min(delay, self.backoff_max))

    async def _wait(self, retry: Request, response: Response | None, reason: str) -> Request:
        delay = self.backoff_delay(int(retry.meta.get("retry_times", 1)), response)
        if delay > 0:
            logger.info("Retrying %s in %.1f s (%s)", retry.url, delay, reason)
            await sleep(delay)
        return retry

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        reason = response_status_message(response.status)
        retry = self._retry(request, reason)
        if retry is None:
            return response
        return await self._wait(retry, response, reason)

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception
    ) -> Request | Response | None:
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get(
            "dont_retry", False
        ):
            return None
        retry = self._retry(request, exception)
        if retry is None:
            return None
        return await self._wait(retry, None, type(exception).__name__)


class WireStatsMiddleware:
    """Count requests, responses, body bytes and 304s as they cross the network.

    Sits next to the downloader (after the HTTP cache), so cache hits are not counted
    and a revalidated page counts as ``not_modified``.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("btt/requests")

    def process_response(self, request: Request, response: Response) -> Response:
        if "cached" in response.flags:
            return response
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("btt/responses")
        stats.inc_value("btt/bytes", len(response.body))
        if response.status == 304:
            stats.inc_value("btt/not_modified")
        return response
