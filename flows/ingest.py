"""The ``ingest`` flow: discover → fetch (Scrapy subprocess) → transform → load, streaming.

The spider writes WARC segments; each closed segment is transformed and loaded as one
batch while the crawl goes on, so extraction overlaps fetching (two processes, two cores),
memory does not grow with the run, and a run cut short keeps what it fetched. Before any
fetch the run checks the warehouse and the origin; at the end it accounts for every
discovered article (discovered = stored + skipped + failed, per ID), decides whether the
run failed (nothing fetchable, too many failures, layout drift), and publishes its
artifacts. Every value of the run is resolved once into a
:class:`crawler.request.CrawlRequest`.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from baotintuc.clock import id17_datetime
from baotintuc.model import Failure
from config import Settings, get_settings
from crawler.archive import PART_SUFFIX, list_segments, publish_partial
from crawler.request import CrawlRequest
from flows.accounting import Accounting
from flows.batches import SegmentLoader, refresh_search_index
from flows.origin import OriginUnreachable, probe_origin
from flows.parse_pool import SegmentParser
from flows.progress import RunProgress
from flows.scorecard import LayoutDriftAlarm, Scorecard
from flows.spider import CrawlFailed, SpiderProcess, crawl_lock, read_jsonl
from warehouse.db import check_readable, reader, write
from warehouse.load import (
    KnownArticle,
    finish_run,
    known_articles,
    loaded_segments,
    record_urls,
    replace_failures,
    run_article_counts,
    start_run,
    stored_ids,
    unfinished_runs,
)

if TYPE_CHECKING:
    import duckdb  # annotations only: the warehouse package sets DuckDB up first

log = logging.getLogger(__name__)
POLL_S = 0.5


class RunFailed(RuntimeError):
    """The run completed its bookkeeping but must count as failed (the message says why)."""


@dataclass(slots=True)
class RunSummary:
    run_id: str
    base_url: str
    db_path: str
    mode: str
    started_at: str
    finished_at: str = ""
    status: str = "completed"
    message: str = ""
    discovered: int = 0
    stored: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    skipped_known: int = 0
    skipped_old: int = 0
    deferred: int = 0  # over the run's cap: fetched by a later run
    failed: int = 0  # discovered articles that failed (fetch, parse or gate)
    lost: int = 0  # discovered articles with no outcome (must stay 0)
    rechecked: int = 0
    resumed: int = 0  # pages of earlier, interrupted runs loaded by this run
    fetched: int = 0
    rejected: int = 0
    held: int = 0
    requests: int = 0
    not_modified: int = 0
    bytes: int = 0
    segments: int = 0
    cut_fields: int = 0
    future_dated: int = 0
    search_index: str = ""
    duration_s: float = 0.0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    parser_versions: dict[str, int] = field(default_factory=dict)
    discovered_via: dict[str, int] = field(default_factory=dict)

    def as_table(self) -> list[dict[str, Any]]:
        nested = ("failures_by_reason", "parser_versions", "discovered_via")
        rows = [{"metric": k, "value": v} for k, v in asdict(self).items() if k not in nested]
        rows += [{"metric": f"discovered via: {k}", "value": v}
                 for k, v in self.discovered_via.items()]
        rows += [{"metric": f"failed: {k}", "value": v} for k, v in self.failures_by_reason.items()]
        rows += [{"metric": f"parser: {k}", "value": v} for k, v in self.parser_versions.items()]
        return rows

    @property
    def invariant_holds(self) -> bool:
        return self.discovered == self.stored + self.skipped + self.failed and not self.lost


def _current_run_id() -> str:
    rid = flow_run.get_id()
    return str(rid) if rid else str(uuid.uuid4())


# -- planning -------------------------------------------------------------------------


def age_reference(published_at: datetime | None, article_id: str) -> datetime | None:
    """When an article was born, for the re-check policy: the earlier of its page date
    and its ID17 creation time, so a date in the future never makes it young forever."""
    candidates = [d for d in (published_at, id17_datetime(article_id)) if d is not None]
    return min(candidates) if candidates else None


def due_for_recheck(known: KnownArticle, article_id: str, now: datetime,
                    settings: Settings) -> bool:
    """Young articles (born less than ``recheck_max_age_hours`` ago) are refetched once
    every ``recheck_interval_hours``."""
    born = age_reference(known.published_at, article_id)
    if born is None or known.fetched_at is None:
        return False
    young = timedelta(hours=settings.crawl.recheck_max_age_hours)
    interval = timedelta(hours=settings.crawl.recheck_interval_hours)
    return now - born < young and now - known.fetched_at >= interval


@task(name="plan", retries=2, retry_delay_seconds=[2, 5], cache_policy=NO_CACHE)
def plan(db_path: Path, settings: Settings, req: CrawlRequest) -> tuple[int, int]:
    """Write the ID17s the spider must not fetch and the URLs it must re-check.

    Skipped: stored and not due for a re-check. Re-checked: at most
    ``recheck_max_per_run`` due articles, the longest unfetched first (the newest on a
    tie); the others wait for the next run. Returns ``(skipped, rechecked)``.
    """
    assert req.skip_ids_file is not None and req.recheck_file is not None
    req.run_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    born_after = now - timedelta(hours=settings.crawl.recheck_max_age_hours)
    due: list[tuple[datetime, float, str, str]] = []
    skipped = 0
    with req.skip_ids_file.open("w", encoding="utf-8") as fh:
        if db_path.exists():
            # Only the young can be due: a whole-site warehouse is not read into objects
            # (every stored article as one took ~0.4 KB, 400 MB for a million).
            with reader(db_path, settings.warehouse) as con:
                known = known_articles(con, born_after=born_after)
                due = sorted(
                    (k.fetched_at, -(age_reference(k.published_at, aid) or now).timestamp(),
                     aid, k.url)
                    for aid, k in known.items()
                    if k.url and due_for_recheck(k, aid, now, settings)
                )[: settings.crawl.recheck_max_per_run]
                recheck_ids = {aid for _, _, aid, _ in due}
                for aid in stored_ids(con):
                    if aid not in recheck_ids:
                        fh.write(aid + "\n")
                        skipped += 1
    req.recheck_file.write_text("".join(f"{url}\n" for *_, url in due), encoding="utf-8")
    return skipped, len(due)


# -- resuming interrupted runs ----------------------------------------------------------


def _pending_segments(req: CrawlRequest, done: set[str]) -> list[Path]:
    """Segments of a run not yet loaded; a killed spider's ``.part`` is salvaged first."""
    for part in sorted(req.archive_dir.glob(f"{req.archive_prefix}-*{PART_SUFFIX}")):
        publish_partial(part)
    return [p for p in list_segments(req.archive_dir, req.archive_prefix) if str(p) not in done]


