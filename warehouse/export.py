"""Exports of the warehouse for other tools: Parquet (hive-partitioned), CSV, JSONL.

Three datasets, each in its own folder of ``out``: ``articles``, ``article_images`` and
``article_versions``. Rows are chosen by the article's publication day in Vietnam time
(``since``/``until`` inclusive); images and old versions follow their article.

- **parquet**: ``out/<dataset>/year=YYYY/month=MM/data_0.parquet`` (DuckDB ``COPY …
  PARTITION_BY``), columns and types as in the warehouse (TIMESTAMPTZ stays an instant,
  lists stay lists). Read back with
  ``read_parquet('out/articles/**/*.parquet', hive_partitioning = true)``.
  The partition month is that of ``published_at`` in Vietnam time (``first_seen_at`` when
  an article has no date); images and versions take their article's partition.
- **jsonl**: ``out/<dataset>/<dataset>.jsonl``: one JSON object per line, every key on
  every line, the same JSON type for a key on every line (``null`` where empty; lists are
  arrays), timestamps as ISO 8601 strings in Vietnam time (``2025-07-11T11:34:00+07:00``,
  second precision; Vietnam has kept UTC+7 without summer time since 1975). Loads with
  ``datasets.load_dataset("json", data_files="out/articles/articles.jsonl")``.
- **csv**: ``out/<dataset>/<dataset>.csv`` with a header; lists as JSON arrays, timestamps
  as in JSONL.

``out/SCHEMA.md`` describes every column of what was written; ``out/MANIFEST.json`` counts
the rows. A dataset with no rows gets an empty folder and no file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

SITE_TIMEZONE = "Asia/Ho_Chi_Minh"
FORMATS = ("parquet", "csv", "jsonl")
DATASETS = ("articles", "article_images", "article_versions")

COLUMN_DOCS: dict[str, str] = {
    "article_id": "17-digit ID from the URL: creation time yyyyMMddHHmmssfff (Vietnam)",
    "url": "canonical https://baotintuc.vn/... URL",
    "title": "headline",
    "sapo": "lead paragraph",
    "body_text": "body paragraphs in reading order, separated by a blank line",
    "body_markdown": "body as Markdown (sub-headings, lists, images in place)",
    "byline": "author line as printed",
    "authors": "person names parsed from the byline",
    "source": "agency or organisation (e.g. TTXVN)",
    "published_at": "publication time",
    "modified_at": "last modification time the page states",
    "date_source": "where published_at came from: meta, jsonld, visible, id17",
    "date_disagreement": "the page's dates disagree with each other",
    "category": "leaf category name",
    "category_id": "numeric category id",
    "parent_category_id": "parent category id (0 for a top-level category)",
    "tags": "tags as printed",
    "related_article_ids": "IDs of related articles linked from the page",
    "word_count": "whitespace-separated tokens of body_text",
    "kind": "article, photo, video, emagazine, infographic or live",
    "video_urls": "video files of the page",
    "warnings": "extraction warnings",
    "parser_version": "site parser that read the page",
    "extractor_version": "body extractor version",
    "content_hash": "sha256 of the content a reader sees",
    "first_seen_at": "first fetch of the article",
    "fetched_at": "last fetch",
    "last_changed_at": "fetch at which the content last changed",
    "version": "1 + number of content changes seen",
    "run_id": "pipeline run that wrote the row",
    "flow_run_id": "Prefect flow run that wrote the row",
    "position": "0-based image position in reading order",
    "caption": "image caption (credit included)",
    "credit": "photographer/agency after 'Ảnh…:'",
    "images": "images of that version: position, url, caption, credit",
    "replaced_at": "fetch time of the version that replaced this one",
    "replaced_by_hash": "content_hash of the version that replaced this one",
    "replaced_by_flow_run_id": "flow run that replaced this version",
    "changed_fields": "content fields that differ in the next version",
    "year": "partition: year of publication (Vietnam time)",
    "month": "partition: month of publication, 01-12 (Vietnam time)",
}


class ExportError(ValueError):
    """The export cannot be written as asked (e.g. the target folder is not empty)."""


@dataclass(slots=True)
class ExportSummary:
    out_dir: Path
    fmt: str
    rows: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = ", ".join(f"{n} {name}" for name, n in self.rows.items())
        return f"exported {parts} as {self.fmt} to {self.out_dir}"


def _selection(since: date | None, until: date | None) -> tuple[str, list[object]]:
    local = f"(coalesce(a.published_at, a.first_seen_at) at time zone '{SITE_TIMEZONE}')"
    conds, params = [], []
    if since:
        conds.append(f"{local} >= ?::timestamp")
        params.append(since)
    if until:
        conds.append(f"{local} < (?::date + 1)::timestamp")
        params.append(until)
    return (" and ".join(conds) or "true"), params


def _iso(col: str) -> str:
    return (
        f"strftime({col} at time zone '{SITE_TIMEZONE}', '%Y-%m-%dT%H:%M:%S') || '+07:00'"
    )


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [
        (str(r[0]), str(r[1]))
        for r in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'main' and table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
    ]


def _dataset_sql(
    con: duckdb.DuckDBPyConnection, table: str, fmt: str, where: str
) -> tuple[str, list[tuple[str, str]]]:
    cols = _columns(con, table)
    alias = "a" if table == "articles" else "x"
    selected = []
    for name, dtype in cols:
        ref = f'{alias}."{name}"'
        if fmt != "parquet" and dtype.startswith("TIMESTAMP"):
            selected.append(f'{_iso(ref)} as "{name}"')
        else:
            selected.append(ref)
    partition = f"(coalesce(a.published_at, a.first_seen_at) at time zone '{SITE_TIMEZONE}')"
    if fmt == "parquet":
        selected += [
            f"strftime({partition}, '%Y') as year",
            f"strftime({partition}, '%m') as month",
        ]
    source = "articles a" if table == "articles" else (
        f"{table} x join articles a on a.article_id = x.article_id"
    )
    order = "a.article_id" + ("" if table == "articles" else
                              ", x.position" if table == "article_images" else ", x.version")
    return f"select {', '.join(selected)} from {source} where {where} order by {order}", cols


def export_warehouse(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    fmt: str,
    *,
    since: date | None = None,
    until: date | None = None,
) -> ExportSummary:
    """Write the three datasets of the selected articles into ``out_dir`` (new or empty)."""
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ExportError(f"{out_dir} exists and is not an empty folder: choose a new --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    where, params = _selection(since, until)
    summary = ExportSummary(out_dir=out_dir, fmt=fmt)
    schemas: dict[str, list[tuple[str, str]]] = {}
    for table in DATASETS:
        sql, cols = _dataset_sql(con, table, fmt, where)
        schemas[table] = cols
        target = out_dir / table
        count_row = con.execute(f"select count(*) from ({sql})", params).fetchone()
        summary.rows[table] = int(count_row[0]) if count_row else 0
        if fmt == "parquet":
            target.mkdir()
            if summary.rows[table]:
                con.execute(
                    f"copy ({sql}) to '{_quote(target)}' (format parquet, "
                    "partition_by (year, month), compression zstd)",
                    params,
                )
        elif summary.rows[table]:  # an empty file would break loaders (datasets: no rows)
            target.mkdir()
            file = target / f"{table}.{fmt}"
            options = "format json" if fmt == "jsonl" else "format csv, header true"
            if fmt == "csv":
                sql = _lists_as_json(sql, cols)
            con.execute(f"copy ({sql}) to '{_quote(file)}' ({options})", params)
        else:
            target.mkdir()
        summary.files[table] = sum(1 for p in target.rglob("*") if p.is_file())
    _write_schema(out_dir, fmt, schemas, summary, since, until)
    return summary


def _lists_as_json(sql: str, cols: list[tuple[str, str]]) -> str:
    """CSV cells of list and struct columns as JSON arrays (DuckDB prints ``[a, b]``)."""
    out = []
    for name, dtype in cols:
        if dtype.endswith("[]") or dtype.startswith("STRUCT"):
            out.append(f'to_json("{name}")::varchar as "{name}"')
        else:
            out.append(f'"{name}"')
    return f"select {', '.join(out)} from ({sql})"


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _write_schema(
    out_dir: Path,
    fmt: str,
    schemas: dict[str, list[tuple[str, str]]],
    summary: ExportSummary,
    since: date | None,
    until: date | None,
) -> None:
    when = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        "# baotintuc warehouse export",
        "",
        f"Format `{fmt}`, written {when} (UTC); articles published "
        f"{since or 'any time'} to {until or 'now'} (Vietnam days).",
        "",
    ]
    if fmt == "parquet":
        lines += [
            "Hive-partitioned by `year` and `month` of publication (Vietnam time): read with",
            "`select * from read_parquet('articles/**/*.parquet', hive_partitioning = true)`.",
            "Timestamps are instants (TIMESTAMPTZ); show them in Vietnam time with "
            "`SET TimeZone = 'Asia/Ho_Chi_Minh'` or `published_at at time zone "
            "'Asia/Ho_Chi_Minh'`.",
        ]
    else:
        lines += [
            "Timestamps are ISO 8601 strings in Vietnam time (`+07:00`), to the second.",
            "Lists are JSON arrays" + (" (in CSV cells too)." if fmt == "csv" else "."),
        ]
    for table, cols in schemas.items():
        lines += ["", f"## `{table}` ({summary.rows[table]} rows)", "",
                  "| column | type | meaning |", "|---|---|---|"]
        for name, dtype in cols:
            shown = dtype if fmt == "parquet" or not dtype.startswith("TIMESTAMP") else (
                "VARCHAR (ISO 8601)")
            lines.append(f"| `{name}` | {shown} | {COLUMN_DOCS.get(name, '')} |")
        if fmt == "parquet":
            lines += [f"| `year` | partition | {COLUMN_DOCS['year']} |",
                      f"| `month` | partition | {COLUMN_DOCS['month']} |"]
    (out_dir / "SCHEMA.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = {"format": fmt, "written_at": when, "since": str(since) if since else None,
                "until": str(until) if until else None, "rows": summary.rows,
                "files": summary.files}
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n",
                                           encoding="utf-8")


__all__ = ["DATASETS", "FORMATS", "ExportError", "ExportSummary", "export_warehouse"]
