"""Command-line options of the mirror, shared by ``baotintuc mirror`` and
``python -m mirror.build|serve``. Imports nothing heavy: the ``baotintuc`` parser is built
on every command, and the pipeline's run path does not load the mirror."""

from __future__ import annotations

import argparse
from pathlib import Path

FIXED_ARTICLES = 21  # the 20 real pages and the seed article are part of every build
DEFAULT_ARTICLES = 381  # + 360 synthetic: the demo mirror the test suite knows
FILES_MAX = 5_000  # pages "auto": page files up to this many articles, rendered beyond


def article_count(value: str) -> int:
    n = int(value)
    if n < FIXED_ARTICLES:
        raise argparse.ArgumentTypeError(
            f"must be at least {FIXED_ARTICLES} (the 20 real pages and the seed article are "
            "part of every mirror)")
    return n


def add_build_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--articles", type=article_count, default=DEFAULT_ARTICLES, metavar="N",
                    help=f"articles in the mirror, real and seed included (default "
                         f"{DEFAULT_ARTICLES}: the demo mirror)")
    ap.add_argument("--no-sitemaps", dest="sitemaps", action="store_false",
                    help="no /sitemap.xml, no Sitemap line in robots.txt")
    ap.add_argument("--pages", choices=("auto", "files", "on-demand"), default="auto",
                    help="article and listing pages written as files, or rendered by the "
                         f"server on request (auto: files up to {FILES_MAX:,} articles)")


def add_serve_arguments(ap: argparse.ArgumentParser, *, site: Path | None, host: str | None,
                        port: int | None) -> None:
    ap.add_argument("--site", type=Path, default=site,
                    help="a build's site folder, or the build folder holding it (default: "
                         f"{site or 'the demo mirror, built when needed'})")
    ap.add_argument("--host", default=host, help=f"default: {host or 'settings mirror.host'}")
    ap.add_argument("--port", type=int, default=port,
                    help=f"0 = any free port (default: {port or 'settings mirror.port'})")
    ap.add_argument("--fault", action="append", default=[], metavar="PATH=SPEC",
                    help="make PATH misbehave, e.g. /phap-luat.rss=status:status=503,times=2 "
                         "(repeatable; a trailing * in PATH matches a prefix)")
    ap.add_argument("--no-sitemaps", dest="sitemaps", action="store_false",
                    help="serve as if the site had no sitemaps (404, none in robots.txt)")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
