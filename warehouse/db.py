"""Opening the DuckDB warehouse: bounded lock retry, numbered migrations, views.

DuckDB lets one process hold a file read-write, and while it does no other process can
open it at all, readers included. Writers therefore keep connections short
(:func:`writer`), and :func:`connect` waits a bounded time for a lock held by another
process, logging one line that names that process, before raising :class:`WarehouseLocked`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import duckdb

from baotintuc.site import ALL_CATEGORIES

if TYPE_CHECKING:
    from config import WarehouseSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_DIR = Path(__file__).with_name("schema")
VIEWS_DIR = Path(__file__).with_name("views")
SITE_TIMEZONE = "Asia/Ho_Chi_Minh"

_LOCK_RE = re.compile(r"Conflicting lock is held in (?P<holder>.*?) \(PID (?P<pid>\d+)\)")
_OUT_OF_MEMORY_RE = re.compile(r"Out of Memory|(could not|failed to) allocate", re.IGNORECASE)
_MIGRATION_RE = re.compile(r"^(?P<version>\d{3,})_(?P<name>[a-z0-9_]+)\.sql$")


class WarehouseWriteError(RuntimeError):
    """A write failed for a reason that is not ours to retry (disk full, I/O error)."""


class WarehouseUnreadable(RuntimeError):
    """The file is not a DuckDB database we can read (corrupt, truncated, another format)."""


class WarehouseLocked(RuntimeError):
    """Another process holds the DuckDB file and did not let go within the timeout."""

    def __init__(self, path: Path, waited: float, pid: int | None, holder: str | None) -> None:
        self.path = path
        self.waited = waited
        self.pid = pid
        self.holder = holder
        who = _describe_holder(pid, holder)
        stop = f" (`kill {pid}`)" if pid else ""
        super().__init__(
            f"warehouse {path} is locked by {who}; gave up after waiting {waited:.1f}s. "
            "DuckDB allows a single process to open the file while it writes (readers "
            "included). Wait for that process to finish, or stop it if it is stuck"
            f"{stop}, then retry; to wait longer raise warehouse.lock_timeout_seconds "
            "(env BTT_WAREHOUSE__LOCK_TIMEOUT_SECONDS)."
        )


def _process_cmdline(pid: int) -> str | None:
    """The command line of ``pid`` (Linux /proc), or None."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    cmd = " ".join(raw.replace(b"\0", b" ").decode("utf-8", "replace").split())  # one line
    return cmd[:200] or None


def _describe_holder(pid: int | None, holder: str | None) -> str:
    if pid is None:
        return "another process"
    cmd = _process_cmdline(pid) or holder or "?"
    return f"another process (PID {pid}: {cmd})"


def _lock_conflict(err: BaseException) -> tuple[int | None, str | None] | None:
    """(pid, program) when ``err`` is DuckDB's file lock conflict, else None."""
    text = str(err)
    if "Could not set lock on file" not in text:
        return None
    m = _LOCK_RE.search(text)
    if not m:
        return None, None
    return int(m["pid"]), m["holder"]


