"""Turn archived pages into warehouse rows: parse each page, count what cannot be read."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from baotintuc.clock import vn_date
from baotintuc.parsers import ParseError, parse_article
from crawler.archive import RawPage
from crawler.items import FetchFailure

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CleanResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    skipped_old: int = 0
    parser_versions: Counter[str] = field(default_factory=Counter)


def clean_pages(pages: Iterable[RawPage], since: date | None = None) -> CleanResult:
    """Parse every page; a page no parser can read becomes a reject with its reason.

    With ``since``, articles published before that day (Vietnam time) are dropped and
    counted: listings carry no dates, so the crawl fetches a little more than needed.
    """
    result = CleanResult()
    for page in pages:
        try:
            article = parse_article(page.body, page.url)
        except ParseError as err:
            log.warning("reject %s: %s", page.url, err)
            result.rejects.append(_reject(page, f"parse_error:{err.reason}", err.detail))
            continue
        except Exception as err:  # a parser bug must not lose the rest of the run
            log.exception("parser crashed on %s", page.url)
            result.rejects.append(_reject(page, "parse_error:crash", repr(err)[:500]))
            continue
        if since and vn_date(article.published_at) < since:
            result.skipped_old += 1
            continue
        row = article.to_row()
        row["fetched_at"] = page.fetched_at
        row["http_status"] = page.status
        result.rows.append(row)
        result.parser_versions[article.parser_version] += 1
    return result


def _reject(page: RawPage, reason: str, detail: str) -> dict[str, Any]:
    return FetchFailure(page.url, "parse", reason, page.status, detail).to_json()
