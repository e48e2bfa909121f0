"""The single upserting loader: batches of articles, their images and failures; run rows.

A run loads in bounded batches as it goes (:func:`load_batch`, one transaction each), so
a run cut short keeps what it fetched and memory does not grow with the run. Rules:

* Articles are keyed on ``article_id`` (ID17). A batch is deduplicated first: the row
  with the latest ``fetched_at`` wins, the later one in the batch on a tie.
* ``content_hash`` (sha256) covers the fields marked ``content`` in
  :mod:`baotintuc.model` plus the images' (url, caption): what a reader sees. It does not
  cover fetched_at, url, parser versions or derived fields, so a re-parse that only
  changes those is not an edit.
* New article: ``first_seen_at = last_changed_at = fetched_at``, ``version = 1``.
* Same hash as stored: *unchanged*. ``first_seen_at``, ``last_changed_at`` and
  ``version`` are kept; ``fetched_at``, ``flow_run_id`` and the non-hashed fields are
  updated (a re-extraction refreshes ``body_markdown`` without faking an edit). When
  nothing at all differs (same fetch, same extraction) nothing is written.
* Different hash: *updated*. The stored row (with its images) is copied into
  ``article_versions``, the row is replaced, ``version + 1``, ``last_changed_at =
  fetched_at``.
* An incoming row fetched *before* the stored one is *stale* and skipped, so re-parsing
  an old archive never rolls an article back.
* Images are replaced as a set for every article written.
* ``protect_fields=True`` never replaces a non-empty stored value of a ``protected``
  field (title, body_text, published_at) with an empty one; derived fields follow.

Loading the same batch twice leaves identical rows. Run-level rows (``crawl_runs``,
spider failures, discovered URLs) are written with :func:`start_run`,
:func:`finish_run`, :func:`replace_failures` and :func:`record_urls`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from baotintuc.model import (
    CONTENT_FIELDS,
    PROTECTED_FIELDS,
    STORED_COLUMNS,
    Article,
    Failure,
    followers,
    is_filled,
)
from warehouse.db import transaction

logger = logging.getLogger(__name__)

# Columns the warehouse adds to the article's own (``STORED_COLUMNS``).
BOOKKEEPING_COLUMNS: dict[str, str] = {
    "content_hash": "VARCHAR",
    "first_seen_at": "TIMESTAMPTZ",
    "last_changed_at": "TIMESTAMPTZ",
    "version": "INTEGER",
    "run_id": "VARCHAR",
    "flow_run_id": "VARCHAR",
}
ARTICLE_COLUMNS: dict[str, str] = {**STORED_COLUMNS, **BOOKKEEPING_COLUMNS}
"""The ``articles`` table; tests/test_warehouse.py checks it against the DDL."""
# What decides that a re-load is a no-op: every column the parser fills, and when.
_EXTRACTED = tuple(c for c in STORED_COLUMNS if c not in ("article_id",))

IMAGE_COLUMNS: dict[str, str] = {
    "article_id": "VARCHAR",
    "position": "INTEGER",
    "url": "VARCHAR",
    "caption": "VARCHAR",
    "credit": "VARCHAR",
    "flow_run_id": "VARCHAR",
}
FAILURE_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "url": "VARCHAR",
    "stage": "VARCHAR",
    "reason": "VARCHAR",
    "status": "INTEGER",
    "detail": "VARCHAR",
    "at": "TIMESTAMPTZ",
    "flow_run_id": "VARCHAR",
    "article_id": "VARCHAR",
}
CHANGE_COLUMNS: dict[str, str] = {
    "article_id": "VARCHAR",
    "replaced_at": "TIMESTAMPTZ",
    "replaced_by_hash": "VARCHAR",
    "changed_fields": "VARCHAR[]",
}
CATEGORY_COLUMNS: dict[str, str] = {"id": "INTEGER", "name": "VARCHAR", "parent_id": "INTEGER"}
RUN_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "flow_run_id": "VARCHAR",
    "started_at": "TIMESTAMPTZ",
    "finished_at": "TIMESTAMPTZ",
    "base_url": "VARCHAR",
    "params": "JSON",
    "status": "VARCHAR",
    "mode": "VARCHAR",
    "archive_prefix": "VARCHAR",
    "discovered": "INTEGER",
    "fetched": "INTEGER",
    "stored": "INTEGER",
    "new": "INTEGER",
    "updated": "INTEGER",
    "unchanged": "INTEGER",
    "stale": "INTEGER",
    "protected": "INTEGER",
    "skipped": "INTEGER",
    "deferred": "INTEGER",
    "failed": "INTEGER",
    "rejected": "INTEGER",
    "lost": "INTEGER",
    "requests": "INTEGER",
    "bytes": "BIGINT",
    "duration_s": "DOUBLE",
    "message": "VARCHAR",
    "stats": "JSON",
}
# Stages of failures the crawler reports (replaced as a set when a run is finalised);
# ``parse`` and ``quality`` failures are written with the batch that found them.
CRAWL_STAGES = ("robots", "feed", "feed_index", "listing", "sitemap", "article", "accounting")


@dataclass(slots=True)
class LoadResult:
    """What one or more :func:`load_batch` calls did (``+`` adds two results)."""

    new: int = 0
    updated: int = 0  # content_hash changed: a row was added to article_versions
    unchanged: int = 0
    written: int = 0  # article rows written (new + updated + refreshed)
    images: int = 0  # image rows written
    failures: int = 0  # fetch_failures rows written
    stale: int = 0  # skipped: fetched before the stored row
    duplicates: int = 0  # dropped by in-batch dedupe
    protected: int = 0  # stored values kept by protect_fields
    protected_fields: dict[str, int] = field(default_factory=dict)
    changed_fields: dict[str, int] = field(default_factory=dict)  # any stored column

    def add(self, other: LoadResult) -> None:
        for name in ("new", "updated", "unchanged", "written", "images", "failures", "stale",
                     "duplicates", "protected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("protected_fields", "changed_fields"):
            total = Counter(getattr(self, name))
            total.update(getattr(other, name))
            setattr(self, name, dict(total.most_common()))

    @property
    def stored_ids(self) -> int:
        return self.new + self.updated + self.unchanged


@dataclass(frozen=True, slots=True)
class KnownArticle:
    """What incremental crawling needs to know about a stored article."""

    fetched_at: datetime
    published_at: datetime | None
    url: str | None = None


# --------------------------------------------------------------------------- rows


def _aware(value: Any, name: str) -> datetime | None:
    """``value`` (datetime or ISO 8601 text) as an aware datetime; naive is an error."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError(f"{name}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: naive datetime {value.isoformat()} (give a UTC offset)")
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _canonical(value: Any) -> Any:
    """A JSON-stable form for hashing/comparison: datetimes as UTC instants."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _image_key(images: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    return [[i.get("url"), i.get("caption") or ""] for i in images]


def content_hash(row: Mapping[str, Any]) -> str:
    """sha256 over the content fields and the images' (url, caption) of a storage row."""
    payload = {f: _canonical(row.get(f)) for f in CONTENT_FIELDS if f != "images"}
    payload["images"] = _image_key(row.get("images") or [])
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _changed(old: Mapping[str, Any], new: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    changed = [
        f for f in names if f != "images" and _canonical(old.get(f)) != _canonical(new.get(f))
    ]
    if old.get("images") != new.get("images"):
        changed.append("images")
    return changed


def _images(article: Article) -> list[dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for img in article.images:
        if not img.url:
            logger.warning("article %s: image %d without url dropped", article.article_id,
                           img.position)
            continue
        if img.position in out:
            logger.warning("article %s: duplicate image position %d dropped",
                           article.article_id, img.position)
            continue
        out[img.position] = {"position": int(img.position), "url": img.url,
                             "caption": img.caption or "", "credit": img.credit}
    return [out[p] for p in sorted(out)]


def to_storage_row(article: Article) -> dict[str, Any]:
    """An :class:`Article` in the storage form of ``articles`` (+ its ``images``)."""
    if not article.article_id:
        raise ValueError(f"article without article_id: url={article.url!r}")
    if not article.url:
        raise ValueError(f"article {article.article_id} has no url")
    if article.fetched_at is None:
        raise ValueError(f"article {article.article_id} has no fetched_at")
    row: dict[str, Any] = {c: getattr(article, c) for c in STORED_COLUMNS}
    for c, t in STORED_COLUMNS.items():
        if t.endswith("[]"):
            row[c] = [str(v) for v in (row[c] or [])]
        elif t == "TIMESTAMPTZ":
            row[c] = _aware(row[c], f"article {article.article_id} {c}")
        elif t == "INTEGER" and row[c] is not None:
            row[c] = int(row[c])
        elif t == "BOOLEAN" and row[c] is not None:
            row[c] = bool(row[c])
    row["images"] = _images(article)
    return row


def _dedupe(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """One row per article_id: latest fetched_at, later in the list on a tie."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        cur = best.get(row["article_id"])
        if cur is None or row["fetched_at"] >= cur["fetched_at"]:
            best[row["article_id"]] = row
    return list(best.values()), len(rows) - len(best)


# --------------------------------------------------------------------------- staging


def _stage(
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: Mapping[str, str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Create temp table ``name`` holding ``rows`` in one statement, a list per column.

    The lists are bound as typed parameters and unnested side by side (JSON columns as
    their text). Hundreds of rows of article text go in at once, with neither pyarrow nor
    pandas: for a 200-article segment, 0.014 s and +2 to +6 MB resident, against 0.028 s
    and +8 to +13 MB for one JSON document per row through ``json_transform`` before
    (and ~5x faster than ``executemany``).
    """
    select = []
    lists: list[list[Any]] = []
    for c, t in columns.items():
        values = [r.get(c) for r in rows]
        if t == "JSON":
            values = [None if v is None else
                      json.dumps(v, ensure_ascii=False, default=_json_default) for v in values]
            select.append(f'unnest(?::VARCHAR[])::JSON as "{c}"')
        else:
            select.append(f'unnest(?::{t}[]) as "{c}"')
        lists.append(values)
    con.execute(f"create or replace temp table {name} as select {', '.join(select)}", lists)


def _cols(columns: Iterable[str]) -> str:
    """A quoted column list (``at`` is a reserved word)."""
    return ", ".join(f'"{c}"' for c in columns)


def _fetch_dicts(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _stored(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, dict[str, Any]]:
    # Which of them are stored, from the key column alone, before any whole row is read:
    # a semi-join selecting every column reads the text of every stored article (+33 MB
    # resident for 200 ids at 10k articles, growing with the table, against +3 MB), and a
    # crawl's batches are mostly new articles.
    if ids:
        ids = [str(r[0]) for r in con.execute(
            "select article_id from articles where article_id in (select unnest(?::varchar[]))",
            [ids]).fetchall()]
    if not ids:
        return {}
    rows = _fetch_dicts(
        con,
        "select * from articles where article_id in (select unnest(?::varchar[]))",
        [ids],
    )
    stored = {r["article_id"]: r for r in rows}
    for r in stored.values():
        r["images"] = []
    images = _fetch_dicts(
        con,
        "select article_id, position, url, caption, credit from article_images "
        "where article_id in (select unnest(?::varchar[])) order by article_id, position",
        [ids],
    )
    for img in images:
        aid = img.pop("article_id")
        if aid in stored:
            stored[aid]["images"].append(img)
    return stored


# --------------------------------------------------------------------------- batches


def load_batch(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    articles: Sequence[Article],
    failures: Sequence[Failure] = (),
    *,
    flow_run_id: str | None = None,
    protect_fields: bool = False,
    segments: Sequence[tuple[str, int]] = (),
    manifests: Sequence[Manifest] = (),
) -> LoadResult:
    """Load one batch in ONE transaction: articles, images, versions, categories,
    the batch's failures (parse rejects, held-back rows) and the archive segments it
    completes (``(path, pages)``, so a resumed run never loads them twice).

    Args:
        con: a read-write connection on a migrated database (``warehouse.db.writer``).
        run_id: the run the rows belong to.
        articles: parsed articles with ``fetched_at`` set (aware datetimes only).
        failures: failure rows found while making this batch.
        flow_run_id: the writing Prefect flow run.
        protect_fields: keep non-empty stored values of protected fields rather than
            overwrite them with empty ones (for a layout-drift gate).
        segments: archive segments whose pages are all in this batch or earlier ones.
        manifests: where the article fetches of whole archive files are
            (:func:`record_manifests`), written in the same transaction.
    """
    if not run_id:
        raise ValueError("a batch needs a run_id")
    rows, duplicates = _dedupe([to_storage_row(a) for a in articles])
    result = LoadResult(duplicates=duplicates)
    protected: Counter[str] = Counter()
    changed_any: Counter[str] = Counter()
    now = datetime.now(UTC)

    with transaction(con):
        stored = _stored(con, [r["article_id"] for r in rows])
        write: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        for row in rows:
            old = stored.get(row["article_id"])
            if old is not None and row["fetched_at"] < old["fetched_at"]:
                result.stale += 1
                continue
            if protect_fields and old is not None:
                for f in PROTECTED_FIELDS:
                    if not is_filled(row[f]) and is_filled(old[f]):
                        for g in (f, *followers(f)):
                            row[g] = old[g]
                        protected[f] += 1
            row["content_hash"] = content_hash(row)
            row["run_id"] = run_id
            row["flow_run_id"] = flow_run_id
            if old is None:
                result.new += 1
                row["first_seen_at"] = row["last_changed_at"] = row["fetched_at"]
                row["version"] = 1
                write.append(row)
                continue
            diff = _changed(old, row, _EXTRACTED)
            changed_any.update(diff)
            if old["content_hash"] == row["content_hash"]:
                result.unchanged += 1
                if not diff:
                    continue  # the same fetch read the same way: nothing to write
                row["first_seen_at"] = old["first_seen_at"]
                row["last_changed_at"] = old["last_changed_at"]
                row["version"] = old["version"]
            else:
                result.updated += 1
                row["first_seen_at"] = old["first_seen_at"]
                row["last_changed_at"] = row["fetched_at"]
                row["version"] = old["version"] + 1
                changes.append({
                    "article_id": row["article_id"],
                    "replaced_at": row["fetched_at"],
                    "replaced_by_hash": row["content_hash"],
                    "changed_fields": _changed(old, row, CONTENT_FIELDS),
                })
            write.append(row)
        if changes:
            _stage(con, "_load_changes", CHANGE_COLUMNS, changes)
            _insert_versions(con, flow_run_id)
        if write:
            _stage(con, "_load_articles", ARTICLE_COLUMNS, write)
            _upsert_articles(con)
            _test_pause_in_load()
            images = [
                {**img, "article_id": r["article_id"], "flow_run_id": flow_run_id}
                for r in write
                for img in r["images"]
            ]
            _stage(con, "_load_images", IMAGE_COLUMNS, images)
            con.execute(
                "delete from article_images "
                "where article_id in (select article_id from _load_articles)"
            )
            con.execute(
                f"insert into article_images ({', '.join(IMAGE_COLUMNS)}) "
                f"select {', '.join(IMAGE_COLUMNS)} from _load_images"
            )
            result.images = len(images)
            _upsert_categories(con, write, now)
        result.failures = _insert_failures(con, run_id, failures, flow_run_id)
        if segments:
            con.executemany(
                "insert into archive_segments (path, run_id, pages, loaded_at) "
                "values (?, ?, ?, ?) on conflict (path) do nothing",
                [[str(p), run_id, n, now] for p, n in segments],
            )
        record_manifests(con, manifests, now)
        for t in ("_load_changes", "_load_articles", "_load_images"):
            con.execute(f"drop table if exists {t}")
    result.written = len(write)
    result.protected = sum(protected.values())
    result.protected_fields = dict(protected)
    result.changed_fields = dict(changed_any.most_common())
    logger.info(
        "loaded batch of run %s: %d new, %d updated, %d unchanged, %d stale, %d images, "
        "%d failures%s", run_id, result.new, result.updated, result.unchanged, result.stale,
        result.images, result.failures,
        f", kept stored values {result.protected_fields}" if result.protected else "",
    )
    return result


def _test_pause_in_load() -> None:
    """TEST HOOK, inert unless ``BTT_TEST_PAUSE_IN_LOAD_S`` is set (never in production).

    Sleeps that many seconds inside the open load transaction, after the articles are
    upserted and before the commit, while this process holds the DuckDB file read-write:
    tests/test_kill_recovery.py kills a run there to prove a half-done load loses nothing.
    """
    pause = os.environ.get("BTT_TEST_PAUSE_IN_LOAD_S")
    if pause:
        logger.warning("BTT_TEST_PAUSE_IN_LOAD_S: pausing %s s inside the load transaction", pause)
        time.sleep(float(pause))


def _insert_versions(con: duckdb.DuckDBPyConnection, flow_run_id: str | None) -> None:
    con.execute(
        """
        insert into article_versions
        with imgs as (
            select
                article_id,
                list(
                    struct_pack(position := position, url := url, caption := caption,
                                credit := credit)
                    order by position
                ) as images
            from article_images
            where article_id in (select article_id from _load_changes)
            group by article_id
        )
        select
            a.article_id, a.version, a.content_hash, a.url, a.title, a.sapo, a.body_text,
            a.body_markdown, a.byline, a.authors, a.source, a.published_at, a.modified_at,
            a.category, a.category_id, a.parent_category_id, a.tags, a.kind, a.video_urls,
            coalesce(i.images, []), a.parser_version, a.extractor_version, a.first_seen_at,
            a.fetched_at, a.last_changed_at, a.flow_run_id,
            c.replaced_at, c.replaced_by_hash, ?, c.changed_fields
        from articles as a
        join _load_changes as c using (article_id)
        left join imgs as i using (article_id)
        on conflict (article_id, version) do nothing
        """,
        [flow_run_id],
    )


def _upsert_articles(con: duckdb.DuckDBPyConnection) -> None:
    cols = ", ".join(ARTICLE_COLUMNS)
    sets = ", ".join(f"{c} = excluded.{c}" for c in ARTICLE_COLUMNS if c != "article_id")
    con.execute(
        f"insert into articles ({cols}) select {cols} from _load_articles "
        f"on conflict (article_id) do update set {sets}"
    )


def _upsert_categories(
    con: duckdb.DuckDBPyConnection, rows: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """Categories seen in pages: the page's name wins, unknown ids are added."""
    seen: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r["category_id"] is not None:
            seen[r["category_id"]] = {
                "id": r["category_id"],
                "name": r["category"],
                "parent_id": r["parent_category_id"],
            }
    if not seen:
        return
    _stage(con, "_load_categories", CATEGORY_COLUMNS, list(seen.values()))
    con.execute(
        """
        insert into categories (id, slug, name, parent_id, source, updated_at)
        select id, null, name, parent_id, 'page', ? from _load_categories
        on conflict (id) do update set
            name = coalesce(excluded.name, categories.name),
            parent_id = coalesce(excluded.parent_id, categories.parent_id),
            source = 'page',
            updated_at = excluded.updated_at
        where (excluded.name is not null and excluded.name is distinct from categories.name)
            or (excluded.parent_id is not null
                and excluded.parent_id is distinct from categories.parent_id)
        """,
        [now],
    )
    con.execute("drop table if exists _load_categories")


def _failure_row(f: Failure, run_id: str, flow_run_id: str | None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "url": f.url,
        "stage": f.stage,
        "reason": f.reason,
        "status": f.status,
        "detail": f.detail,
        "at": _aware(f.at, f"failure {f.url} at"),
        "flow_run_id": flow_run_id,
        "article_id": f.article_id,
    }


def _insert_failures(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    failures: Sequence[Failure],
    flow_run_id: str | None,
) -> int:
    if not failures:
        return 0
    _stage(con, "_load_failures", FAILURE_COLUMNS,
           [_failure_row(f, run_id, flow_run_id) for f in failures])
    cols = _cols(FAILURE_COLUMNS)
    con.execute(f"insert into fetch_failures ({cols}) select {cols} from _load_failures")
    con.execute("drop table if exists _load_failures")
    return len(failures)


# --------------------------------------------------------------------------- run rows


def replace_failures(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    failures: Sequence[Failure],
    *,
    stages: Sequence[str] = CRAWL_STAGES,
    flow_run_id: str | None = None,
) -> int:
    """Replace the run's failure rows of ``stages`` with ``failures`` (idempotent)."""
    with transaction(con):
        con.execute(
            "delete from fetch_failures where run_id = ? and stage in (select unnest(?))",
            [run_id, list(stages)],
        )
        return _insert_failures(con, run_id, failures, flow_run_id)


@dataclass(frozen=True, slots=True)
class Manifest:
    """Where the article fetches of one whole archive file are."""

    path: str
    bytes: int  # the file's size: a file of another size later is not this one
    pages: int  # complete response records
    fetches: Sequence[tuple[str, datetime, int]]  # (article ID, fetched at, record)


FETCH_COLUMNS = {"path": "VARCHAR", "record": "INTEGER", "article_id": "VARCHAR",
                 "fetched_at": "TIMESTAMPTZ"}


def record_manifests(con: duckdb.DuckDBPyConnection, manifests: Iterable[Manifest],
                     now: datetime | None = None) -> int:
    """Record (or replace) the fetch lists of archive files; returns the fetches written.

    Call inside the caller's transaction. ``reextract`` reads these instead of scanning
    each file for its articles' fetches.
    """
    written = 0
    now = now or datetime.now(UTC)
    for m in manifests:
        if con.execute("select 1 from archive_manifests where path = ?",
                       [m.path]).fetchone():  # (a key lookup: the delete scans)
            con.execute("delete from archive_fetches where path = ?", [m.path])
        if m.fetches:
            _stage(con, "_load_fetches", FETCH_COLUMNS, [
                {"path": m.path, "record": r, "article_id": aid,
                 "fetched_at": _aware(at, f"fetch {r} of {m.path}")}
                for aid, at, r in m.fetches])
            con.execute(f"insert into archive_fetches ({_cols(FETCH_COLUMNS)}) "
                        f"select {_cols(FETCH_COLUMNS)} from _load_fetches")
            con.execute("drop table if exists _load_fetches")
        con.execute(
            "insert into archive_manifests (path, bytes, pages, recorded_at) "
            "values (?, ?, ?, ?) on conflict (path) do update set bytes = excluded.bytes, "
            "pages = excluded.pages, recorded_at = excluded.recorded_at",
            [m.path, m.bytes, m.pages, now])
        written += len(m.fetches)
    return written


URL_BATCH = 5_000  # (article, URL) pairs per transaction of record_urls
URL_COLUMNS = {"article_id": "VARCHAR", "url": "VARCHAR", "via": "VARCHAR",
               "first_seen_at": "TIMESTAMPTZ", "last_seen_at": "TIMESTAMPTZ"}


def record_urls(con: duckdb.DuckDBPyConnection, run_id: str, discovered: Path) -> int:
    """Remember every URL under which a run discovered an article (``discovered.jsonl``:
    ``article_id, url, via, at`` per line); returns the pairs written (a pair that is in
    two batches counts twice). Lines that do not parse (a torn last line) are skipped.

    The file is read ``URL_BATCH`` pairs at a time, each batch one upsert in its own
    transaction, so memory does not grow with the run: at the end of a 100k backfill,
    DuckDB's ``read_json`` and grouping of the whole file needed more than the writer's
    64 MB (redone uncapped: +156 MB resident, 1.2 s); in batches of 5,000 it stays under
    the cap (+103 MB with the writer's own session, 2.0 s). The upsert keeps a pair's
    earliest sighting (and the way it came in) and its latest, so batches merge exactly,
    in any order, and a run cut short between them loses nothing.
    """
    if not discovered.exists() or discovered.stat().st_size == 0:
        return 0
    written = 0
    for batch in _url_batches(discovered, URL_BATCH):
        _stage(con, "_run_urls", URL_COLUMNS, batch)
        with transaction(con):
            row = con.execute(
                """
                insert into article_urls (article_id, url, via, first_seen_at, last_seen_at,
                                          run_id)
                select article_id, url, via, first_seen_at, last_seen_at, ? from _run_urls
                on conflict (article_id, url) do update set
                    via = case when excluded.first_seen_at < article_urls.first_seen_at
                               then excluded.via else article_urls.via end,
                    first_seen_at = least(article_urls.first_seen_at, excluded.first_seen_at),
                    last_seen_at = greatest(article_urls.last_seen_at,
                                            excluded.last_seen_at),
                    run_id = excluded.run_id
                """,
                [run_id],
            ).fetchone()
        written += int(row[0]) if row else 0
    con.execute("drop table if exists _run_urls")
    return written


def _url_batches(path: Path, size: int) -> Iterator[list[dict[str, Any]]]:
    """The file's (article, URL) pairs, at most ``size`` a batch, each pair once a batch:
    its first sighting (and ``via`` then) and its last."""
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                d = json.loads(line)
                aid, url, at = d["article_id"], d["url"], datetime.fromisoformat(d["at"])
            except (ValueError, KeyError, TypeError):
                continue
            if not (isinstance(aid, str) and isinstance(url, str) and aid and url):
                continue
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            seen = pairs.get((aid, url))
            if seen is None:
                pairs[(aid, url)] = {"article_id": aid, "url": url, "via": d.get("via"),
                                     "first_seen_at": at, "last_seen_at": at}
                if len(pairs) >= size:
                    yield list(pairs.values())
                    pairs = {}
                continue
            if at < seen["first_seen_at"]:
                seen["first_seen_at"], seen["via"] = at, d.get("via")
            seen["last_seen_at"] = max(seen["last_seen_at"], at)
    if pairs:
        yield list(pairs.values())


def _upsert_run(con: duckdb.DuckDBPyConnection, run: Mapping[str, Any]) -> None:
    row: dict[str, Any] = {c: run.get(c) for c in RUN_COLUMNS if c != "stats"}
    extras = {k: v for k, v in run.items() if k not in RUN_COLUMNS}
    if isinstance(run.get("stats"), Mapping):
        extras = {**run["stats"], **extras}
    row["stats"] = extras or None
    for c in ("started_at", "finished_at"):
        row[c] = _aware(row[c], f"run {row['run_id']} {c}")
    _stage(con, "_load_run", RUN_COLUMNS, [row])
    cols = ", ".join(RUN_COLUMNS)
    sets = ", ".join(
        f"{c} = coalesce(excluded.{c}, crawl_runs.{c})" for c in RUN_COLUMNS if c != "run_id"
    )
    con.execute(
        f"insert into crawl_runs ({cols}) select {cols} from _load_run "
        f"on conflict (run_id) do update set {sets}"
    )
    con.execute("drop table if exists _load_run")


def start_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    flow_run_id: str | None = None,
    base_url: str | None = None,
    mode: str | None = None,
    params: Mapping[str, Any] | None = None,
    archive_prefix: str | None = None,
    started_at: datetime | None = None,
) -> None:
    """Record a run as ``running`` before it fetches anything (so a crash leaves a trace
    and the next run knows which archive to resume)."""
    with transaction(con):
        _upsert_run(con, {
            "run_id": run_id,
            "flow_run_id": flow_run_id,
            "base_url": base_url,
            "mode": mode,
            "params": dict(params) if params is not None else None,
            "archive_prefix": archive_prefix,
            "started_at": started_at or datetime.now(UTC),
            "status": "running",
        })


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    status: str,
    message: str | None = None,
    finished_at: datetime | None = None,
    quality: Mapping[str, Any] | None = None,
    **counts: Any,
) -> None:
    """Set a run's final status, finish time, duration, counters and scorecard."""
    finished = finished_at or datetime.now(UTC)
    row: dict[str, Any] = {"run_id": run_id, "status": status, "message": message,
                           "finished_at": finished, **counts}
    with transaction(con):
        started = con.execute(
            "select started_at from crawl_runs where run_id = ?", [run_id]
        ).fetchone()
        if started and started[0] is not None and row.get("duration_s") is None:
            row["duration_s"] = round((finished - started[0]).total_seconds(), 3)
        _upsert_run(con, row)
        if quality is not None:
            _replace_quality(con, run_id, quality)


def unfinished_runs(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None]]:
    """``(run_id, archive_prefix)`` of runs that never finished (killed, crashed)."""
    return [
        (str(r), p)
        for r, p in con.execute(
            "select run_id, archive_prefix from crawl_runs where status = 'running' "
            "order by started_at"
        ).fetchall()
    ]


def run_article_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    """What a run wrote, read back from the warehouse: ``new``, ``updated``,
    ``unchanged``, ``stored`` (articles), ``rejected`` (parse and quality failures).

    For a run that died before it could count (its rows were committed batch by batch);
    exact until a later run writes the same articles, so read it before that.
    """
    new, updated, unchanged, stored = con.execute(
        """
        select
            count(*) filter (where a.first_seen_at >= r.started_at),
            count(*) filter (where a.first_seen_at < r.started_at
                             and a.last_changed_at >= r.started_at),
            count(*) filter (where a.last_changed_at < r.started_at),
            count(*)
        from articles a join crawl_runs r using (run_id)
        where a.run_id = ?
        """,
        [run_id],
    ).fetchone() or (0, 0, 0, 0)
    rejected = con.execute(
        "select count(*) from fetch_failures where run_id = ? and stage in ('parse', 'quality')",
        [run_id],
    ).fetchone()
    return {"new": int(new), "updated": int(updated), "unchanged": int(unchanged),
            "stored": int(stored), "rejected": int(rejected[0] if rejected else 0)}


def loaded_segments(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> set[str]:
    """Paths of the archive segments already in the warehouse (of one run, or all)."""
    sql = "select path from archive_segments"
    args: list[Any] = []
    if run_id is not None:
        sql += " where run_id = ?"
        args.append(run_id)
    return {str(r[0]) for r in con.execute(sql, args).fetchall()}


def known_articles(con: duckdb.DuckDBPyConnection, born_after: datetime | None = None
                   ) -> dict[str, KnownArticle]:
    """Stored articles' fetch time, date and URL, by article_id: all of them, or with
    ``born_after`` at least those born after it (ID17 creation day, in any time zone, or
    page date): the few a run may re-check, not a whole-site warehouse's million."""
    sql = "select article_id, fetched_at, published_at, url from articles"
    args: list[Any] = []
    if born_after is not None:
        sql += " where article_id >= ? or published_at >= ?"
        args = [(born_after - timedelta(days=1)).strftime("%Y%m%d"), born_after]
    cur = con.execute(sql, args)
    out: dict[str, KnownArticle] = {}
    while rows := cur.fetchmany(10_000):
        for aid, fetched, published, url in rows:
            out[aid] = KnownArticle(fetched, published, url)
    return out


def stored_ids(con: duckdb.DuckDBPyConnection) -> Iterator[str]:
    """Every stored article_id, 10,000 at a time."""
    cur = con.execute("select article_id from articles")
    while rows := cur.fetchmany(10_000):
        for (aid,) in rows:
            yield aid


_QUALITY_KEYS = ("fill_rate", "filled", "total", "threshold", "passed")


def _replace_quality(
    con: duckdb.DuckDBPyConnection, run_id: str, scorecard: Mapping[str, Any]
) -> int:
    rows: list[list[Any]] = []
    for name, value in scorecard.items():
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        if isinstance(value, Mapping):
            extra = {k: v for k, v in value.items() if k not in _QUALITY_KEYS}
            rows.append(
                [run_id, name]
                + [value.get(k) for k in _QUALITY_KEYS]
                + [json.dumps(extra, ensure_ascii=False, default=_json_default) if extra else None]
            )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            rows.append([run_id, name, float(value), None, None, None, None, None])
        else:
            raise ValueError(f"scorecard entry {name!r}: expected a number or a mapping")
    con.execute("delete from run_quality where run_id = ?", [run_id])
    if rows:
        con.executemany(
            "insert into run_quality (run_id, field, fill_rate, filled, total, threshold, "
            "passed, detail) values (?, ?, ?, ?, ?, ?, ?, ?::JSON)",
            rows,
        )
    return len(rows)


__all__ = [
    "ARTICLE_COLUMNS",
    "BOOKKEEPING_COLUMNS",
    "CRAWL_STAGES",
    "KnownArticle",
    "LoadResult",
    "Manifest",
    "content_hash",
    "finish_run",
    "known_articles",
    "load_batch",
    "loaded_segments",
    "record_manifests",
    "record_urls",
    "replace_failures",
    "run_article_counts",
    "start_run",
    "stored_ids",
    "to_storage_row",
    "unfinished_runs",
]
