"""What the spider hands to the pipeline, and what the archive gives back.

* :class:`RawArticle`: one fetched article page, archived as a WARC ``response`` record.
* :class:`DiscoveredArticle`: one unique article found in a feed or a listing.
* :class:`FetchFailure`: one request that did not give an archivable page.
* :class:`RawPage`: one page read back from a WARC by :func:`crawler.archive.iter_pages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class RawPage:
    """A page as archived: canonical ``url``, the ``fetch_url`` really requested."""

    url: str
    fetch_url: str
    status: int
    headers: dict[str, str]
    body: bytes
    fetched_at: datetime


@dataclass(slots=True)
class RawArticle:
    """A fetched article page, to be written to the run's WARC."""

    article_id: str
    url: str  # canonical https://baotintuc.vn/...
    fetch_url: str  # the URL really requested (after redirects: the final one)
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    fetched_at: datetime
    via: str = ""

    def to_raw_page(self) -> RawPage:
        headers: dict[str, str] = {}
        for name, value in self.headers:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return RawPage(self.url, self.fetch_url, self.status, headers, self.body, self.fetched_at)


@dataclass(slots=True)
class DiscoveredArticle:
    """A unique article found (``via`` = ``rss:<slug>`` or ``listing:<cat key>:<page>``)."""

    article_id: str
    url: str
    via: str

    def to_json(self) -> dict[str, Any]:
        return {"article_id": self.article_id, "url": self.url, "via": self.via}


@dataclass(slots=True)
class FetchFailure:
    """A request that gave no usable page; ``reason`` is a code of docs/architecture.md."""

    url: str
    stage: str  # robots | feed | feed_index | listing | article
    reason: str
    status: int | None = None
    detail: str = ""
    at: datetime = field(default_factory=utc_now)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "stage": self.stage,
            "reason": self.reason,
            "status": self.status,
            "detail": self.detail,
            "at": self.at.isoformat(),
        }
