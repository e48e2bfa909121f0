"""What the spider hands to the pipeline, and what the archive gives back.

* :class:`RawArticle`: one fetched article page, archived as a WARC ``response`` record.
* :class:`Discovery`: one article URL found in a feed, listing, sitemap or redirect, and
  what the spider decided about it.
* :class:`baotintuc.model.Failure`: one URL that gave no archivable page.
* :class:`RawPage`: one page read back from a WARC by :func:`crawler.archive.iter_pages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from baotintuc.model import Failure

# What the spider decided about a discovered URL:
#   request  - fetched (its outcome is a WARC record or a failure row)
#   alias    - another URL of an ID already discovered (fetched only if the others fail)
#   known    - stored already and not due for a re-check
#   old      - created before ``since`` (minus a margin)
#   deferred - over the run's cap: waits for the next run
#   print_only - a print view (``-n<ID17>``), never fetched; an ID found only so is
#                recorded as a ``print_view_only`` failure by the run's accounting
Outcome = Literal["request", "alias", "known", "old", "deferred", "print_only"]


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
class Discovery:
    """An article URL found (``via`` = ``rss:<slug>``, ``listing:<key>:<page>``,
    ``sitemap:<path>``, ``recheck`` or ``redirect:<ID17>``) and the spider's decision."""

    article_id: str
    url: str
    via: str
    outcome: Outcome
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {"article_id": self.article_id, "url": self.url, "via": self.via,
                "outcome": self.outcome, "at": self.at.isoformat()}


__all__ = ["Discovery", "Failure", "Outcome", "RawArticle", "RawPage"]
