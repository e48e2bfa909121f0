"""The commands that run the pipeline: ``crawl``, ``backfill``, ``demo``, ``reextract``."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config import ConfigError, Settings
from flows.cli.common import (
    EXIT_CANNOT_START,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    check_writable,
    fail,
    non_negative,
    parse_since,
    positive,
    settings_for_flows,
)

if TYPE_CHECKING:
    from flows.ingest import RunSummary



def print_summary(s: RunSummary, db: Path) -> None:
    extra = [f"{s.discovered} discovered", f"{s.skipped_known} already stored"]
    if s.skipped_old:
        extra.append(f"{s.skipped_old} older than --since")
    if s.deferred:
        extra.append(f"{s.deferred} deferred to the next run (crawl.max_articles_per_run)")
    if s.rechecked:
        extra.append(f"{s.rechecked} re-checked")
    if s.resumed:
        extra.append(f"{s.resumed} pages recovered from an interrupted run")
    extra += [f"{s.requests} requests", f"{s.duration_s:.1f} s"]
    print(
        f"run {s.run_id} from {s.base_url}: {s.new} new, {s.updated} updated, "
        f"{s.unchanged} unchanged, {s.failed} failed ({', '.join(extra)})"
    )
    if s.failures_by_reason:
        reasons = ", ".join(f"{k}: {v}" for k, v in s.failures_by_reason.items())
        print(f"failures by reason: {reasons}")
    if s.lost:
        print(f"ACCOUNTING: {s.lost} discovered articles were lost track of "
              "(recorded in fetch_failures with reason 'lost'); please report this")
    if s.search_index.startswith("search index NOT"):
        print(s.search_index)
    print(f'query it: duckdb -readonly {db}  or  baotintuc query "select count(*) from articles"')


def _interrupt_quietly(grace_s: float) -> None:
    """Ctrl-C or SIGTERM during a run: stop the spider (it closes its archive), leave.

    Nothing is lost by leaving: every loaded segment is committed, and the next run loads
    what this one archived and did not load yet. Exit within ``grace_s`` + a second or
    two, and leave no child behind: ``os._exit`` skips the ``atexit`` hook that stops
    Prefect's temporary server, whose process would outlive the CLI (holding its stdout
    and stderr open), so it is stopped here.
    """

    def handler(signum: int, frame: object) -> None:
        from flows.parse_pool import stop_parse_workers
        from flows.spider import stop_active_crawls

        # os.write: the handler may run while sys.stderr is wrapped or mid-write.
        os.write(2, b"baotintuc: interrupted; the next run loads what this one fetched\n")
        server = _temporary_prefect_server()
        if server is not None:
            server.terminate()
        stop_active_crawls(grace_s)
        stop_parse_workers()
        if server is not None:
            try:
                server.wait(timeout=2)
            except subprocess.TimeoutExpired:
                server.kill()
        if os.environ.get("PREFECT_API_URL"):  # a server that outlives us: tell it
            from flows.abandoned import crash_own_runs

            crash_own_runs(f"interrupted by {signal.Signals(signum).name}", timeout=3.0)
        os._exit(EXIT_INTERRUPTED if signum == signal.SIGINT else 128 + signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _temporary_prefect_server() -> subprocess.Popen[bytes] | None:
    """The process of Prefect's temporary server, when this process started one."""
    module = sys.modules.get("prefect.server.api.server")
    if module is None:
        return None
    proc = getattr(module.SubprocessASGIServer(), "server_process", None)
    return proc if isinstance(proc, subprocess.Popen) and proc.poll() is None else None


def preflight(settings: Settings, db: Path, params: dict[str, Any]) -> str | None:
    """Why the run cannot start, or None: an invalid request (the option is named), a
    warehouse file we cannot read (corrupt, truncated, not DuckDB), an origin that does
    not accept a connection. Cheap, and before Prefect's server starts."""
    from crawler.request import CrawlRequest
    from flows.origin import OriginUnreachable, probe_origin
    from warehouse.db import WarehouseLocked, WarehouseUnreadable, check_readable

    try:
        req = CrawlRequest.resolve(settings, run_id="preflight", run_dir=settings.paths.runs_dir,
                                   archive_dir=settings.paths.raw_dir, **params)
    except ConfigError as exc:
        return with_option_names(str(exc))
    try:
        check_readable(db, settings.warehouse)
    except (WarehouseUnreadable, WarehouseLocked) as exc:
        return str(exc)
    if why := probe_origin(req.base_url, settings.crawl.offline_probe_timeout):
        return str(OriginUnreachable(req.base_url, why))
    return None


def run_ingest(settings: Settings, db: Path, **params: Any) -> int:
    """Run the ingest flow; every way it can end is one line and an exit code."""
    if err := check_writable(settings, db):
        return fail(err)
    # Before any work (and before Prefect's server starts): a warehouse we cannot read, an
    # origin we cannot reach. The flow checks both again (deployments do not come here).
    if err := preflight(settings, db, params):
        return fail(err)
    from flows.ingest import RunFailed, ingest
    from flows.origin import OriginUnreachable
    from flows.scorecard import LayoutDriftAlarm
    from flows.spider import CrawlBusy, CrawlFailed
    from warehouse.db import WarehouseLocked, WarehouseUnreadable, WarehouseWriteError

    _interrupt_quietly(settings.run.stop_grace_seconds)
    try:
        summary = ingest(db_path=str(db), **params)
    except ConfigError as exc:
        return fail(with_option_names(str(exc)), EXIT_CANNOT_START)
    except (WarehouseLocked, WarehouseUnreadable, CrawlBusy, OriginUnreachable) as exc:
        return fail(str(exc), EXIT_CANNOT_START)
    except (LayoutDriftAlarm, RunFailed, WarehouseWriteError) as exc:
        return fail(str(exc), EXIT_FAILED)
    except CrawlFailed as exc:
        return fail(f"crawl failed: {exc}", EXIT_FAILED)
    print_summary(summary, db)
    return EXIT_OK


