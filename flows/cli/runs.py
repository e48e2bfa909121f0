"""The commands that run the pipeline: ``crawl``, ``demo``, ``reextract``."""

from __future__ import annotations

import argparse
import os
import signal
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config import Settings, check_base_url
from flows.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    check_writable,
    fail,
    parse_since,
    positive,
    probe_origin,
    settings_for_flows,
)

if TYPE_CHECKING:
    from flows.ingest import RunSummary

DEMO_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "Articles per category",
        "select category, count(*) as articles from articles group by category "
        "order by articles desc, category",
    ),
    (
        "The five newest titles",
        "select strftime(published_at at time zone 'Asia/Ho_Chi_Minh', '%Y-%m-%d %H:%M') "
        "as published_vn, category, title from articles order by published_at desc limit 5",
    ),
    (
        "The 2020 seed article, rebuilt from text (search is accent-insensitive)",
        "select article_id, published_at at time zone 'Asia/Ho_Chi_Minh' as published_vn, "
        "byline, authors, source, category from articles "
        "where vn_fold(title) like '%' || vn_fold('cong tac dan van') || '%' "
        "order by published_at limit 3",
    ),
)


def check_prefect_api(timeout: float = 3.0) -> str | None:
    """[server branch] Kept for callers; the API is now checked (and the local server
    started) by ``settings_for_flows``, which every run command calls first."""
    return None


def print_summary(s: RunSummary, db: Path) -> None:
    extra = [f"{s.discovered} discovered", f"{s.skipped_known - s.resumed} already stored"]
    if s.rechecked:
        extra.append(f"{s.rechecked} re-checked")
    if s.resumed:
        extra.append(f"{s.resumed} recovered from an interrupted run")
    extra += [f"{s.requests} requests", f"{s.duration_s:.1f} s"]
    print(
        f"run {s.run_id} from {s.base_url}: {s.new} new, {s.updated} updated, "
        f"{s.unchanged} unchanged, {s.failed + s.rejected} failed ({', '.join(extra)})"
    )
    if s.failures_by_reason:
        reasons = ", ".join(f"{k}: {v}" for k, v in s.failures_by_reason.items())
        print(f"failures by reason: {reasons}")
    print(f'query it: duckdb -readonly {db}  or  baotintuc query "select count(*) from articles"')


def cmd_crawl(args: argparse.Namespace) -> int:
    settings = settings_for_flows()
    base = check_base_url(args.base_url) if args.base_url else settings.crawl.base_url
    db = Path(args.db) if args.db else settings.paths.db_path
    if err := check_writable(settings, db):
        return fail(err)
    from flows.spider import is_loopback

    if not is_loopback(base):
        why = probe_origin(base, settings.crawl.offline_probe_timeout)
        if why:
            return fail(
                f"cannot reach {base} ({why}); this machine looks offline. "
                "Run `make demo` to try the pipeline on the bundled offline mirror."
            )
    return _run_ingest(settings, base, db, args.since, args.max_pages, args.categories, args.mode)


