"""The ``reextract`` flow: re-parse the raw WARC archive with the current code.

No network request is made. The archive of the warehouse (the segments its runs loaded,
and the whole-run WARCs of older versions) is where every article's fetches are; the
newest fetch of each goes through the same transform as ``ingest`` (parse →
since-filter → score → hold back), and the loader writes only the rows whose extraction
changed, with the drift gate and protected fields on: re-parsing while the layout has
drifted cannot overwrite good stored rows with empty ones.

Where the fetches are is recorded when a segment is loaded (``archive_fetches``), so each
file is read once, by its parse. A file without a record (written before there were
records, or changed in size since) is scanned first, and its record is written then, so
the next re-extraction reads it once too.

Reading is the parallel part: the scans (a few archives per task) and the parse (one
archive per task) run as Prefect tasks on the flow's task runner, a Dask cluster when
``dask_address`` is given (or a local one with ``workers``); loading stays in the flow's
process, one writer.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from config import Settings, get_settings
from crawler.archive import iter_pages
from flows.batches import SegmentLoader, manifest_of, refresh_search_index
from flows.scorecard import LayoutDriftAlarm
from flows.transform import Fetch, Parsed, archive_pages, parse_pages
from warehouse.db import check_readable, reader, transaction, write
from warehouse.load import Manifest, finish_run, record_manifests, start_run

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReextractSummary:
    run_id: str
    archives: int = 0
    scanned: int = 0  # archives read twice: their fetches were not recorded
    pages: int = 0  # archived fetches read
    newest: int = 0  # articles (their newest fetch is re-parsed)
    parsed: int = 0
    rejected: int = 0
    held: int = 0
    not_stored: int = 0  # archived but not in the database: added now
    changed: int = 0
    unchanged: int = 0
    workers: str = "local"
    search_index: str = ""
    fields_changed: dict[str, int] = field(default_factory=dict)


def archives_of(db_path: Path, settings: Settings) -> list[Path]:
    """The archive files of this warehouse: the segments its runs loaded, plus whole-run
    WARCs of runs it knows (written before segments), in time order."""
    with reader(db_path, settings.warehouse) as con:
        segments = [str(r[0]) for r in con.execute(
            "select path from archive_segments order by loaded_at, path").fetchall()]
        runs = {str(r[0]) for r in con.execute("select run_id from crawl_runs").fetchall()}
    found = [Path(p) for p in segments if Path(p).exists()]
    seen = set(found)
    raw = settings.paths.raw_dir
    if raw.is_dir():
        for path in sorted(raw.rglob("*.warc.gz")):
            if path not in seen and path.name.removesuffix(".warc.gz") in runs:
                found.append(path)
    missing = len(segments) - len([p for p in segments if Path(p).exists()])
    if missing:
        log.warning("%d archive segments recorded in %s are gone from disk", missing, db_path)
    return found


SCAN_CHUNK = 4  # archives per scan task: ~800 pages, a second of work, few task runs
MANIFEST_WRITE = 50  # scanned archives recorded per write


def scan_fetches(paths: list[str]) -> list[tuple[int, list[Fetch]]]:
    """For each archive: ``(pages, fetches)``, keeping only what identifies a record.

    The numbering is :func:`flows.transform.archive_pages`'s (:func:`iter_pages`'s
    complete response records), the one the loader records and :func:`parse_segment`
    selects by.
    """
    out = []
    for path in paths:
        fetches: list[Fetch] = []
        pages = sum(1 for _ in archive_pages(path, fetches))
        out.append((pages, fetches))
    return out


@task(name="scan-archive", cache_policy=NO_CACHE, persist_result=False)
def scan_chunk(paths: list[str]) -> list[tuple[int, list[Fetch]]]:
    """:func:`scan_fetches` as a task: the scan is spread over the workers too."""
    return scan_fetches(paths)


def recorded_archives(db_path: Path, settings: Settings, archives: list[Path]) -> set[Path]:
    """The archives whose fetches are recorded, for a file of the size it has now."""
    with reader(db_path, settings.warehouse) as con:
        if not con.execute("select count(*) from duckdb_tables() "
                           "where table_name = 'archive_manifests'").fetchone()[0]:
            return set()  # a warehouse not opened read-write since migration 011
        sizes = dict(con.execute("select path, bytes from archive_manifests").fetchall())
    found = set()
    for path in archives:
        try:
            if sizes.get(str(path)) == path.stat().st_size:
                found.add(path)
        except OSError:
            continue
    return found


def record_scans(db_path: Path, settings: Settings, archives: list[Path]) -> None:
    """Scan ``archives`` on the flow's task runner and record their fetches, a few
    writes for the lot; each scan result is let go once recorded."""
    names = [str(p) for p in archives]
    futures = deque(scan_chunk.submit(names[i:i + SCAN_CHUNK])
                    for i in range(0, len(names), SCAN_CHUNK))
    todo = deque(archives)
    batch: list[Manifest] = []
    while futures:
        for pages, fetches in futures.popleft().result():
            manifest = manifest_of(todo.popleft(), pages, fetches)
            if manifest is not None:
                batch.append(manifest)
        if len(batch) >= MANIFEST_WRITE or not futures:
            write(db_path, settings.warehouse, partial(_record, manifests=batch),
                  what=f"the fetch records of {len(batch)} archives")
            batch = []


def _record(con: Any, manifests: list[Manifest]) -> None:
    with transaction(con):
        record_manifests(con, manifests)


def newest_records(db_path: Path, settings: Settings,
                   archives: list[Path]) -> tuple[int, dict[Path, list[int]]]:
    """``(pages, {archive: record numbers})``: where each article's newest fetch is, from
    the recorded fetches of ``archives`` (in time order: of two fetches at the same
    instant, the later archive's, then the later record, wins), so that the parse (the
    expensive part) runs once per article, not once per fetch."""
    names = [str(p) for p in archives]
    with reader(db_path, settings.warehouse) as con:
        row = con.execute(
            "select coalesce(sum(pages), 0) from archive_manifests "
            "where path in (select unnest(?::varchar[]))", [names]).fetchone()
        pages = int(row[0]) if row else 0
        rows = con.execute(
            """
            with wanted as (select unnest(?::varchar[]) as path,
                                   unnest(range(?::bigint)) as i),
            ranked as (
                select f.path, f.record, row_number() over (
                    partition by f.article_id
                    order by f.fetched_at desc, w.i desc, f.record desc) as rank
                from archive_fetches f join wanted w using (path)
            )
            select path, list(record order by record) from ranked where rank = 1
            group by path
            """, [names, len(names)]).fetchall()
    return pages, {Path(p): list(r) for p, r in rows}


@task(name="parse-archive", cache_policy=NO_CACHE, persist_result=False)
def parse_segment(path: str, records: list[int], since: date | None) -> Parsed:
    """Parse the wanted records of one archive file (runs on any worker)."""
    wanted = set(records)
    pages = (p for r, p in enumerate(iter_pages(path)) if r in wanted)
    return parse_pages(pages, since)


@flow(name="reextract-baotintuc", log_prints=True)
def reextract(db_path: str | None = None, since: date | None = None,
              in_flight: int = 4) -> ReextractSummary:
    """Re-parse archived pages and update the rows whose extraction changed.

    ``in_flight`` bounds the segments parsed ahead of the loader (memory stays flat).
    """
    settings = get_settings()
    logger = get_run_logger()
    db = Path(db_path) if db_path else settings.paths.db_path
    check_readable(db, settings.warehouse)
    run_id = str(flow_run.get_id() or uuid.uuid4())
    summary = ReextractSummary(run_id=run_id)
    archives = archives_of(db, settings)
    summary.archives = len(archives)
    recorded = recorded_archives(db, settings, archives)
    unrecorded = [p for p in archives if p not in recorded]
    summary.scanned = len(unrecorded)
    if unrecorded:
        logger.info("scanning %d of %d archives whose fetches are not recorded yet",
                    len(unrecorded), len(archives))
        record_scans(db, settings, unrecorded)
    summary.pages, wanted = newest_records(db, settings, archives)
    summary.newest = sum(len(v) for v in wanted.values())
    flow_run_id = str(flow_run.get_id() or "") or None
    loader = SegmentLoader(db, settings, since, flow_run_id)
    write(db, settings.warehouse,
          partial(start_run, run_id=run_id, flow_run_id=flow_run_id, base_url="warc-archive",
                  mode="reextract", params={"since": since.isoformat() if since else None}),
          what=f"the start of run {run_id}")
    pending: deque[tuple[Path, Any]] = deque()
    jobs = [(p, wanted[p]) for p in archives if p in wanted]
    for path, records in jobs:
        pending.append((path, parse_segment.submit(str(path), records, since)))
        while len(pending) >= max(1, in_flight):
            _load_next(pending, loader, run_id)
    while pending:
        _load_next(pending, loader, run_id)
    t = loader.totals
    summary.parsed = sum(t.parser_versions.values())
    summary.rejected, summary.held = t.rejected, t.held
    summary.not_stored = t.loaded.new
    summary.changed = t.loaded.updated + (t.loaded.written - t.loaded.new - t.loaded.updated)
    summary.unchanged = t.loaded.stored_ids - t.loaded.new - summary.changed
    summary.fields_changed = {k: v for k, v in t.loaded.changed_fields.items()
                              if k != "fetched_at"}
    summary.search_index = refresh_search_index(db, settings)
    card = loader.gate.card()
    status = "drift_alarm" if card.alarms else "completed"
    write(db, settings.warehouse,
          partial(finish_run, run_id=run_id, status=status,
                  message="; ".join(card.alarms) or None, quality=card.for_warehouse(),
                  stored=t.loaded.stored_ids, new=t.loaded.new, updated=t.loaded.updated,
                  unchanged=summary.unchanged, rejected=t.rejected + t.held,
                  finished_at=datetime.now(UTC)),
          what=f"the end of run {run_id}")
    table = [{"metric": k, "value": v} for k, v in (
        ("archives", summary.archives), ("archives scanned", summary.scanned),
        ("pages", summary.pages), ("articles", summary.newest),
        ("parsed", summary.parsed), ("rejected", summary.rejected), ("held", summary.held),
        ("changed", summary.changed), ("unchanged", summary.unchanged),
        ("not stored before", summary.not_stored),
    )]
    table += [{"metric": f"field: {k}", "value": v} for k, v in summary.fields_changed.items()]
    create_table_artifact(key="reextract-summary", table=table,
                          description=f"re-extraction {run_id}: {summary.changed} rows changed")
    logger.info("re-extraction: %s", summary)
    if card.alarms:
        raise LayoutDriftAlarm(
            "layout drift during re-extraction: " + "; ".join(card.alarms)
            + f". {t.held} suspect rows held back; stored rows were not overwritten"
        )
    return summary


def _load_next(pending: deque[tuple[Path, Any]], loader: SegmentLoader, run_id: str) -> None:
    path, future = pending.popleft()
    loader.load(path, run_id, parsed=future.result())


__all__ = ["ReextractSummary", "archives_of", "newest_records", "recorded_archives",
           "reextract", "record_scans", "scan_fetches"]