# The run parameters the CLI takes, by their name in a request.
OPTIONS = {"base_url": "--base-url", "since": "--since", "max_pages": "--max-pages",
           "categories": "--categories", "max_articles": "--max-articles", "mode": "--mode"}


def with_option_names(message: str) -> str:
    """A request's error message, naming the command-line options the user typed."""
    for field, option in OPTIONS.items():
        message = re.sub(rf"(^|; ){field}(\.\d+)?: ", rf"\g<1>{option}: ", message)
    return message


def _db(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.db) if args.db else settings.paths.db_path


def cmd_crawl(args: argparse.Namespace) -> int:
    settings = settings_for_flows()
    return run_ingest(
        settings, _db(args, settings), base_url=args.base_url, since=args.since,
        max_pages=args.max_pages, categories=_categories(args.categories), mode=args.mode,
        max_articles=args.max_articles,
    )


def cmd_backfill(args: argparse.Namespace) -> int:
    settings = settings_for_flows()
    return run_ingest(
        settings, _db(args, settings), base_url=args.base_url, since=args.since,
        max_pages=args.max_pages, categories=_categories(args.categories), mode="backfill",
        max_articles=args.max_articles if args.max_articles is not None else 0,
    )


def _categories(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def cmd_reextract(args: argparse.Namespace) -> int:
    settings = settings_for_flows()
    db = _db(args, settings)
    if not db.exists():
        return fail(f"no database at {db}: nothing to re-extract into")
    from flows.reextract import reextract
    from flows.scorecard import LayoutDriftAlarm
    from warehouse.db import WarehouseLocked, WarehouseUnreadable, WarehouseWriteError

    flow = reextract
    if args.dask_address or args.workers:
        from prefect_dask import DaskTaskRunner

        runner = (DaskTaskRunner(address=args.dask_address) if args.dask_address else
                  DaskTaskRunner(cluster_kwargs={"n_workers": args.workers,
                                                 "threads_per_worker": 1, "processes": True}))
        flow = reextract.with_options(task_runner=runner)
    try:
        s = flow(db_path=str(db), since=args.since)
    except (WarehouseLocked, WarehouseUnreadable) as exc:
        return fail(str(exc))
    except (LayoutDriftAlarm, WarehouseWriteError) as exc:
        return fail(str(exc), EXIT_FAILED)
    fields = ", ".join(f"{k}: {v}" for k, v in s.fields_changed.items()) or "none"
    print(
        f"re-extracted {s.parsed} of {s.newest} archived articles ({s.pages} fetches in "
        f"{s.archives} WARC files, {s.scanned} scanned first): {s.changed} rows changed, "
        f"{s.unchanged} unchanged, {s.rejected + s.held} rejected, {s.not_stored} added "
        f"(archived but not stored); fields changed: {fields}"
    )
    return EXIT_OK


def register(sub: Any) -> None:
    c = sub.add_parser("crawl", help="discover, fetch, clean and load the newest articles")
    _ingest_options(c)
    c.add_argument("--max-pages", type=positive, help="listing pages per category")
    c.add_argument("--mode", choices=("all", "rss", "listings"), default="all")
    c.set_defaults(func=cmd_crawl)

    b = sub.add_parser(
        "backfill",
        help="fetch the archive back to --since: every listing page and the sitemaps, "
        "resumable, with a progress bar",
    )
    _ingest_options(b, cap_default="none: a backfill fetches everything it finds")
    b.add_argument("--max-pages", type=positive, help="listing pages per category (no bound)")
    b.set_defaults(func=cmd_backfill)

    r = sub.add_parser("reextract", help="re-parse the raw archive offline, update changed rows")
    r.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    r.add_argument("--since", type=parse_since, help="only articles published on/after this day")
    r.add_argument("--dask-address", help="parse on this Dask scheduler (tcp://HOST:PORT)")
    r.add_argument("--workers", type=non_negative, default=2,
                   help="without --dask-address: a local Dask cluster of N worker processes "
                   "(0 = parse in this process)")
    r.set_defaults(func=cmd_reextract)


def _ingest_options(p: Any, cap_default: str = "crawl.max_articles_per_run") -> None:
    p.add_argument("--base-url", help="fetch from this origin instead (stored URLs stay canonical)")
    p.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    p.add_argument("--since", type=parse_since,
                   help="keep articles published on/after YYYY-MM-DD (Vietnam time)")
    p.add_argument("--categories", help="comma-separated category keys, slugs or ids")
    p.add_argument("--max-articles", type=non_negative,
                   help=f"articles fetched at most (default {cap_default}; 0 = all)")
