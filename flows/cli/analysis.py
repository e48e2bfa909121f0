"""The commands that read the warehouse: ``query``, ``search``, ``attention``, ``report``,
``export``.

Every failure a user can cause (no database, a locked one, bad SQL, a refused statement, a
malformed search) is one ``baotintuc: …`` line on stderr and a non-zero exit code; the
traceback, if any, goes to the log only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any

from config import Settings, load_settings
from flows.cli.common import EXIT_FAILED, EXIT_OK, fail, parse_since, positive
from flows.cli.formats import FORMATS, write_rows

logger = logging.getLogger(__name__)


def _db_path(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.db) if args.db else settings.paths.db_path


def _missing(db: Path) -> int:
    return fail(f"no database at {db}: run `make run` or `make demo` first, or pass --db")


def _filters(args: argparse.Namespace) -> Any:
    from warehouse.search import Filters

    return Filters(since=args.since, until=args.until, category=args.category)


def _check_range(args: argparse.Namespace) -> str | None:
    since: date | None = getattr(args, "since", None)
    until: date | None = getattr(args, "until", None)
    if since and until and until < since:
        return f"--until {until} is before --since {since}"
    return None


# --------------------------------------------------------------------------- query


def cmd_query(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = _db_path(args, settings)
    if not db.exists():
        return _missing(db)
    import duckdb

    from warehouse.confined import RefusedStatement, confined_connect, run_confined
    from warehouse.db import WarehouseLocked

    try:
        con = confined_connect(db, lock_timeout=settings.warehouse.lock_timeout_seconds)
    except WarehouseLocked as exc:
        return fail(str(exc))
    except duckdb.Error as exc:
        return fail(f"cannot open {db}: {_first_line(exc)}")
    try:
        columns, _, rows = run_confined(con, args.sql)
    except RefusedStatement as exc:
        return fail(f"refused: {exc}")
    except duckdb.Error as exc:
        logger.debug("query failed", exc_info=True)
        return fail(f"SQL error: {_first_line(exc)}", EXIT_FAILED)
    finally:
        con.close()
    write_rows(columns, rows, args.format, max_cell=args.max_width)
    return EXIT_OK


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split("\n")[0].split())
    return text or exc.__class__.__name__


# --------------------------------------------------------------------------- search


def _open_for_search(db: Path, settings: Settings) -> Any:
    """Read-only connection; a writer's lock is waited for (bounded) in silence, so that
    a failure is the one line of :class:`warehouse.db.WarehouseLocked`."""
    from warehouse.db import connect

    logging.getLogger("warehouse.db").setLevel(logging.ERROR)
    return connect(
        db,
        read_only=True,
        lock_timeout=settings.warehouse.lock_timeout_seconds,
        retry_interval=settings.warehouse.lock_retry_interval_seconds,
    )


def cmd_search(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = _db_path(args, settings)
    if not db.exists():
        return _missing(db)
    if args.rebuild:
        return _rebuild_index(db, settings)
    if not args.query:
        return fail("search: give a QUERY (or --rebuild)")
    if err := _check_range(args):
        return fail(err)
    import duckdb

    from warehouse.db import WarehouseLocked
    from warehouse.search import (
        QuerySyntaxError,
        SearchIndexError,
        index_status,
        search,
    )

    query = " ".join(args.query)
    try:
        with _open_for_search(db, settings) as con:
            result = search(
                con, query, filters=_filters(args), limit=args.limit, settings=settings.search
            )
            _, behind = index_status(con)
    except WarehouseLocked as exc:
        return fail(f"the search index cannot be read now: {exc}")
    except SearchIndexError as exc:
        return fail(str(exc))
    except QuerySyntaxError as exc:
        return fail(f"search: {exc}")
    except duckdb.Error as exc:
        logger.debug("search failed", exc_info=True)
        return fail(f"search failed: {_first_line(exc)}", EXIT_FAILED)
    if behind:
        print(
            f"baotintuc: note: the search index lacks {behind} new or changed articles "
            "(run `baotintuc search --rebuild` or the next load updates it)",
            file=sys.stderr,
        )
    columns = ["article_id", "url", "title", "published_at", "category", "score", "snippet"]
    rows = [[h.as_dict()[c] for c in columns] for h in result.hits]
    if args.format == "table":
        _print_hits(result)
    else:
        write_rows(columns, rows, args.format)
    return EXIT_OK


def _print_hits(result: Any) -> None:
    shown = len(result.hits)
    print(f"{result.total} articles match {result.query!r}; the best {shown}:")
    for i, h in enumerate(result.hits, 1):
        when = h.published_at.strftime("%Y-%m-%d %H:%M") if h.published_at else "?"
        print(f"\n{i:>2}. {h.title}")
        print(f"    {when}  {h.category or ''}  score {h.score:.2f}  id {h.article_id}")
        print(f"    {h.url}")
        if h.snippet:
            print(f"    {h.snippet}")


def _rebuild_index(db: Path, settings: Settings) -> int:
    import duckdb

    from warehouse.db import WarehouseLocked, writer
    from warehouse.search import update_search_index

    try:
        with writer(db, settings.warehouse, bulk=True) as con:
            result = update_search_index(con, rebuild=True, settings=settings.search)
    except WarehouseLocked as exc:
        return fail(f"cannot rebuild the search index now: {exc}")
    except duckdb.Error as exc:
        logger.debug("rebuild failed", exc_info=True)
        return fail(f"rebuilding the search index failed: {_first_line(exc)}", EXIT_FAILED)
    print(result)
    return EXIT_OK


# --------------------------------------------------------------------------- attention


def cmd_attention(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = _db_path(args, settings)
    if not db.exists():
        return _missing(db)
    if err := _check_range(args):
        return fail(err)
    import duckdb

    from warehouse.attention import attention
    from warehouse.db import WarehouseLocked
    from warehouse.search import QuerySyntaxError, SearchIndexError

    try:
        with _open_for_search(db, settings) as con:
            rows = attention(con, args.queries, by=args.by, filters=_filters(args))
    except WarehouseLocked as exc:
        return fail(f"the warehouse cannot be read now: {exc}")
    except SearchIndexError as exc:
        return fail(str(exc))
    except QuerySyntaxError as exc:
        return fail(f"attention: {exc}")
    except duckdb.Error as exc:
        logger.debug("attention failed", exc_info=True)
        return fail(f"attention failed: {_first_line(exc)}", EXIT_FAILED)
    if args.format == "table":
        _print_attention_table(args.queries, rows)
    else:
        columns = ["period", "query", "count", "total", "share"]
        write_rows(columns, [[r.as_dict()[c] for c in columns] for r in rows], args.format)
    return EXIT_OK


def _print_attention_table(queries: list[str], rows: list[Any]) -> None:
    by_period: dict[date, dict[str, Any]] = {}
    for r in rows:
        by_period.setdefault(r.period, {})[r.query] = r
    columns = ["period", "total"]
    for i, q in enumerate(queries, 1):
        label = q if len(q) <= 24 else q[:23] + "…"
        columns += [f"[{i}] {label}", f"[{i}] share"]
    table = []
    for period, per_query in by_period.items():
        first = next(iter(per_query.values()))
        line: list[Any] = [period.isoformat(), first.total]
        for q in queries:
            r = per_query[q]
            line += [r.count, f"{100 * r.share:.1f} %"]
        table.append(line)
    write_rows(columns, table, "table")


# --------------------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = _db_path(args, settings)
    if not db.exists():
        return _missing(db)
    if err := _check_range(args):
        return fail(err)
    import duckdb

    from warehouse.db import WarehouseLocked
    from warehouse.report.build import write_report
    from warehouse.search import QuerySyntaxError

    out = Path(args.out)
    try:
        with _open_for_search(db, settings) as con:
            data = write_report(con, out, db_path=str(db), since=args.since, until=args.until,
                                queries=args.query)
    except WarehouseLocked as exc:
        return fail(f"the warehouse cannot be read now: {exc}")
    except QuerySyntaxError as exc:
        return fail(f"report: --query: {exc}")
    except (OSError, duckdb.Error) as exc:
        logger.debug("report failed", exc_info=True)
        return fail(f"report failed: {_first_line(exc)}", EXIT_FAILED)
    print(f"report of {data.articles} articles written to {out}")
    return EXIT_OK


# --------------------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = _db_path(args, settings)
    if not db.exists():
        return _missing(db)
    if err := _check_range(args):
        return fail(err)
    import duckdb

    from warehouse.db import WarehouseLocked
    from warehouse.export import ExportError, export_warehouse

    try:
        with _open_for_search(db, settings) as con:
            summary = export_warehouse(
                con, Path(args.out), args.format, since=args.since, until=args.until
            )
    except WarehouseLocked as exc:
        return fail(f"the warehouse cannot be read now: {exc}")
    except ExportError as exc:
        return fail(f"export: {exc}")
    except (OSError, duckdb.Error) as exc:
        logger.debug("export failed", exc_info=True)
        return fail(f"export failed: {_first_line(exc)}", EXIT_FAILED)
    print(f"{summary}; schema in {Path(args.out) / 'SCHEMA.md'}")
    return EXIT_OK


# --------------------------------------------------------------------------- registration


def _add_range(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", type=parse_since, help="published on/after YYYY-MM-DD (Vietnam)")
    p.add_argument("--until", type=parse_since, help="published on/before YYYY-MM-DD (Vietnam)")


def register(sub: Any) -> None:
    q = sub.add_parser(
        "query",
        help="run one read-only SELECT against the warehouse (confined to that file)",
        description="Run one SELECT (or DESCRIBE/SHOW/SUMMARIZE/EXPLAIN) read-only. The "
        "connection cannot read or write other files, attach databases, load extensions "
        "or change settings. Exit codes: 0 rows printed, 1 SQL error, 2 refused or no DB.",
    )
    q.add_argument("sql")
    q.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    q.add_argument("--format", choices=FORMATS, default="table")
    q.add_argument("--max-width", type=positive, default=60,
                   help="table format: cut cells longer than this (default 60)")
    q.set_defaults(func=cmd_query)

    s = sub.add_parser(
        "search",
        help="ranked full-text search (accent-insensitive; \"phrases\", OR, -word)",
        description='Words are ANDed; "quoted words" must be consecutive; a OR b; -a or '
        "NOT a excludes; parentheses group. Case, diacritics, đ and old/new tone "
        "placement are ignored. Matches are marked «like this» in the snippet.",
    )
    s.add_argument("query", nargs="*", metavar="QUERY")
    s.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    _add_range(s)
    s.add_argument("--category", help="category name (accents optional) or id")
    s.add_argument("--limit", type=positive, default=20)
    s.add_argument("--format", choices=("table", "json", "csv"), default="table")
    s.add_argument("--rebuild", action="store_true",
                   help="rebuild the whole search index (needs the warehouse for itself)")
    s.set_defaults(func=cmd_search)

    a = sub.add_parser(
        "attention",
        help="share of articles matching each query, per day/week/month",
    )
    a.add_argument("queries", nargs="+", metavar="QUERY")
    a.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    a.add_argument("--by", choices=("day", "week", "month"), default="day")
    _add_range(a)
    a.add_argument("--category", help="category name (accents optional) or id")
    a.add_argument("--format", choices=("table", "json", "csv"), default="table")
    a.set_defaults(func=cmd_attention)

    r = sub.add_parser(
        "report", help="one self-contained HTML report (charts, top words, data quality)"
    )
    r.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    _add_range(r)
    r.add_argument("--query", action="append", metavar="Q",
                   help="a search query to chart attention for (repeatable; default: the "
                   "three top tags)")
    r.add_argument("--out", required=True, help="the HTML file to write")
    r.set_defaults(func=cmd_report)

    e = sub.add_parser(
        "export",
        help="write articles, images and versions as Parquet (hive-partitioned), CSV or JSONL",
    )
    e.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    _add_range(e)
    e.add_argument("--format", choices=("parquet", "csv", "jsonl"), required=True)
    e.add_argument("--out", required=True, help="new or empty folder to write into")
    e.set_defaults(func=cmd_export)


__all__ = ["register"]
