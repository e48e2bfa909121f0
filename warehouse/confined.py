"""A read-only connection confined to one warehouse file, for ad-hoc SQL (``baotintuc query``).

Opening the file read-only is not enough: from a read-only connection DuckDB can still read
any file (``read_text('/etc/shadow')``, ``read_csv``, ``glob``), write files (``COPY … TO``,
``EXPORT DATABASE``), attach another database read-write, install and load extensions and
change its own settings. Two layers close that:

1. DuckDB's own switches, set when the database is opened (checked on DuckDB 2.0.1):
   ``enable_external_access = false`` (no file system access but the warehouse file itself,
   no ATTACH of a file, no INSTALL, no loading of external extensions; it cannot be turned
   back on), ``autoinstall_known_extensions`` / ``autoload_known_extensions = false``,
   ``allow_community_extensions`` / ``allow_unsigned_extensions`` /
   ``allow_persistent_secrets = false``; then the session ``TimeZone`` is set and
   ``lock_configuration = true`` comes last, so no ``SET``, ``RESET`` or configuration
   ``PRAGMA`` can change any of it (the order matters: ``TimeZone`` is an ICU option that
   cannot be given at open time, and nothing can be set after the lock).
2. One statement per call, of type SELECT (this includes ``DESCRIBE``, ``SHOW``,
   ``SUMMARIZE``, ``FROM t``) or EXPLAIN; anything else is refused before it runs, with a
   message that names the statement type.

Built-in extensions (icu, json, parquet) stay available, and so do the warehouse's macros
and views (``vn_fold``, ``vn_tokens``, ``articles_vn`` …).
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from warehouse.db import WarehouseLocked, _lock_conflict

SITE_TIMEZONE = "Asia/Ho_Chi_Minh"
ALLOWED_STATEMENTS = {"SELECT", "EXPLAIN"}
CONFINED_CONFIG: dict[str, str | bool] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
}


class RefusedStatement(ValueError):
    """The SQL is not a single read-only SELECT; the message says what was refused."""


def confined_connect(
    path: str | Path,
    *,
    timezone: str = SITE_TIMEZONE,
    lock_timeout: float = 10.0,
    retry_interval: float = 0.5,
) -> duckdb.DuckDBPyConnection:
    """Open ``path`` read-only with every way out of the file closed (see module doc).

    A writer holding the file is waited for up to ``lock_timeout`` seconds.

    Raises:
        WarehouseLocked: a writer kept the file past ``lock_timeout``.
        duckdb.IOException: the file cannot be opened.
    """
    start = time.monotonic()
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True, config=dict(CONFINED_CONFIG))
            break
        except duckdb.IOException as err:
            conflict = _lock_conflict(err)
            waited = time.monotonic() - start
            if conflict is None:
                raise
            if waited >= lock_timeout:
                raise WarehouseLocked(Path(path), waited, *conflict) from None
            time.sleep(retry_interval)
    try:
        con.execute(f"SET TimeZone = '{timezone}'")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but exactly one SELECT/EXPLAIN statement.

    Raises:
        RefusedStatement: empty SQL, several statements, or another statement type.
        duckdb.ParserException: the SQL does not parse.
    """
    if not sql.strip().strip(";").strip():
        raise RefusedStatement("empty SQL: give one SELECT statement")
    statements = con.extract_statements(sql)
    if len(statements) != 1:
        kinds = ", ".join(s.type.name for s in statements)
        raise RefusedStatement(
            f"one statement at a time: got {len(statements)} ({kinds})"
        )
    kind = statements[0].type.name
    if kind not in ALLOWED_STATEMENTS:
        raise RefusedStatement(
            f"{kind} statements are refused: `query` runs read-only SELECT statements only"
        )


def run_confined(
    con: duckdb.DuckDBPyConnection, sql: str
) -> tuple[list[str], list[str], list[tuple[object, ...]]]:
    """Check then run ``sql``: ``(column names, column types, rows)``."""
    check_statement(con, sql)
    rel = con.sql(sql)
    if rel is None:  # pragma: no cover - SELECT/EXPLAIN always give a relation
        return [], [], []
    return list(rel.columns), [str(t) for t in rel.types], rel.fetchall()


__all__ = [
    "ALLOWED_STATEMENTS",
    "CONFINED_CONFIG",
    "RefusedStatement",
    "check_statement",
    "confined_connect",
    "run_confined",
]
