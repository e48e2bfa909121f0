"""``baotintuc demo``: the main job against the bundled offline mirror, then a few SQL
results. The only command of the run path's CLI that imports the mirror (a demo tool)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.cli.common import EXIT_OK, positive, settings_for_flows
from flows.cli.runs import run_ingest

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


def cmd_demo(args: argparse.Namespace) -> int:
    settings = settings_for_flows()
    from mirror.build import ensure_built
    from mirror.server import MirrorServer

    site_dir = ensure_built(settings.mirror.site_dir.parent)
    db = Path(args.db) if args.db else settings.paths.data_dir / "demo.duckdb"
    with MirrorServer(site_dir, host=settings.mirror.host, port=args.port) as srv:
        print(f"offline mirror of baotintuc.vn serving {site_dir} at {srv.base_url}")
        code = run_ingest(settings, db, base_url=srv.base_url, max_pages=args.max_pages,
                           mode="all", max_articles=0)
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


def register(sub: Any) -> None:
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
