"""The ``ingest`` flow: discover → fetch (Scrapy subprocess) → clean → load (DuckDB).

Retries go on the I/O tasks only; the clean step is pure and re-runnable from the WARC
archive. Every run ends with two Prefect table artifacts (``ingest-summary``,
``ingest-quality``), a ``crawl_runs`` row and its ``run_quality`` rows. A layout-drift
alarm fails the run after loading only the rows that pass the gate.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from baotintuc.clock import id17_datetime
from baotintuc.urls import article_id
from config import Settings, load_settings
from crawler.archive import PART_SUFFIX, WarcWriter, iter_pages
from crawler.items import FetchFailure
from flows.clean import CleanResult, clean_pages
from flows.scorecard import GENERIC_PREFIX, LayoutDriftAlarm, Scorecard, is_filled, score
from flows.spider import CrawlOutput, CrawlRequest, crawl_lock, is_loopback, run_crawl
from warehouse.db import WarehouseLocked, connect, writer
from warehouse.load import KnownArticle, known_articles, load_run


@dataclass(slots=True)
class RunSummary:
    run_id: str
    base_url: str
    db_path: str
    started_at: str
    finished_at: str = ""
    status: str = "completed"
    discovered: int = 0
    skipped_known: int = 0
    rechecked: int = 0  # stored articles due for a re-check, requested again
    resumed: int = 0  # pages of an earlier, killed crawl loaded by this run
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    rejected: int = 0
    skipped_old: int = 0
    requests: int = 0
    not_modified: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    parser_versions: dict[str, int] = field(default_factory=dict)
    warc_path: str = ""

    def as_table(self) -> list[dict[str, Any]]:
        rows = [
            {"metric": k, "value": v}
            for k, v in asdict(self).items()
            if k not in ("failures_by_reason", "parser_versions")
        ]
        rows += [{"metric": f"failed: {k}", "value": v} for k, v in self.failures_by_reason.items()]
        rows += [{"metric": f"parser: {k}", "value": v} for k, v in self.parser_versions.items()]
        return rows


def _current_run_id() -> str:
    rid = flow_run.get_id()
    return str(rid) if rid else str(uuid.uuid4())


def due_for_recheck(
    published_at: datetime | None, fetched_at: datetime | None, now: datetime, settings: Settings
) -> bool:
    """The re-check policy: young articles are refetched once every interval.

    Young = published less than ``recheck_max_age_hours`` ago (by the page's date, else
    the ID17's creation time); due = last fetched ``recheck_interval_hours`` ago or more.
    """
    if published_at is None or fetched_at is None:
        return False
    young = timedelta(hours=settings.crawl.recheck_max_age_hours)
    interval = timedelta(hours=settings.crawl.recheck_interval_hours)
    return now - published_at < young and now - fetched_at >= interval


@task(name="plan-skip-ids", retries=2, retry_delay_seconds=[2, 5])
def plan_skip_ids(
    db_path: Path,
    settings: Settings,
    out: Path,
    recheck_out: Path | None = None,
    also_skip: frozenset[str] = frozenset(),
) -> tuple[int, int]:
    """Write the ID17s the spider must not fetch and the URLs it must re-check.

    Skipped: stored and not due for a re-check, plus ``also_skip`` (pages of a resumed
    crawl). Re-checked: at most ``recheck_max_per_run`` due articles, the longest unfetched
    first (the newest on a tie); due articles over that bound wait for the next run.
    Returns ``(skipped, rechecked)``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    known: dict[str, KnownArticle] = {}
    if db_path.exists():
        wh = settings.warehouse
        with connect(
            db_path,
            read_only=True,
            lock_timeout=wh.lock_timeout_seconds,
            retry_interval=wh.lock_retry_interval_seconds,
        ) as con:
            known = known_articles(con)
    now = datetime.now(UTC)
    due = [
        (k.fetched_at, -(k.published_at or now).timestamp(), aid, k.url)
        for aid, k in known.items()
        if aid not in also_skip
        and k.url
        and due_for_recheck(k.published_at or id17_datetime(aid), k.fetched_at, now, settings)
    ]
    recheck = sorted(due)[: settings.crawl.recheck_max_per_run] if recheck_out else []
    recheck_ids = {aid for _, _, aid, _ in recheck}
    skip = sorted((set(known) | set(also_skip)) - recheck_ids)
    out.write_text("".join(f"{a}\n" for a in skip), encoding="utf-8")
    if recheck_out is not None:
        recheck_out.write_text("".join(f"{url}\n" for *_, url in recheck), encoding="utf-8")
    return len(skip), len(recheck)


# -- resuming a killed crawl -------------------------------------------------------------
# A crawl killed before its load leaves its pages in its WARC (``.part`` if the spider
# died too). The run records its archive in ``<jobdir>/pending.json`` before crawling and
# clears it after loading; the next run of the same mode loads the pending archives with
# its own pages and does not fetch their articles again. Scrapy's JOBDIR queue is not
# used: with dont_filter requests, a resumed queue refetches what the new run rediscovers.
PENDING_FILE = "pending.json"


def pending_archives(jobdir: Path) -> list[Path]:
    """The WARCs of earlier crawls of this JOBDIR that were never loaded."""
    marker = jobdir / PENDING_FILE
    if not marker.exists():
        return []
    try:
        paths = [Path(p) for p in json.loads(marker.read_text(encoding="utf-8"))]
    except (ValueError, TypeError):
        get_run_logger().warning("unreadable %s: ignored", marker)
        return []
    found: list[Path] = []
    for path in paths:
        part = path.with_name(path.name + PART_SUFFIX)
        if not path.exists() and part.exists():
            # The spider died too: publish its complete records (a torn tail is dropped),
            # so the archive is whole for reextract and strict WARC readers.
            salvaged = path.with_name("salvaged-" + path.name)
            with WarcWriter(salvaged) as out:  # writes salvaged-*.part, not the spider's
                for page in iter_pages(part):
                    out.write_page(page)
            os.replace(salvaged, path)
            part.unlink()
        if path.exists() and path not in found:
            found.append(path)
    return found


def mark_pending(jobdir: Path, archives: list[Path]) -> None:
    tmp = jobdir / (PENDING_FILE + ".tmp")
    tmp.write_text(json.dumps([str(p) for p in archives]), encoding="utf-8")
    os.replace(tmp, jobdir / PENDING_FILE)


def archived_ids(archives: list[Path]) -> frozenset[str]:
    ids = (article_id(page.url) for path in archives for page in iter_pages(path))
    return frozenset(i for i in ids if i)


@task(name="discover-and-fetch", retries=1, retry_delay_seconds=10)
def discover_and_fetch(req: CrawlRequest, settings: Settings) -> CrawlOutput:
    return run_crawl(req, settings)


@task(name="clean", persist_result=False)
def clean(warc_path: Path, since: date | None, resumed: list[Path] | None = None) -> CleanResult:
    paths = [p for p in [*(resumed or []), warc_path] if p.exists()]
    if not paths:
        return CleanResult()
    return clean_pages(itertools.chain.from_iterable(iter_pages(p) for p in paths), since=since)


def _retry_unless_locked(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed load, but not a lock timeout: its wait already was the bound."""
    try:
        state.result()
    except WarehouseLocked:
        return False
    except Exception:
        return True
    return True


@task(
    name="load",
    retries=2,
    retry_delay_seconds=[5, 15],
    retry_condition_fn=_retry_unless_locked,
    persist_result=False,
)
def load(
    db_path: Path,
    settings: Settings,
    run: dict[str, Any],
    rows: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    card: Scorecard,
) -> Any:
    with writer(db_path, settings.warehouse) as con:
        return load_run(
            con,
            run,
            rows,
            failures,
            flow_run_id=run["flow_run_id"],
            protect_fields=True,
            quality=card.for_warehouse(),
        )


def hold_back_incomplete(
    rows: list[dict[str, Any]], card: Scorecard, gated: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """On a drift alarm, keep suspect rows out of the warehouse.

    Suspect = missing a gated field, or read by the generic fallback parser (which knows
    less than the site parser: stored rows must not be overwritten with it). They become
    failures (``quality_gate:<why>``); their raw pages stay in the WARC archive, so
    ``baotintuc reextract`` loads them once the parser is fixed.
    """
    if not card.alarms:
        return rows, []
    kept, held = [], []
    for row in rows:
        missing = [f for f in gated if not is_filled(row.get(f))]
        generic = str(row.get("parser_version", "")).startswith(GENERIC_PREFIX)
        if not missing and not generic:
            kept.append(row)
            continue
        held.append(
            FetchFailure(
                url=row["url"],
                stage="quality",
                reason=f"quality_gate:{missing[0] if missing else 'generic_parser'}",
                status=row.get("http_status"),
                detail=("missing " + ", ".join(missing)) if missing else row["parser_version"],
            ).to_json()
        )
    return kept, held


@flow(name="ingest-baotintuc", log_prints=True)
def ingest(
    base_url: str | None = None,
    db_path: str | None = None,
    since: date | None = None,
    max_pages: int | None = None,
    categories: list[str] | None = None,
    mode: str = "all",
) -> RunSummary:
    """Discover the newest articles, fetch the new ones, clean them and load them."""
    settings = load_settings()
    logger = get_run_logger()
    base = (base_url or settings.crawl.base_url).rstrip("/")
    db = Path(db_path) if db_path else settings.paths.db_path
    run_id = _current_run_id()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    run_dir = settings.paths.runs_dir / run_id
    warc = settings.paths.raw_dir / started.strftime("%Y-%m-%d") / f"{run_id}.warc.gz"
    summary = RunSummary(
        run_id=run_id,
        base_url=base,
        db_path=str(db),
        started_at=started.isoformat(),
        warc_path=str(warc),
    )

    # Extract: one crawl at a time per mode; a killed crawl's pages are loaded by the next.
    jobdir = settings.paths.data_dir / "jobs" / mode
    with crawl_lock(jobdir, settings.crawl.busy_wait_seconds):
        shutil.rmtree(jobdir / "state", ignore_errors=True)  # Scrapy JOBDIR of older versions
        resumed = pending_archives(jobdir)
        mark_pending(jobdir, [*resumed, warc])
        skip_file = run_dir / "skip_ids.txt"
        recheck_file = run_dir / "recheck_urls.txt"
        resumed_ids = archived_ids(resumed)
        summary.resumed = len(resumed_ids)
        summary.skipped_known, summary.rechecked = plan_skip_ids(
            db, settings, skip_file, recheck_file, resumed_ids
        )
        req = CrawlRequest(
            base_url=base,
            run_dir=run_dir,
            warc_path=warc,
            since=since,
            max_pages=max_pages or settings.crawl.max_pages,
            categories=categories or settings.crawl.categories,
            feeds=settings.crawl.feeds,
            skip_ids_file=skip_file,
            recheck_file=recheck_file,
            mode=mode,
            polite=not is_loopback(base) or settings.crawl.loopback_polite,
            httpcache_dir=settings.paths.data_dir / "httpcache",
        )
        crawl = discover_and_fetch(req, settings)

        # Transform
        cleaned = clean(crawl.warc_path, since, resumed)
        gated = list(settings.quality.min_fill_rate)
        card = score(
            cleaned.rows,
            settings.quality.min_fill_rate,
            max_generic_share=settings.quality.max_generic_parser_share,
            min_pages=settings.quality.min_pages_for_gate,
        )
        rows, held = hold_back_incomplete(cleaned.rows, card, gated)

        # Load
        failures = crawl.failures + cleaned.rejects + held
        stats = crawl.stats
        summary.discovered = len(crawl.discovered)
        summary.fetched = int(stats.get("fetched", 0))
        summary.requests = int(stats.get("requests", 0))
        summary.not_modified = int(stats.get("not_modified", 0))
        summary.bytes = int(stats.get("bytes", 0))
        summary.failed = len(crawl.failures)
        summary.rejected = len(cleaned.rejects) + len(held)
        summary.skipped_old = cleaned.skipped_old
        summary.parser_versions = dict(cleaned.parser_versions)
        reasons: dict[str, int] = {}
        for f in failures:
            reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
        summary.failures_by_reason = reasons
        summary.status = "drift_alarm" if card.alarms else "completed"
        summary.duration_s = round(time.monotonic() - t0, 2)
        run = {
            "run_id": run_id,
            "flow_run_id": str(flow_run.get_id() or ""),
            "started_at": started,
            "finished_at": datetime.now(UTC),
            "base_url": base,
            "params": {
                "since": since.isoformat() if since else None,
                "max_pages": req.max_pages,
                "categories": req.categories,
                "mode": mode,
            },
            "status": summary.status,
            "message": "; ".join(card.alarms) or None,
            "discovered": summary.discovered,
            "fetched": summary.fetched,
            "failed": summary.failed,
            "rejected": summary.rejected,
            "requests": summary.requests,
            "bytes": summary.bytes,
            "duration_s": summary.duration_s,
            "not_modified": summary.not_modified,
            "skipped_known": summary.skipped_known,
            "skipped_old": summary.skipped_old,
            "rechecked": summary.rechecked,
            "resumed": summary.resumed,
        }
        result = load(db, settings, run, rows, failures, card)
        (jobdir / PENDING_FILE).unlink(missing_ok=True)  # loaded: nothing left to resume
    summary.new, summary.updated, summary.unchanged = result.new, result.updated, result.unchanged
    summary.finished_at = datetime.now(UTC).isoformat()

    create_table_artifact(
        key="ingest-summary",
        table=summary.as_table(),
        description=f"baotintuc ingest {run_id}: {summary.new} new, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {summary.failed + summary.rejected} failed",
    )
    create_table_artifact(
        key="ingest-quality",
        table=card.as_table(),
        description=f"quality scorecard of {run_id}: "
        + ("; ".join(card.alarms) if card.alarms else "every gate passed"),
    )
    logger.info("run %s: %s", run_id, summary)
    if card.alarms:
        raise LayoutDriftAlarm(
            "layout drift: "
            + "; ".join(card.alarms)
            + f". {len(held)} suspect rows held back (see fetch_failures); "
            "stored rows were not overwritten"
        )
    return summary


if __name__ == "__main__":
    print(ingest())
