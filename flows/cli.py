"""``baotintuc``: the command line of the pipeline.

Exit codes: 0 the run completed (some pages may have failed: they are counted and
stored); 1 the run itself failed; 2 it could not start (offline, bad configuration,
database locked).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from config import ConfigError, Settings, check_base_url, load_settings

if TYPE_CHECKING:
    from flows.ingest import RunSummary

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_START = 0, 1, 2

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


def _fail(msg: str, code: int = EXIT_CANNOT_START) -> int:
    print(f"baotintuc: {msg}", file=sys.stderr)
    return code


def probe_origin(base_url: str, timeout: float) -> str | None:
    """None if a TCP connection to the origin opens within ``timeout``, else why not."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as exc:
            outcome.append(exc.strerror or exc.__class__.__name__)

    t = threading.Thread(target=attempt, daemon=True)  # getaddrinfo has no timeout of its own
    t.start()
    t.join(timeout + 1)
    return outcome[0] if outcome else f"no answer within {timeout:.0f} s"


def _parse_since(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since wants YYYY-MM-DD, got {value!r}") from None


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return n


def _settings() -> Settings:
    settings = load_settings()
    from flows.runtime import prepare_prefect_env

    prepare_prefect_env(settings.paths.prefect_home)
    return settings


def _check_writable(settings: Settings, db: Path) -> str | None:
    """Every directory a run writes to must be writable: say which one is not."""
    p = settings.paths
    for name, folder in (
        ("--db / paths.db_path", db.parent),
        ("paths.data_dir", p.data_dir),
        ("paths.raw_dir", p.raw_dir),
        ("paths.runs_dir", p.runs_dir),
    ):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            return f"setting {name}: directory {folder} is not writable ({exc.strerror})"
    return None


def check_prefect_api(timeout: float = 3.0) -> str | None:
    """None when no ``PREFECT_API_URL`` is set (ephemeral mode) or it answers, else why."""
    api = os.environ.get("PREFECT_API_URL", "").strip()
    if not api:
        return None
    why = probe_origin(api, timeout)
    if why is None:
        return None
    return (
        f"the Prefect API at PREFECT_API_URL={api} is not reachable ({why}); start it with "
        "`baotintuc serve` or unset PREFECT_API_URL to run with a temporary local server"
    )


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
    settings = _settings()
    base = check_base_url(args.base_url) if args.base_url else settings.crawl.base_url
    db = Path(args.db) if args.db else settings.paths.db_path
    if err := _check_writable(settings, db):
        return _fail(err)
    from flows.spider import is_loopback

    if not is_loopback(base):
        why = probe_origin(base, settings.crawl.offline_probe_timeout)
        if why:
            return _fail(
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
        return _fail(err)
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
        return _fail(f"--categories: unknown category {', '.join(unknown)}")
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
        return _fail(str(exc))
    except LayoutDriftAlarm as exc:
        return _fail(str(exc), EXIT_FAILED)
    except CrawlFailed as exc:
        return _fail(f"crawl failed: {exc}", EXIT_FAILED)
    print_summary(summary, db)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings()
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


def cmd_query(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = Path(args.db) if args.db else settings.paths.db_path
    if not db.exists():
        return _fail(f"no database at {db}: run `make run` or `make demo` first")
    from warehouse.db import connect

    with connect(db, read_only=True) as con:
        con.sql(args.sql).show(max_width=200)
    return EXIT_OK


def cmd_mirror(args: argparse.Namespace) -> int:
    settings = load_settings()
    from mirror.build import ensure_built

    site_dir = ensure_built(settings.mirror.site_dir.parent, force=args.action == "build")
    if args.action == "build":
        print(f"mirror built in {site_dir}")
        return EXIT_OK
    from mirror.server import MirrorServer

    port = args.port or settings.mirror.port
    with MirrorServer(site_dir, host=settings.mirror.host, port=port) as srv:
        print(f"serving the offline mirror at {srv.base_url} (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return EXIT_OK


def cmd_reextract(args: argparse.Namespace) -> int:
    settings = _settings()
    db = Path(args.db) if args.db else settings.paths.db_path
    if not db.exists():
        return _fail(f"no database at {db}: nothing to re-extract into")
    from flows.reextract import reextract
    from warehouse.db import WarehouseLocked

    try:
        s = reextract(db_path=str(db), since=args.since)
    except WarehouseLocked as exc:
        return _fail(str(exc))
    fields = ", ".join(f"{k}: {v}" for k, v in s.fields_changed.items()) or "none"
    print(
        f"re-extracted {s.parsed} of {s.pages} archived articles from {s.archives} WARC files: "
        f"{s.changed} rows changed, {s.unchanged} unchanged, {s.rejected} rejected, "
        f"{s.not_stored} added (archived but not stored); fields changed: {fields}"
    )
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()  # Prefect's environment first: it reads it at import time
    from flows.deploy import serve_all

    return serve_all(settings)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="baotintuc",
        description="Scrape baotintuc.vn into DuckDB: Scrapy, trafilatura, Prefect.",
        epilog="Exit codes: 0 completed, 1 the run failed, 2 could not start, 130 interrupted.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("crawl", help="discover, fetch, clean and load the newest articles")
    c.add_argument("--base-url", help="fetch from this origin instead (stored URLs stay canonical)")
    c.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    c.add_argument(
        "--since",
        type=_parse_since,
        help="keep articles published on/after YYYY-MM-DD (Vietnam time)",
    )
    c.add_argument("--max-pages", type=_positive, help="listing pages per category")
    c.add_argument("--categories", help="comma-separated category keys, slugs or ids")
    c.add_argument("--mode", choices=("all", "rss", "listings"), default="all")
    c.set_defaults(func=cmd_crawl)

    d = sub.add_parser("demo", help="run the job against the bundled offline mirror and query it")
    d.add_argument("--db", help="DuckDB file (default: data/demo.duckdb)")
    d.add_argument("--port", type=int, default=0)
    d.add_argument(
        "--max-pages",
        type=_positive,
        default=50,
        help="listing pages per category (the demo sweeps the whole mirror)",
    )
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("reextract", help="re-parse the raw archive offline, update changed rows")
    r.add_argument("--db", help="DuckDB file (default: paths.db_path)")
    r.add_argument("--since", type=_parse_since, help="only articles published on/after this day")
    r.set_defaults(func=cmd_reextract)

    q = sub.add_parser("query", help="run read-only SQL against the database")
    q.add_argument("sql")
    q.add_argument("--db")
    q.set_defaults(func=cmd_query)

    sv = sub.add_parser(
        "serve", help="Prefect server on 127.0.0.1 + the scheduled deployments (Ctrl-C stops)"
    )
    sv.set_defaults(func=cmd_serve)

    m = sub.add_parser("mirror", help="build or serve the offline mirror")
    m.add_argument("action", choices=("build", "serve"))
    m.add_argument("--port", type=int, default=0)
    m.set_defaults(func=cmd_mirror)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return _fail(f"bad configuration: {exc}")
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
