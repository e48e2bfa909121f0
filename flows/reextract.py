"""The ``reextract`` flow: re-parse the raw WARC archive with the current code.

No network request is made. For every article the newest archived fetch is parsed
again and compared, field by field, with the stored row; only rows whose extraction
changed are written (through the single loader, so edits still leave a version row).
A second run over the same archive therefore changes nothing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from baotintuc.urls import article_id as id_from_url
from config import load_settings
from crawler.archive import RawPage, iter_pages
from flows.clean import clean_pages
from warehouse.db import reader, writer
from warehouse.load import load_run

# Fields compared between the stored row and the fresh extraction.
COMPARED_FIELDS: tuple[str, ...] = (
    "url",
    "title",
    "sapo",
    "body_text",
    "body_markdown",
    "byline",
    "authors",
    "source",
    "published_at",
    "modified_at",
    "date_source",
    "date_disagreement",
    "category",
    "category_id",
    "parent_category_id",
    "tags",
    "related_article_ids",
    "word_count",
    "kind",
    "video_urls",
    "parser_version",
    "extractor_version",
)


@dataclass(slots=True)
class ReextractSummary:
    run_id: str
    archives: int = 0
    pages: int = 0
    parsed: int = 0
    rejected: int = 0
    not_stored: int = 0  # archived but not in the database: added now
    changed: int = 0
    unchanged: int = 0
    fields_changed: dict[str, int] = field(default_factory=dict)


def newest_pages(archives: list[Path]) -> tuple[int, Iterator[RawPage]]:
    """The newest archived fetch of every article across ``archives``: ``(count, pages)``.

    Two passes, so that only one page body is in memory at a time: the archive of months
    of crawling is far larger than memory. The first pass notes where each article's
    newest record is; the second yields just those records.
    """
    newest: dict[str, tuple[datetime, int, int]] = {}  # id -> (fetched_at, archive, record)
    for a, path in enumerate(archives):
        for r, page in enumerate(iter_pages(path)):
            aid = id_from_url(page.url)
            if aid and (aid not in newest or page.fetched_at >= newest[aid][0]):
                newest[aid] = (page.fetched_at, a, r)
    wanted = {(a, r) for _, a, r in newest.values()}
    needed = {a for a, _ in wanted}

    def pages() -> Iterator[RawPage]:
        for a, path in enumerate(archives):
            if a in needed:
                for r, page in enumerate(iter_pages(path)):
                    if (a, r) in wanted:
                        yield page

    return len(newest), pages()


def _norm(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def diff_fields(stored: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    changed = [f for f in COMPARED_FIELDS if _norm(stored.get(f)) != _norm(fresh.get(f))]
    if stored.get("images") != fresh.get("images"):
        changed.append("images")
    return changed


@task(name="read-stored-rows", retries=2, retry_delay_seconds=[2, 5], persist_result=False)
def read_stored(db_path: Path, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not db_path.exists() or not ids:
        return {}
    cols = ", ".join(("article_id", *COMPARED_FIELDS))
    out: dict[str, dict[str, Any]] = {}
    with reader(db_path) as con:
        con.execute("create temp table wanted(article_id varchar)")
        con.executemany("insert into wanted values (?)", [[i] for i in ids])
        rel = con.sql(f"select {cols} from articles join wanted using (article_id)")
        names = [d[0] for d in rel.description]
        for row in rel.fetchall():
            rec = dict(zip(names, row, strict=True))
            rec["images"] = []
            out[rec["article_id"]] = rec
        for aid, pos, url, caption, credit in con.sql(
            "select article_id, position, url, caption, credit from article_images "
            "join wanted using (article_id) order by article_id, position"
        ).fetchall():
            out[aid]["images"].append(
                {"position": pos, "url": url, "caption": caption, "credit": credit}
            )
    return out


@flow(name="reextract-baotintuc", log_prints=True)
def reextract(db_path: str | None = None, since: date | None = None) -> ReextractSummary:
    """Re-parse archived pages and update the rows whose extraction changed."""
    settings = load_settings()
    logger = get_run_logger()
    db = Path(db_path) if db_path else settings.paths.db_path
    run_id = str(flow_run.get_id() or uuid.uuid4())
    summary = ReextractSummary(run_id=run_id)
    archives = sorted(settings.paths.raw_dir.rglob("*.warc.gz"))
    summary.archives = len(archives)
    summary.pages, pages = newest_pages(archives)
    cleaned = clean_pages(pages, since=since)
    summary.parsed, summary.rejected = len(cleaned.rows), len(cleaned.rejects)
    stored = read_stored(db, [r["article_id"] for r in cleaned.rows])
    changed_rows: list[dict[str, Any]] = []
    fields: Counter[str] = Counter()
    for row in cleaned.rows:
        old = stored.get(row["article_id"])
        if old is None:  # e.g. held back by a drift alarm, or a lost load
            summary.not_stored += 1
            changed_rows.append(row)
            continue
        diff = diff_fields(old, row)
        if diff:
            fields.update(diff)
            changed_rows.append(row)
    summary.changed = len(changed_rows) - summary.not_stored
    summary.unchanged = len(cleaned.rows) - len(changed_rows)
    summary.fields_changed = dict(fields.most_common())
    if changed_rows:
        run = {
            "run_id": run_id,
            "flow_run_id": str(flow_run.get_id() or ""),
            "started_at": datetime.now(UTC),
            "base_url": "warc-archive",
            "params": {"mode": "reextract", "since": since.isoformat() if since else None},
            "status": "completed",
        }
        with writer(db, settings.warehouse) as con:
            load_run(con, run, changed_rows, cleaned.rejects, flow_run_id=run["flow_run_id"])
    table = [
        {"metric": k, "value": v}
        for k, v in (
            ("archives", summary.archives),
            ("pages", summary.pages),
            ("parsed", summary.parsed),
            ("rejected", summary.rejected),
            ("changed", summary.changed),
            ("unchanged", summary.unchanged),
            ("not stored", summary.not_stored),
        )
    ]
    table += [{"metric": f"field: {k}", "value": v} for k, v in summary.fields_changed.items()]
    create_table_artifact(
        key="reextract-summary",
        table=table,
        description=f"re-extraction {run_id}: {summary.changed} rows changed",
    )
    logger.info("re-extraction: %s", summary)
    return summary
