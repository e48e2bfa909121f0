"""The transform stage, shared by ``ingest`` and ``reextract``:
parse → since-filter → score → hold back.

:func:`parse_pages` is pure and stateless (it runs wherever the pages are: in the flow's
process, or on Dask workers for a re-extraction); :class:`Gate` is the stateful part that
scores the run batch by batch and, when the layout-drift alarm is up, holds back the rows
that would store worse data. Nothing here imports Prefect.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from baotintuc.clock import id17_datetime, vn_date
from baotintuc.model import Article, Failure, ParseError, is_filled
from baotintuc.parsers import parse_article
from baotintuc.urls import article_id
from config import QualitySettings
from crawler.archive import iter_pages
from crawler.items import RawPage
from flows.scorecard import ScoreAccumulator, Scorecard, is_generic

log = logging.getLogger(__name__)

# A page date more than this after the fetch (or the ID17 creation time) is in the future.
FUTURE_TOLERANCE = timedelta(days=1)


# An archived article fetch: article ID, fetched at, and the record's number in its file
# (crawler.archive.iter_pages's numbering of complete response records).
Fetch = tuple[str, datetime, int]


@dataclass(slots=True)
class Parsed:
    """What parsing some pages gave: articles to load, rejects, and counts.

    ``fetches`` is set only by :func:`parse_archive`, which reads a whole file: every
    article page in it (parsed or not), so the loader can record where each fetch is.
    """

    articles: list[Article] = field(default_factory=list)
    rejects: list[Failure] = field(default_factory=list)
    skipped_old: list[str] = field(default_factory=list)  # article IDs before ``since``
    pages: int = 0
    parser_versions: Counter[str] = field(default_factory=Counter)
    cut: Counter[str] = field(default_factory=Counter)  # field → articles cut to its bound
    future_dated: int = 0
    fetches: list[Fetch] | None = None

    def extend(self, other: Parsed) -> None:
        self.articles += other.articles
        self.rejects += other.rejects
        self.skipped_old += other.skipped_old
        self.pages += other.pages
        self.parser_versions.update(other.parser_versions)
        self.cut.update(other.cut)
        self.future_dated += other.future_dated
        self.fetches = None  # no longer one file's


def _flag_future(article: Article) -> bool:
    """Mark a page date that lies in the future of its fetch (or creation) time."""
    now = article.fetched_at or id17_datetime(article.article_id)
    if now is None or article.published_at <= now + FUTURE_TOLERANCE:
        return False
    article.warnings.append("future_date")
    return True


def parse_pages(pages: Iterable[RawPage], since: date | None = None) -> Parsed:
    """Parse every page; a page no parser can read becomes a reject with its reason.

    With ``since``, articles published before that day (Vietnam time) are dropped and
    counted: listings carry no dates, so the crawl fetches a little more than needed.
    """
    out = Parsed()
    for page in pages:
        out.pages += 1
        try:
            article = parse_article(page.body, page.url, page.fetched_at)
        except ParseError as err:
            log.warning("reject %s: %s", page.url, err)
            out.rejects.append(_reject(page, f"parse_error:{err.reason}", err.detail))
            continue
        except Exception as err:  # a parser bug must not lose the rest of the run
            log.exception("parser crashed on %s", page.url)
            out.rejects.append(_reject(page, "parse_error:crash", repr(err)[:500]))
            continue
        if since and vn_date(article.published_at) < since:
            out.skipped_old.append(article.article_id)
            continue
        out.future_dated += _flag_future(article)
        out.cut.update(w.split(":", 1)[1] for w in article.warnings if w.startswith(("cut:",
                                                                                      "capped:")))
        out.parser_versions[article.parser_version] += 1
        out.articles.append(article)
    return out


def archive_pages(path: str, fetches: list[Fetch]) -> Iterator[RawPage]:
    """The pages of one archive file, appending each article page's :data:`Fetch` to
    ``fetches`` as it goes: the one numbering of records that ``reextract`` selects by."""
    for record, page in enumerate(iter_pages(path)):
        aid = article_id(page.url)
        if aid:
            fetches.append((aid, page.fetched_at, record))
        yield page


def parse_archive(path: str, since: date | None = None) -> Parsed:
    """:func:`parse_pages` over one archive segment (the unit of parallel work), with
    the list of its article fetches."""
    fetches: list[Fetch] = []
    parsed = parse_pages(archive_pages(path, fetches), since)
    parsed.fetches = fetches
    return parsed


def _reject(page: RawPage, reason: str, detail: str) -> Failure:
    return Failure(page.url, "parse", reason, page.status, detail,
                   article_id=article_id(page.url))


@dataclass(slots=True)
class Gate:
    """The layout-drift gate over a run, judged batch by batch.

    A batch of at least ``min_pages_for_gate`` rows is judged on its own rows; a smaller
    one on the run so far. When the judged card alarms, rows that miss a gated field or
    were read by the generic fallback parser are held back as ``quality_gate:<why>``
    failures: their raw pages stay in the archive, so ``reextract`` loads them once the
    parser is fixed.
    """

    settings: QualitySettings
    run: ScoreAccumulator = field(init=False)
    alarms: list[str] = field(default_factory=list)
    held: int = 0

    def __post_init__(self) -> None:
        self.run = self._accumulator()

    def _accumulator(self) -> ScoreAccumulator:
        q = self.settings
        return ScoreAccumulator(dict(q.min_fill_rate), q.max_generic_parser_share,
                                q.min_pages_for_gate)

    @property
    def gated(self) -> list[str]:
        return list(self.settings.min_fill_rate)

    def apply(self, articles: list[Article]) -> tuple[list[Article], list[Failure]]:
        """``(kept, held)`` for one batch; the run's scorecard counts every row."""
        self.run.add(articles)
        batch = self._accumulator().add(articles)
        judged = batch if batch.pages >= self.settings.min_pages_for_gate else self.run
        card = judged.card()
        if not card.alarms:
            return articles, []
        for alarm in card.alarms:
            if alarm not in self.alarms:
                self.alarms.append(alarm)
        kept: list[Article] = []
        held: list[Failure] = []
        for art in articles:
            missing = [f for f in self.gated if not is_filled(getattr(art, f, None))]
            if not missing and not is_generic(art):
                kept.append(art)
                continue
            held.append(Failure(
                url=art.url, stage="quality",
                reason=f"quality_gate:{missing[0] if missing else 'generic_parser'}",
                detail=("missing " + ", ".join(missing)) if missing else art.parser_version,
                article_id=art.article_id,
            ))
        self.held += len(held)
        return kept, held

    def card(self) -> Scorecard:
        card = self.run.card()
        card.alarms = list(self.alarms)
        return card


__all__ = ["Gate", "Parsed", "parse_archive", "parse_pages"]