def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    lock_timeout: float = 60.0,
    retry_interval: float = 1.0,
    timezone: str | None = SITE_TIMEZONE,
    row_group_size: int = 0,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting up to ``lock_timeout`` s for another process's lock.

    Args:
        path: the DuckDB file (its parent directory is created) or ``":memory:"``.
        read_only: open read-only (several read-only processes may share the file).
        lock_timeout: seconds to keep retrying while another process holds the file.
        retry_interval: seconds between attempts.
        timezone: session ``TimeZone`` for TIMESTAMPTZ display/arithmetic (None: keep
            DuckDB's default). Stored values are instants either way.
        row_group_size: rows per row group of what this read-write connection appends
            (0: DuckDB's default). DuckDB takes it only as an ``ATTACH`` option, not
            stored in the file, so the file is attached to an in-memory session, under
            its file name as ``duckdb.connect`` names it, and made the default catalog.

    Raises:
        WarehouseLocked: the file stayed locked for ``lock_timeout`` seconds.
    """
    db = str(path)
    file = Path(db)
    if db != ":memory:" and not read_only:
        file.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    warned = False
    while True:
        try:
            con = _open(db, read_only, row_group_size)
            break
        except duckdb.IOException as err:
            conflict = _lock_conflict(err)
            if conflict is None:
                raise
            pid, holder = conflict
            waited = time.monotonic() - start
            if waited >= lock_timeout:
                raise WarehouseLocked(file, waited, pid, holder) from None
            if not warned:
                logger.warning(
                    "warehouse %s is locked by %s; waiting up to %.0fs (retry every %.1fs)",
                    file,
                    _describe_holder(pid, holder),
                    lock_timeout,
                    retry_interval,
                )
                warned = True
            time.sleep(max(0.01, min(retry_interval, lock_timeout - waited)))
    if warned:
        logger.info("warehouse %s opened after waiting %.1fs", file, time.monotonic() - start)
    if timezone:
        con.execute(f"SET TimeZone = '{timezone}'")
    return con


def _open(db: str, read_only: bool, row_group_size: int) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, or for a writer with a row group size, the file attached with
    it (the catalog named as ``duckdb.connect`` would, unless that name is DuckDB's own)."""
    if read_only or not row_group_size or db == ":memory:":
        return duckdb.connect(db, read_only=read_only)
    con = duckdb.connect()
    try:
        name = Path(db).stem
        if name.lower() in ("memory", "system", "temp", "main", ""):
            name = "warehouse"
        path = db.replace("'", "''")
        alias = name.replace('"', '""')
        con.execute(f"ATTACH '{path}' AS \"{alias}\" (ROW_GROUP_SIZE {int(row_group_size)})")
        con.execute(f'USE "{alias}"')
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN … COMMIT; on error ROLLBACK and re-raise the error that caused it.

    A failed rollback (DuckDB may already have aborted the transaction, e.g. after
    ``No space left on device``) never hides the real cause; an I/O error becomes a
    :class:`WarehouseWriteError` that says so.
    """
    con.execute("begin transaction")
    try:
        yield
        con.execute("commit")
    except BaseException as err:
        with suppress(duckdb.Error):
            con.execute("rollback")
        if isinstance(err, duckdb.IOException | OSError) and _lock_conflict(err) is None:
            raise WarehouseWriteError(f"writing the warehouse failed: {err}") from err
        raise


def check_readable(path: str | Path, settings: WarehouseSettings | None = None) -> None:
    """Fail early, without changing the file, when ``path`` exists but cannot be read.

    Opens it read-only (waiting for a writer within the bound), reads the catalog, and
    checks that the file holds every block its header counts (a truncated copy opens and
    lists its tables, then fails on the first read of a missing block).

    Raises:
        WarehouseUnreadable: naming the file and DuckDB's reason.
        WarehouseLocked: another process held it beyond the bound.
    """
    file = Path(path)
    if not file.exists():
        return
    if not file.is_file():
        raise WarehouseUnreadable(f"warehouse {file} is not a file")
    try:
        con = connect(file, read_only=True, timezone=None, **_connect_args(settings))
    except duckdb.Error as err:
        raise WarehouseUnreadable(f"warehouse {file} cannot be opened: {_one_line(err)}") from err
    try:
        con.execute("select count(*) from duckdb_tables()").fetchone()
        # A file cut short (a copy that stopped, a full disk) still opens and lists its
        # tables: it holds fewer bytes than the blocks in use. (Trailing free blocks are
        # cut off a sound file, so the total block count is no bound.)
        _, _, block_size, _, used, *_ = con.execute("pragma database_size").fetchone() or (
            None, None, 0, 0, 0)
        size = file.stat().st_size
        if size < int(used) * int(block_size):
            raise WarehouseUnreadable(
                f"warehouse {file} is truncated: {size} bytes hold fewer than its {used} "
                f"blocks of {block_size} bytes in use; restore it from a backup"
            )
    except duckdb.Error as err:
        raise WarehouseUnreadable(f"warehouse {file} cannot be read: {_one_line(err)}") from err
    finally:
        con.close()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


def _checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


def migration_files(schema_dir: Path = SCHEMA_DIR) -> list[tuple[int, str, Path]]:
    """``(version, name, path)`` of ``schema_dir/NNN_name.sql`` in version order."""
    found: dict[int, tuple[int, str, Path]] = {}
    for p in sorted(schema_dir.glob("*.sql")):
        m = _MIGRATION_RE.match(p.name)
        if not m:
            raise ValueError(f"migration file {p} is not named NNN_name.sql")
        version = int(m["version"])
        if version in found:
            raise ValueError(f"two migrations share version {version}: {found[version][2]}, {p}")
        found[version] = (version, m["name"], p)
    return [found[v] for v in sorted(found)]


def migrate(
    con: duckdb.DuckDBPyConnection,
    *,
    schema_dir: Path = SCHEMA_DIR,
    views_dir: Path = VIEWS_DIR,
) -> list[str]:
    """Apply pending ``schema/NNN_*.sql`` files (one transaction each), then views and seeds.

    Returns the names of the migrations applied (``[]`` when the database is up to date;
    then nothing in it changes).
    """
    con.execute(
        "create table if not exists schema_migrations (version integer primary key, "
        "name varchar not null, checksum varchar, applied_at timestamptz not null "
        "default now())"
    )
    applied = {
        int(v): c
        for v, c in con.execute("select version, checksum from schema_migrations").fetchall()
    }
    done: list[str] = []
    for version, name, path in migration_files(schema_dir):
        sql = path.read_text(encoding="utf-8")
        if version in applied:
            if applied[version] and applied[version] != _checksum(sql):
                logger.warning(
                    "migration %s changed after it was applied; add a new numbered file "
                    "instead of editing an applied one",
                    path.name,
                )
            continue
        with transaction(con):
            con.execute(sql)
            con.execute(
                "insert into schema_migrations (version, name, checksum, applied_at) "
                "values (?, ?, ?, now())",
                [version, name, _checksum(sql)],
            )
        logger.info("applied migration %s", path.name)
        done.append(f"{version:03d}_{name}")
    refresh_views(con, views_dir=views_dir, force=bool(done))
    seed_categories(con)
    return done


def refresh_views(
    con: duckdb.DuckDBPyConnection, *, views_dir: Path = VIEWS_DIR, force: bool = False
) -> list[str]:
    """(Re)create the views of ``views_dir/*.sql`` whose SQL changed (all when ``force``)."""
    known = dict(con.execute("select name, checksum from schema_views").fetchall())
    refreshed: list[str] = []
    for path in sorted(views_dir.glob("*.sql")):
        sql = path.read_text(encoding="utf-8")
        checksum = _checksum(sql)
        if not force and known.get(path.stem) == checksum:
            continue
        with transaction(con):
            con.execute(sql)
            con.execute(
                "insert into schema_views (name, checksum, applied_at) values (?, ?, now()) "
                "on conflict (name) do update set checksum = excluded.checksum, "
                "applied_at = excluded.applied_at",
                [path.stem, checksum],
            )
        refreshed.append(path.stem)
    return refreshed


def seed_categories(con: duckdb.DuckDBPyConnection) -> int:
    """Insert the categories of ``baotintuc.site`` that the table lacks; returns how many."""

    have = {int(r[0]) for r in con.execute("select id from categories").fetchall()}
    missing = [c for c in ALL_CATEGORIES if c.id not in have]
    if not missing:
        return 0
    now = datetime.now().astimezone()
    con.executemany(
        "insert into categories (id, slug, name, parent_id, source, updated_at) "
        "values (?, ?, ?, ?, 'site', ?) on conflict (id) do nothing",
        [[c.id, c.slug, c.name, c.parent_id, now] for c in missing],
    )
    return len(missing)


def is_out_of_memory(err: BaseException) -> bool:
    """DuckDB ran out of the memory it was allowed (at a commit it says so in a
    ``TransactionException``)."""
    return isinstance(err, duckdb.OutOfMemoryException) or (
        isinstance(err, duckdb.Error) and _OUT_OF_MEMORY_RE.search(str(err)) is not None
    )


@contextmanager
def writer(
    path: str | Path,
    settings: WarehouseSettings | None = None,
    *,
    capped: bool = True,
    bulk: bool = False,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-write connection: connect (bounded wait), migrate, yield,
    checkpoint, close. Keep the ``with`` block to the load itself.

    Rows are appended in row groups of ``settings.row_group_size`` (small, so that
    DuckDB's merges of a growing table's row groups stay small), unless ``bulk`` is true:
    a writer of big batches (the search index, 1,000 articles a transaction) keeps
    DuckDB's default, as the postings' deletes across 2,048-row groups ran out of the
    index's memory cap at 100k articles.

    DuckDB's memory is capped by ``settings.writer_memory_limit`` unless ``capped`` is
    false: uncapped, a checkpoint of a big warehouse takes whatever it can (a load at
    65k articles peaked 270 MB above the process's own size at 256 MB, 100 MB at 64 MB).
    A write that needs more than the cap is the caller's to repeat uncapped
    (:func:`write` does). A checkpoint that does is a fatal error that
    invalidates DuckDB's instance; what was committed is in the write-ahead log, so the
    file is opened again without the cap (replaying the log) and checkpointed, with a
    warning.
    """
    args = _connect_args(settings)
    if bulk:
        args["row_group_size"] = 0
    con = connect(path, **args)
    try:
        migrate(con)  # once per schema change: not what the cap is for
        limit = settings.writer_memory_limit if settings is not None and capped else ""
        if limit:
            con.execute(f"SET memory_limit = '{limit}'")
        yield con
        try:
            con.execute("checkpoint")
        except duckdb.Error as err:
            if not (limit and is_out_of_memory(err)):
                raise
            logger.warning("checkpoint of %s needed more than warehouse.writer_memory_limit "
                           "= %s (%s): done again without the cap", path, limit,
                           str(err).splitlines()[0])
            con.close()
            con = connect(path, **args)
            con.execute("checkpoint")
    finally:
        con.close()


def write(
    path: str | Path,
    settings: WarehouseSettings | None,
    work: Callable[[duckdb.DuckDBPyConnection], T],
    *,
    what: str,
    bulk: bool = False,
) -> T:
    """``work(con)`` in a :func:`writer` under ``warehouse.writer_memory_limit``; if DuckDB
    runs out of memory there, once more uncapped, with a warning naming ``what``.

    ``work`` must be safe to run again after such a failure: one transaction (rolled back
    when it fails) or several idempotent ones (a replace, an upsert). So the cap bounds the
    usual peak of a long run without ever failing it (at the end of a 100k-article
    backfill, recording its 100k discovered URLs in one statement needed more than 64 MB,
    until :func:`warehouse.load.record_urls` took them 5,000 at a time).
    """
    try:
        with writer(path, settings, bulk=bulk) as con:
            return work(con)
    except duckdb.Error as err:
        limit = settings.writer_memory_limit if settings is not None else ""
        if not (limit and is_out_of_memory(err)):
            raise
        logger.warning("%s needed more memory than warehouse.writer_memory_limit = %s (%s): "
                       "done again without the cap (it bounds the usual load; a big one-off "
                       "write may need more)", what, limit, str(err).splitlines()[0])
    with writer(path, settings, capped=False, bulk=bulk) as con:
        return work(con)


@contextmanager
def reader(
    path: str | Path, settings: WarehouseSettings | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection (bounded wait while a writer holds the file)."""
    con = connect(path, read_only=True, **_connect_args(settings))
    try:
        yield con
    finally:
        con.close()


def _connect_args(settings: WarehouseSettings | None) -> dict[str, float]:
    """What :func:`connect` takes from the settings."""
    if settings is None:
        return {}
    return {
        "lock_timeout": settings.lock_timeout_seconds,
        "retry_interval": settings.lock_retry_interval_seconds,
        "row_group_size": settings.row_group_size,
    }


__all__ = [
    "WarehouseUnreadable",
    "WarehouseWriteError",
    "check_readable",
    "transaction",
    "WarehouseLocked",
    "connect",
    "is_out_of_memory",
    "migrate",
    "migration_files",
    "reader",
    "refresh_views",
    "seed_categories",
    "write",
    "writer",
]
