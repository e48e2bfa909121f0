"""``baotintuc``: the command line of the pipeline.

Exit codes: 0 the run completed (some pages may have failed: they are counted and
stored); 1 the run itself failed; 2 it could not start (offline, bad configuration,
database locked).
"""

from __future__ import annotations

import argparse
import logging
import sys

from config import ConfigError
from flows.cli import analysis, mirror, runs, server
from flows.cli.common import EXIT_FAILED, fail


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="baotintuc",
        description="Scrape baotintuc.vn into DuckDB: Scrapy, trafilatura, Prefect.",
        epilog="Exit codes: 0 completed, 1 the run failed, 2 could not start, 130 interrupted.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for group in (runs, analysis, server, mirror):
        group.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return fail(f"bad configuration: {exc}")
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
