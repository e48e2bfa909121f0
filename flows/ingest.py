"""The ``ingest`` flow: discover → fetch (Scrapy subprocess) → clean → load (DuckDB).

Retries go on the I/O tasks only; the clean step is pure and re-runnable from the WARC
archive. Every run ends with two Prefect table artifacts (``ingest-summary``,
``ingest-quality``), a ``crawl_runs`` row and its ``run_quality`` rows. A layout-drift
alarm fails the run after loading only the rows that pass the gate.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from config import Settings, load_settings
from crawler.archive import iter_pages
from flows.clean import CleanResult, clean_pages
from flows.scorecard import LayoutDriftAlarm, Scorecard, score
from flows.spider import CrawlOutput, CrawlRequest, crawl_lock, is_loopback, run_crawl
from warehouse.db import connect, writer
from warehouse.load import known_articles, load_run


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
    """The re-check policy: young articles are refetched once every interval."""
    if published_at is None or fetched_at is None:
        return False
    young = timedelta(hours=settings.crawl.recheck_max_age_hours)
    interval = timedelta(hours=settings.crawl.recheck_interval_hours)
    return now - published_at < young and now - fetched_at >= interval


@task(name="plan-skip-ids", retries=2, retry_delay_seconds=[2, 5])
def plan_skip_ids(db_path: Path, settings: Settings, out: Path) -> int:
    """Write the ID17s the spider must not fetch: stored and not due for a re-check."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if not db_path.exists():
        out.write_text("", encoding="utf-8")
        return 0
    wh = settings.warehouse
    with connect(
        db_path,
        read_only=True,
        lock_timeout=wh.lock_timeout_seconds,
        retry_interval=wh.lock_retry_interval_seconds,
    ) as con:
        known = known_articles(con)
    now = datetime.now(UTC)
    skip = sorted(
        aid
        for aid, k in known.items()
        if not due_for_recheck(k.published_at, k.fetched_at, now, settings)
    )
    out.write_text("".join(f"{a}\n" for a in skip), encoding="utf-8")
    return len(skip)


@task(name="discover-and-fetch", retries=1, retry_delay_seconds=10)
def discover_and_fetch(req: CrawlRequest, settings: Settings) -> CrawlOutput:
    return run_crawl(req, settings)


@task(name="clean", persist_result=False)
def clean(warc_path: Path, since: date | None) -> CleanResult:
    if not warc_path.exists():
        return CleanResult()
    return clean_pages(iter_pages(warc_path), since=since)


@task(name="load", retries=2, retry_delay_seconds=[5, 15], persist_result=False)
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
    """On a drift alarm, keep rows missing a gated field out of the warehouse.

    They become failures (``quality_gate:<field>``); their raw pages stay in the WARC
    archive, so ``baotintuc reextract`` loads them once the parser is fixed.
    """
    if not card.alarms:
        return rows, []
    kept, held = [], []
    now = datetime.now(UTC).isoformat()
    for row in rows:
        missing = [f for f in gated if not row.get(f)]
        if missing:
            held.append(
                {
                    "url": row["url"],
                    "stage": "quality",
                    "reason": f"quality_gate:{missing[0]}",
                    "status": row.get("http_status"),
                    "detail": "missing " + ", ".join(missing),
                    "at": now,
                }
            )
        else:
            kept.append(row)
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

    # Extract: one crawl at a time per mode; a killed crawl's JOBDIR is resumed.
    jobdir = settings.paths.data_dir / "jobs" / mode
    with crawl_lock(jobdir):
        skip_file = run_dir / "skip_ids.txt"
        summary.skipped_known = plan_skip_ids(db, settings, skip_file)
        req = CrawlRequest(
            base_url=base,
            run_dir=run_dir,
            warc_path=warc,
            since=since,
            max_pages=max_pages or settings.crawl.max_pages,
            categories=categories or settings.crawl.categories,
            feeds=settings.crawl.feeds,
            skip_ids_file=skip_file,
            mode=mode,
            polite=not is_loopback(base),
            httpcache_dir=settings.paths.data_dir / "httpcache",
            jobdir=jobdir / "state",
        )
        crawl = discover_and_fetch(req, settings)

        # Transform
        cleaned = clean(crawl.warc_path, since)
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
        }
        result = load(db, settings, run, rows, failures, card)
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
            + f". {len(held)} incomplete rows held back; stored rows were not overwritten"
        )
    return summary


if __name__ == "__main__":
    print(ingest())
