"""The single upserting loader: one run's articles, images, failures and run row.

Rules (see ``load_run``):

* Articles are keyed on ``article_id`` (ID17). A batch is deduplicated first: the row
  with the latest ``fetched_at`` wins, the later one in the list on a tie.
* ``content_hash`` (sha256) covers the content a reader sees: title, sapo, body_text,
  byline, authors, source, published_at, modified_at, category, category_id,
  parent_category_id, tags, kind, video_urls and the images' (url, caption). It does not
  cover fetched_at, url, parser/extractor versions or derived fields (body_markdown,
  word_count, date_source, related ids, warnings), so a re-parse that only changes those
  is not an edit.
* New article: ``first_seen_at = last_changed_at = fetched_at``, ``version = 1``.
* Same hash as stored: *unchanged*. ``first_seen_at``, ``last_changed_at`` and
  ``version`` are kept; ``fetched_at``, ``flow_run_id`` and the non-hashed fields are
  updated (so a re-extraction refreshes body_markdown etc. without faking an edit).
* Different hash: *updated*. The stored row (with its images) is copied into
  ``article_versions``, the row is replaced, ``version + 1``, ``last_changed_at =
  fetched_at``.
* An incoming row fetched *before* the stored one is *stale* and skipped, so re-parsing
  an old archive never rolls an article back.
* Images are replaced as a set for every article written.
* ``protect_fields=True`` never replaces a non-empty stored title / body_text /
  published_at with an empty one (the stored value is kept and counted).

Loading the same batch twice leaves identical rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, date, datetime
from typing import Any

import duckdb

logger = logging.getLogger(__name__)

# Fields whose change makes a new version (plus the images' url + caption).
CONTENT_FIELDS: tuple[str, ...] = (
    "title",
    "sapo",
    "body_text",
    "byline",
    "authors",
    "source",
    "published_at",
    "modified_at",
    "category",
    "category_id",
    "parent_category_id",
    "tags",
    "kind",
    "video_urls",
)
PROTECTED_FIELDS: tuple[str, ...] = ("title", "body_text", "published_at")

# The ``articles`` table, in DDL order, with the types used to stage rows.
ARTICLE_COLUMNS: dict[str, str] = {
    "article_id": "VARCHAR",
    "url": "VARCHAR",
    "title": "VARCHAR",
    "sapo": "VARCHAR",
    "body_text": "VARCHAR",
    "body_markdown": "VARCHAR",
    "byline": "VARCHAR",
    "authors": "VARCHAR[]",
    "source": "VARCHAR",
    "published_at": "TIMESTAMPTZ",
    "modified_at": "TIMESTAMPTZ",
    "date_source": "VARCHAR",
    "date_disagreement": "BOOLEAN",
    "category": "VARCHAR",
    "category_id": "INTEGER",
    "parent_category_id": "INTEGER",
    "tags": "VARCHAR[]",
    "related_article_ids": "VARCHAR[]",
    "word_count": "INTEGER",
    "kind": "VARCHAR",
    "video_urls": "VARCHAR[]",
    "warnings": "VARCHAR[]",
    "parser_version": "VARCHAR",
    "extractor_version": "VARCHAR",
    "content_hash": "VARCHAR",
    "first_seen_at": "TIMESTAMPTZ",
    "fetched_at": "TIMESTAMPTZ",
    "last_changed_at": "TIMESTAMPTZ",
    "version": "INTEGER",
    "run_id": "VARCHAR",
    "flow_run_id": "VARCHAR",
}
_LIST_FIELDS = {c for c, t in ARTICLE_COLUMNS.items() if t.endswith("[]")}
_TIME_FIELDS = {c for c, t in ARTICLE_COLUMNS.items() if t == "TIMESTAMPTZ"}
_INT_FIELDS = {c for c, t in ARTICLE_COLUMNS.items() if t == "INTEGER"}

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
    "discovered": "INTEGER",
    "fetched": "INTEGER",
    "new": "INTEGER",
    "updated": "INTEGER",
    "unchanged": "INTEGER",
    "stale": "INTEGER",
    "protected": "INTEGER",
    "failed": "INTEGER",
    "rejected": "INTEGER",
    "requests": "INTEGER",
    "bytes": "BIGINT",
    "duration_s": "DOUBLE",
    "message": "VARCHAR",
    "stats": "JSON",
}


@dataclass(slots=True)
class LoadResult:
    """What one ``load_run`` did."""

    new: int = 0
    updated: int = 0  # content_hash changed: a row was added to article_versions
    unchanged: int = 0
    images: int = 0  # image rows written
    failures: int = 0  # fetch_failures rows written
    stale: int = 0  # skipped: fetched before the stored row
    duplicates: int = 0  # dropped by in-batch dedupe
    protected: int = 0  # stored values kept by protect_fields
    protected_fields: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class KnownArticle:
    """What incremental crawling needs to know about a stored article."""

    fetched_at: datetime
    published_at: datetime | None
    content_hash: str
    modified_at: datetime | None = None
    version: int = 1
    url: str | None = None


# --------------------------------------------------------------------------- helpers


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


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


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
    """sha256 over the content fields and images (url, caption) of a normalised row."""
    payload = {f: _canonical(row.get(f)) for f in CONTENT_FIELDS}
    payload["images"] = _image_key(row.get("images") or [])
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changed = [f for f in CONTENT_FIELDS if _canonical(old.get(f)) != _canonical(new.get(f))]
    if _image_key(old.get("images") or []) != _image_key(new.get("images") or []):
        changed.append("images")
    return changed


def _normalise_images(article_id: str, images: Any) -> list[dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for i, img in enumerate(images or []):
        d = asdict(img) if is_dataclass(img) and not isinstance(img, type) else dict(img)
        pos = int(d.get("position", i))
        if not d.get("url"):
            logger.warning("article %s: image %d without url dropped", article_id, pos)
            continue
        if pos in out:
            logger.warning("article %s: duplicate image position %d dropped", article_id, pos)
            continue
        out[pos] = {
            "position": pos,
            "url": str(d["url"]),
            "caption": d.get("caption") if d.get("caption") is not None else "",
            "credit": d.get("credit"),
        }
    return [out[p] for p in sorted(out)]


def _normalise(raw: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """An article dict (``ParsedArticle.to_row()`` + ``fetched_at``) in storage form."""
    article_id = str(raw.get("article_id") or "").strip()
    if not article_id:
        raise ValueError(f"article without article_id: url={raw.get('url')!r}")
    if not raw.get("url"):
        raise ValueError(f"article {article_id} has no url")
    row: dict[str, Any] = {c: raw.get(c) for c in ARTICLE_COLUMNS}
    row["article_id"] = article_id
    for c in _LIST_FIELDS:
        row[c] = [str(v) for v in (row[c] or [])]
    for c in _TIME_FIELDS:
        row[c] = _aware(row[c], f"article {article_id} {c}")
    for c in _INT_FIELDS:
        row[c] = int(row[c]) if row[c] is not None else None
    if row["date_disagreement"] is not None:
        row["date_disagreement"] = bool(row["date_disagreement"])
    row["fetched_at"] = row["fetched_at"] or now
    row["images"] = _normalise_images(article_id, raw.get("images"))
    return row


def _dedupe(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """One row per article_id: latest fetched_at, later in the list on a tie."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        cur = best.get(row["article_id"])
        if cur is None or row["fetched_at"] >= cur["fetched_at"]:
            best[row["article_id"]] = row
    return list(best.values()), len(rows) - len(best)