@task(name="resume-interrupted", cache_policy=NO_CACHE)
def resume_interrupted(db_path: Path, settings: Settings, since: date | None,
                       flow_run_id: str | None, current_run: str) -> int:
    """Load what interrupted runs of this warehouse fetched, and close their books.

    A run killed before it finished left ``status = 'running'``; its request file says
    where its segments are. Segments not yet loaded are loaded under that run's id (and
    counted in its row), its spider failures and discovered URLs are recorded, and it is
    marked ``interrupted``, with the counts of everything it stored (before it died, and
    now). Returns the pages loaded.
    """
    if not db_path.exists():
        return 0
    with reader(db_path, settings.warehouse) as con:
        runs = [r for r, _ in unfinished_runs(con) if r != current_run]
        done = loaded_segments(con)
    pages = 0
    for run_id in runs:
        request_file = settings.paths.runs_dir / run_id / "request.json"
        message = f"interrupted; its fetched pages were loaded by run {current_run}"
        loader = SegmentLoader(db_path, settings, since, flow_run_id)
        counts: dict[str, Any] = {}
        if request_file.exists():
            req = CrawlRequest.read(request_file)
            for seg in _pending_segments(req, done):
                loader.load(seg, run_id)
            acc = Accounting()
            acc.add_discoveries(read_jsonl(req.run_dir / "discovered.jsonl"))
            failures = [Failure.from_json(f) for f in read_jsonl(req.run_dir / "failures.jsonl")]
            failures += acc.print_only_failures()

            def books(con: duckdb.DuckDBPyConnection, run_id: str = run_id,
                      req: CrawlRequest = req, acc: Accounting = acc,
                      failures: list[Failure] = failures) -> dict[str, Any]:
                replace_failures(con, run_id, failures, flow_run_id=flow_run_id)
                record_urls(con, run_id, req.run_dir / "discovered.jsonl")
                # What it loaded before it died and what was loaded for it just now.
                return {"discovered": acc.discovered, **run_article_counts(con, run_id)}

            counts = write(db_path, settings.warehouse, books,
                           what=f"the bookkeeping of interrupted run {run_id}")
            pages += loader.totals.pages
        else:
            message += " (its request file is gone: nothing to load)"
        write(db_path, settings.warehouse,
              partial(finish_run, run_id=run_id, status="interrupted", message=message,
                      **counts),
              what=f"the end of interrupted run {run_id}")
        log.warning("run %s was interrupted; %d of its pages loaded now", run_id,
                    loader.totals.pages)
    return pages