def _interrupt_quietly() -> None:
    """Ctrl-C during a run: let the spider close its archive, then leave at once.

    A terminal's Ctrl-C also reaches Prefect's ephemeral server (same process group);
    unwinding through Prefect would then wait on a dead API. Nothing is lost by leaving:
    the load is one transaction, and the next run of the same mode loads the pages the
    interrupted crawl archived.
    """

    def handler(signum: int, frame: object) -> None:
        from flows.spider import stop_active_crawls

        # os.write: the handler may run while sys.stderr is wrapped or mid-write.
        os.write(2, b"baotintuc: interrupted; the next run picks up what this one fetched\n")
        stop_active_crawls()
        os._exit(130)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _run_ingest(
    settings: Settings,
    base: str,
    db: Path,
    since: date | None,
    max_pages: int | None,
    categories: str | None,
    mode: str,
) -> int:
    # Before any work: crawl and demo both come through here.
    if err := check_prefect_api():
        return fail(err)
    from baotintuc.site import category_by_key
    from flows.ingest import ingest
    from flows.runtime import quiet_console_tracebacks
    from flows.scorecard import LayoutDriftAlarm
    from flows.spider import CrawlBusy, CrawlFailed
    from warehouse.db import WarehouseLocked

    quiet_console_tracebacks()
    _interrupt_quietly()
    cats = [c.strip() for c in categories.split(",") if c.strip()] if categories else None
    unknown = [c for c in cats or [] if category_by_key(c) is None]
    if unknown:
        return fail(f"--categories: unknown category {', '.join(unknown)}")
    try:
        summary = ingest(
            base_url=base,
            db_path=str(db),
            since=since,
            max_pages=max_pages,
            categories=cats,
            mode=mode,
        )
    except (WarehouseLocked, CrawlBusy) as exc:
        return fail(str(exc))
    except LayoutDriftAlarm as exc:
        return fail(str(exc), EXIT_FAILED)
    except CrawlFailed as exc:
        return fail(f"crawl failed: {exc}", EXIT_FAILED)
    print_summary(summary, db)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    settings = settings_for_flows()
    from mirror.build import ensure_built
    from mirror.server import MirrorServer

    site_dir = ensure_built(settings.mirror.site_dir.parent)
    db = Path(args.db) if args.db else settings.paths.data_dir / "demo.duckdb"
    with MirrorServer(site_dir, host=settings.mirror.host, port=args.port) as srv:
        print(f"offline mirror of baotintuc.vn serving {site_dir} at {srv.base_url}")
        code = _run_ingest(settings, srv.base_url, db, None, args.max_pages, None, "all")
    if code != EXIT_OK:
        return code
    _print_queries(db, DEMO_QUERIES)
    return EXIT_OK


def _print_queries(db: Path, queries: tuple[tuple[str, str], ...]) -> None:
    from warehouse.db import connect

    with connect(db, read_only=True) as con:
        for title, sql in queries:
            print(f"\n-- {title}\n{sql};")
            con.sql(sql).show(max_width=160)


def cmd_reextract(args: argparse.Namespace) -> int:
    settings = settings_for_flows()
    db = Path(args.db) if args.db else settings.paths.db_path
    if not db.exists():
        return fail(f"no database at {db}: nothing to re-extract into")
    from flows.reextract import reextract
    from warehouse.db import WarehouseLocked

    try:
        s = reextract(db_path=str(db), since=args.since)
    except WarehouseLocked as exc:
        return fail(str(exc))
    fields = ", ".join(f"{k}: {v}" for k, v in s.fields_changed.items()) or "none"
    print(
        f"re-extracted {s.parsed} of {s.pages} archived articles from {s.archives} WARC files: "
        f"{s.changed} rows changed, {s.unchanged} unchanged, {s.rejected} rejected, "
        f"{s.not_stored} added (archived but not stored); fields changed: {fields}"
    )
    return EXIT_OK


def register(sub: Any) -> None:
    c = sub.add_parser("crawl", help="discover, fetch, clean and load the newest articles")
    c.add_argument("--base-url", help="fetch from this origin instead (stored URLs stay canonical)")
    c.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    c.add_argument(
        "--since",
        type=parse_since,
        help="keep articles published on/after YYYY-MM-DD (Vietnam time)",
    )
    c.add_argument("--max-pages", type=positive, help="listing pages per category")
    c.add_argument("--categories", help="comma-separated category keys, slugs or ids")
    c.add_argument("--mode", choices=("all", "rss", "listings"), default="all")
    c.set_defaults(func=cmd_crawl)

    d = sub.add_parser("demo", help="run the job against the bundled offline mirror and query it")
    d.add_argument("--db", help="DuckDB file (default: data/demo.duckdb)")
    d.add_argument("--port", type=int, default=0)
    d.add_argument(
        "--max-pages",
        type=positive,
        default=50,
        help="listing pages per category (the demo sweeps the whole mirror)",
    )
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("reextract", help="re-parse the raw archive offline, update changed rows")
    r.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    r.add_argument("--since", type=parse_since, help="only articles published on/after this day")
    r.set_defaults(func=cmd_reextract)