def _struct_spec(columns: Mapping[str, str]) -> str:
    spec = {c: ([t[:-2]] if t.endswith("[]") else t) for c, t in columns.items()}
    return json.dumps(spec).replace("'", "''")


def _stage(
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: Mapping[str, str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Create temp table ``name`` holding ``rows`` in one statement (JSON bulk path).

    pyarrow/pandas are not installed; one list of JSON documents is ~5x faster than
    executemany for hundreds of rows of article text.
    """
    payload = [
        json.dumps({c: r.get(c) for c in columns}, ensure_ascii=False, default=_json_default)
        for r in rows
    ]
    casts = ", ".join(
        f'r."{c}"::JSON as "{c}"' if t == "JSON" else f'r."{c}" as "{c}"'
        for c, t in columns.items()
    )
    spec = {c: ("JSON" if t == "JSON" else t) for c, t in columns.items()}
    con.execute(
        f"create or replace temp table {name} as "
        f"select {casts} from ("
        f"select json_transform(j, '{_struct_spec(spec)}') as r "
        "from (select unnest(?::varchar[])::json as j))",
        [payload],
    )


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
        if img["article_id"] in stored:
            stored[img["article_id"]]["images"].append(img)
    return stored


# --------------------------------------------------------------------------- public API


def load_run(
    con: duckdb.DuckDBPyConnection,
    run: Mapping[str, Any],
    articles: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]],
    *,
    flow_run_id: str | None = None,
    protect_fields: bool = False,
    quality: Mapping[str, Any] | None = None,
    checkpoint: bool = True,
) -> LoadResult:
    """Load one run in ONE transaction, then CHECKPOINT.

    Args:
        con: a read-write connection on a migrated database (``warehouse.db.writer``).
        run: the ``crawl_runs`` row; ``run_id`` is required, other known columns
            optional, unknown keys are kept in ``crawl_runs.stats`` (JSON). The loader
            sets new/updated/unchanged/stale/protected itself, and ``failed`` to
            ``len(failures)`` when absent.
        articles: ``ParsedArticle.to_row()`` dicts plus ``fetched_at`` (aware datetime or
            ISO text; now when absent). Datetimes must carry a UTC offset.
        failures: ``failures.jsonl`` records (url, stage, reason, status, detail, at);
            they replace this run's earlier failure rows.
        flow_run_id: the writing flow run (default ``run["flow_run_id"]``).
        protect_fields: keep a non-empty stored title/body_text/published_at rather than
            overwrite it with an empty one (for a layout-drift gate).
        quality: optional scorecard written with :func:`write_quality` in the same
            transaction.
        checkpoint: run ``CHECKPOINT`` after the commit.
    """
    run_id = str(run.get("run_id") or "").strip()
    if not run_id:
        raise ValueError("run must have a run_id")
    flow_run_id = flow_run_id or run.get("flow_run_id") or None
    now = datetime.now(UTC)
    rows, duplicates = _dedupe([_normalise(a, now) for a in articles])
    result = LoadResult(duplicates=duplicates)
    protected: Counter[str] = Counter()

    con.execute("begin transaction")
    try:
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
                    if _empty(row[f]) and not _empty(old[f]):
                        row[f] = old[f]
                        protected[f] += 1
                        if f == "body_text":
                            row["body_markdown"] = old["body_markdown"]
                            row["word_count"] = old["word_count"]
            row["content_hash"] = content_hash(row)
            row["run_id"] = run_id
            row["flow_run_id"] = flow_run_id
            if old is None:
                result.new += 1
                row["first_seen_at"] = row["last_changed_at"] = row["fetched_at"]
                row["version"] = 1
            elif old["content_hash"] == row["content_hash"]:
                result.unchanged += 1
                row["first_seen_at"] = old["first_seen_at"]
                row["last_changed_at"] = old["last_changed_at"]
                row["version"] = old["version"]
            else:
                result.updated += 1
                row["first_seen_at"] = old["first_seen_at"]
                row["last_changed_at"] = row["fetched_at"]
                row["version"] = old["version"] + 1
                changes.append(
                    {
                        "article_id": row["article_id"],
                        "replaced_at": row["fetched_at"],
                        "replaced_by_hash": row["content_hash"],
                        "changed_fields": _changed_fields(old, row),
                    }
                )
            write.append(row)
        result.protected = sum(protected.values())
        result.protected_fields = dict(protected)

        if changes:
            _stage(con, "_load_changes", CHANGE_COLUMNS, changes)
            _insert_versions(con, flow_run_id)
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
            "delete from article_images where article_id in (select article_id from _load_articles)"
        )
        con.execute(
            f"insert into article_images ({', '.join(IMAGE_COLUMNS)}) "
            f"select {', '.join(IMAGE_COLUMNS)} from _load_images"
        )
        result.images = len(images)
        _upsert_categories(con, write, now)
        result.failures = _replace_failures(con, run_id, failures, flow_run_id)
        run_row = dict(run)
        run_row.setdefault("failed", len(failures))
        for k in ("new", "updated", "unchanged", "stale", "protected"):
            run_row[k] = getattr(result, k)
        _upsert_run(con, run_row, flow_run_id)
        if quality is not None:
            _replace_quality(con, run_id, quality)
        for t in ("_load_changes", "_load_articles", "_load_images"):
            con.execute(f"drop table if exists {t}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    if checkpoint:
        con.execute("checkpoint")
    logger.info(
        "loaded run %s: %d new, %d updated, %d unchanged, %d stale, %d images, %d failures%s",
        run_id,
        result.new,
        result.updated,
        result.unchanged,
        result.stale,
        result.images,
        result.failures,
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


def _replace_failures(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    failures: Sequence[Mapping[str, Any]],
    flow_run_id: str | None,
) -> int:
    rows = []
    for f in failures:
        status = f.get("status")
        rows.append(
            {
                "run_id": run_id,
                "url": f.get("url"),
                "stage": f.get("stage"),
                "reason": f.get("reason"),
                "status": int(status) if status not in (None, "") else None,
                "detail": f.get("detail"),
                "at": _aware(f.get("at"), f"failure {f.get('url')} at"),
                "flow_run_id": flow_run_id,
            }
        )
    con.execute("delete from fetch_failures where run_id = ?", [run_id])
    if rows:
        _stage(con, "_load_failures", FAILURE_COLUMNS, rows)
        cols = _cols(FAILURE_COLUMNS)
        con.execute(f"insert into fetch_failures ({cols}) select {cols} from _load_failures")
        con.execute("drop table if exists _load_failures")
    return len(rows)


def _upsert_run(
    con: duckdb.DuckDBPyConnection, run: Mapping[str, Any], flow_run_id: str | None
) -> None:
    row: dict[str, Any] = {c: run.get(c) for c in RUN_COLUMNS if c != "stats"}
    row["flow_run_id"] = flow_run_id if flow_run_id is not None else run.get("flow_run_id")
    extras = {k: v for k, v in run.items() if k not in RUN_COLUMNS}
    if isinstance(run.get("stats"), Mapping):
        extras = {**run["stats"], **extras}
    row["stats"] = extras or None
    for c in ("started_at", "finished_at"):
        row[c] = _aware(row[c], f"run {row['run_id']} {c}")
    if row["duration_s"] is None and row["started_at"] and row["finished_at"]:
        row["duration_s"] = (row["finished_at"] - row["started_at"]).total_seconds()
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
    params: Mapping[str, Any] | None = None,
    started_at: datetime | None = None,
) -> None:
    """Record a run as ``running`` (so a crash leaves a trace)."""
    _upsert_run(
        con,
        {
            "run_id": run_id,
            "base_url": base_url,
            "params": dict(params) if params is not None else None,
            "started_at": started_at or datetime.now(UTC),
            "status": "running",
        },
        flow_run_id,
    )


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    status: str,
    message: str | None = None,
    finished_at: datetime | None = None,
    **counts: Any,
) -> None:
    """Set a run's final status, finish time, duration and any counters given."""
    finished = finished_at or datetime.now(UTC)
    row = {"run_id": run_id, "status": status, "message": message, "finished_at": finished}
    row.update(counts)
    started = con.execute("select started_at from crawl_runs where run_id = ?", [run_id]).fetchone()
    if started and started[0] is not None and "duration_s" not in counts:
        row["duration_s"] = (finished - started[0]).total_seconds()
    _upsert_run(con, row, counts.get("flow_run_id"))


def known_articles(con: duckdb.DuckDBPyConnection) -> dict[str, KnownArticle]:
    """Every stored article's fetch time, dates and content hash, by article_id."""
    cur = con.execute(
        "select article_id, fetched_at, published_at, content_hash, modified_at, version, "
        "url from articles"
    )
    return {
        r[0]: KnownArticle(
            fetched_at=r[1],
            published_at=r[2],
            content_hash=r[3],
            modified_at=r[4],
            version=r[5],
            url=r[6],
        )
        for r in cur.fetchall()
    }


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


def write_quality(con: duckdb.DuckDBPyConnection, run_id: str, scorecard: Mapping[str, Any]) -> int:
    """Replace the run's ``run_quality`` rows with ``scorecard``; returns the row count.

    ``scorecard`` maps a field (or metric) name to a fill rate, or to a mapping/dataclass
    with ``fill_rate``, ``filled``, ``total``, ``threshold``, ``passed`` (other keys go to
    the ``detail`` JSON).
    """
    con.execute("begin transaction")
    try:
        n = _replace_quality(con, run_id, scorecard)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return n


__all__ = [
    "CONTENT_FIELDS",
    "KnownArticle",
    "LoadResult",
    "PROTECTED_FIELDS",
    "content_hash",
    "finish_run",
    "known_articles",
    "load_run",
    "start_run",
    "write_quality",
]