# -- the crawl, streamed into the warehouse ---------------------------------------------


@task(name="crawl-and-load", cache_policy=NO_CACHE)
def crawl_and_load(req: CrawlRequest, loader: SegmentLoader,
                   settings: Settings) -> dict[str, Any]:
    """Run the spider; load each segment as soon as it is closed. Returns its stats."""
    spider = SpiderProcess(req).start()
    done: set[str] = set()
    with RunProgress(req.run_id) as progress, \
            SegmentParser(settings.run.parse_workers, loader.since) as parser:
        try:
            while True:
                running = spider.running
                for seg in list_segments(req.archive_dir, req.archive_prefix):
                    if str(seg) not in done:
                        parser.add(seg)
                        done.add(str(seg))
                for seg, parsed in parser.ready():
                    loader.load(seg, req.run_id, parsed)
                progress.update(spider.progress(), loader.totals.loaded.stored_ids)
                if not running:
                    break
                time.sleep(POLL_S)
        finally:
            spider.stop(settings.run.stop_grace_seconds)
            spider.wait()
        # A spider that died leaves a .part: keep its complete pages.
        for seg in _pending_segments(req, done):
            parser.add(seg)
        for seg, parsed in parser.drain():
            loader.load(seg, req.run_id, parsed)
        stats = spider.stats()  # raises CrawlFailed if the spider did not finish
        progress.update(stats, loader.totals.loaded.stored_ids, final=True)
    return stats


# -- the verdict --------------------------------------------------------------------------


def verdict(stats: dict[str, Any], accounting: Accounting, failures: list[Failure],
            summary: RunSummary, card: Scorecard, settings: Settings) -> tuple[str, str]:
    """``(status, message)``: ``completed``, ``failed`` or ``drift_alarm``.

    A run where nothing could be fetched is a failure: every feed, listing and sitemap
    request failed, or more than ``run.max_failure_share`` of the articles it tried to
    fetch failed to arrive (once it tried at least ``run.min_fetches_for_failure_share``).
    """
    pages_ok, pages_failed = int(stats.get("pages_ok", 0)), int(stats.get("pages_failed", 0))
    if pages_failed and not pages_ok:
        return "failed", (
            f"nothing could be fetched: all {pages_failed} feed/listing/sitemap requests "
            f"failed ({_top_reasons(summary)})"
        )
    fetch_failed, tried = accounting.fetch_failures(failures)
    share = fetch_failed / tried if tried else 0.0
    r = settings.run
    if tried >= r.min_fetches_for_failure_share and share > r.max_failure_share:
        return "failed", (
            f"{fetch_failed} of {tried} articles could not be fetched ({share:.0%}, "
            f"allowed {r.max_failure_share:.0%}; {_top_reasons(summary)})"
        )
    if card.alarms:
        return "drift_alarm", "layout drift: " + "; ".join(card.alarms)
    return "completed", ""


def _top_reasons(summary: RunSummary) -> str:
    top = sorted(summary.failures_by_reason.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{k}: {v}" for k, v in top) or "no reason recorded"


# -- the flow -----------------------------------------------------------------------------


@flow(name="ingest-baotintuc", log_prints=True)
def ingest(
    base_url: str | None = None,
    db_path: str | None = None,
    since: date | None = None,
    max_pages: int | None = None,
    categories: list[str] | None = None,
    mode: str = "all",
    max_articles: int | None = None,
) -> RunSummary:
    """Discover the newest articles, fetch the new ones, transform and load them as the
    crawl goes. ``mode``: ``all`` (feeds + listings), ``rss``, ``listings``, ``backfill``
    (listings without a page bound, and sitemaps). ``max_articles``: the run's cap
    (default ``crawl.max_articles_per_run``; 0 = none)."""
    settings = get_settings()
    logger = get_run_logger()
    run_id = _current_run_id()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    db = Path(db_path) if db_path else settings.paths.db_path
    run_dir = settings.paths.runs_dir / run_id
    req = CrawlRequest.resolve(
        settings, run_id=run_id, mode=mode, base_url=base_url, since=since,
        max_pages=max_pages, categories=categories, max_articles=max_articles,
        run_dir=run_dir, archive_dir=settings.paths.raw_dir / started.strftime("%Y-%m-%d"),
        skip_ids_file=run_dir / "skip_ids.txt", recheck_file=run_dir / "recheck_urls.txt",
        frontier_file=db.with_name(db.name + ".backfill.json"),
    )
    # Before anything is fetched: a warehouse we cannot read, an origin we cannot reach.
    # The probe costs one TCP connect; on loopback (the mirror, a stand-in) a refused port
    # answers at once, and without it such a run spent minutes on retries to end "failed".
    check_readable(db, settings.warehouse)
    if why := probe_origin(req.base_url, settings.crawl.offline_probe_timeout):
        raise OriginUnreachable(req.base_url, why)

    summary = RunSummary(run_id=run_id, base_url=req.base_url, db_path=str(db), mode=mode,
                         started_at=started.isoformat())
    accounting = Accounting()
    flow_run_id = str(flow_run.get_id() or "") or None
    loader = SegmentLoader(db, settings, since, flow_run_id, accounting)
    with crawl_lock(db, settings.crawl.busy_wait_seconds):
        summary.resumed = resume_interrupted(db, settings, since, flow_run_id, run_id)
        write(db, settings.warehouse,
              partial(start_run, run_id=run_id, flow_run_id=flow_run_id, base_url=req.base_url,
                      mode=mode, params=_params(req), archive_prefix=req.archive_prefix,
                      started_at=started),
              what=f"the start of run {run_id}")
        _, summary.rechecked = plan(db, settings, req)
        try:
            stats = crawl_and_load(req, loader, settings)
        except CrawlFailed as err:
            _close_books(db, settings, req, accounting, loader, summary, {}, "failed", str(err))
            raise
        status, message = _close_books(db, settings, req, accounting, loader, summary, stats,
                                       None, None)
        if req.frontier_file is not None and stats.get("finish_reason") == "finished":
            req.frontier_file.unlink(missing_ok=True)  # the backfill is complete
        summary.search_index = refresh_search_index(db, settings)
    summary.duration_s = round(time.monotonic() - t0, 2)
    summary.segments = loader.totals.segments
    card = loader.gate.card()
    create_table_artifact(
        key="ingest-summary",
        table=summary.as_table(),
        description=f"baotintuc ingest {run_id}: {summary.new} new, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {summary.failed} failed; accounting "
        + ("holds" if summary.invariant_holds else f"LOST {summary.lost}")
        + (f"; {summary.deferred} deferred to the next run" if summary.deferred else ""),
    )
    create_table_artifact(
        key="ingest-quality",
        table=card.as_table(),
        description=f"quality scorecard of {run_id}: "
        + ("; ".join(card.alarms) if card.alarms else "every gate passed"),
    )
    logger.info("run %s: %s", run_id, summary)
    if status == "drift_alarm":
        raise LayoutDriftAlarm(
            f"{message}. {loader.totals.held} suspect rows held back (see fetch_failures); "
            "stored rows were not overwritten"
        )
    if status == "failed":
        raise RunFailed(message)
    return summary


def _params(req: CrawlRequest) -> dict[str, Any]:
    return {
        "mode": req.mode,
        "since": req.since.isoformat() if req.since else None,
        "max_pages": req.max_pages,
        "categories": list(req.categories),
        "max_articles": req.max_articles,
    }


def _close_books(
    db: Path,
    settings: Settings,
    req: CrawlRequest,
    accounting: Accounting,
    loader: SegmentLoader,
    summary: RunSummary,
    stats: dict[str, Any],
    status: str | None,
    message: str | None,
) -> tuple[str, str]:
    """Failures, discovered URLs, the invariant, the verdict, and the ``crawl_runs`` row."""
    discovered = req.run_dir / "discovered.jsonl"
    accounting.add_discoveries(read_jsonl(discovered))
    failures = [Failure.from_json(f) for f in read_jsonl(req.run_dir / "failures.jsonl")]
    failures += accounting.print_only_failures()
    accounting.add_failures(failures)
    lost = accounting.lost(read_jsonl(discovered))
    figures = accounting.check()
    t = loader.totals
    s = summary
    s.discovered, s.stored, s.skipped = figures["discovered"], figures["stored"], figures["skipped"]
    s.skipped_known, s.skipped_old = figures["skipped_known"], figures["skipped_old"]
    s.deferred = figures["deferred"]
    s.failed, s.lost = figures["failed"], figures["lost"]
    s.new, s.updated, s.unchanged = t.loaded.new, t.loaded.updated, t.loaded.unchanged
    s.rejected, s.held = t.rejected, t.held
    s.fetched = int(stats.get("fetched", 0))
    s.requests = int(stats.get("requests", 0))
    s.not_modified = int(stats.get("not_modified", 0))
    s.bytes = int(stats.get("bytes", 0))
    s.cut_fields = sum(t.cut.values())
    s.future_dated = t.future_dated
    s.parser_versions = dict(t.parser_versions.most_common())
    s.discovered_via = dict(accounting.via.most_common())
    reasons: dict[str, int] = {}
    with reader(db, settings.warehouse) as con:
        for reason, n in con.execute(
            "select reason, count(*) from fetch_failures where run_id = ? group by 1",
            [req.run_id],
        ).fetchall():
            reasons[str(reason)] = int(n)
    for f in [*failures, *lost]:
        reasons[f.reason] = reasons.get(f.reason, 0) + 1
    s.failures_by_reason = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
    if lost:
        log.error("run %s lost track of %d discovered articles (recorded as failures)",
                  req.run_id, len(lost))
    card = loader.gate.card()
    if status is None:
        status, message = verdict(stats, accounting, failures, s, card, settings)
    s.status, s.message = status, message or ""
    s.finished_at = datetime.now(UTC).isoformat()

    def books(con: duckdb.DuckDBPyConnection) -> None:
        replace_failures(con, req.run_id, [*failures, *lost], flow_run_id=loader.flow_run_id)
        record_urls(con, req.run_id, discovered)
        finish_run(
            con, req.run_id, status=status, message=message or None,
            quality=card.for_warehouse(),
            discovered=s.discovered, fetched=s.fetched, stored=s.stored, new=s.new,
            updated=s.updated, unchanged=s.unchanged, stale=t.loaded.stale,
            protected=t.loaded.protected, skipped=s.skipped, deferred=s.deferred,
            failed=s.failed, rejected=s.rejected + s.held, lost=s.lost,
            requests=s.requests, bytes=s.bytes,
            stats={"skipped_known": s.skipped_known, "skipped_old": s.skipped_old,
                   "rechecked": s.rechecked, "resumed": s.resumed,
                   "not_modified": s.not_modified, "segments": t.segments,
                   "discovered_via": s.discovered_via, "cut_fields": dict(t.cut),
                   "future_dated": s.future_dated, "spider": stats},
        )

    write(db, settings.warehouse, books, what=f"the bookkeeping of run {req.run_id}")
    return status, message or ""


if __name__ == "__main__":
    print(ingest())
