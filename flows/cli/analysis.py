"""The commands that read the warehouse: ``query``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from config import load_settings
from flows.cli.common import EXIT_OK, fail


def cmd_query(args: argparse.Namespace) -> int:
    settings = load_settings()
    db = Path(args.db) if args.db else settings.paths.db_path
    if not db.exists():
        return fail(f"no database at {db}: run `make run` or `make demo` first")
    from warehouse.db import connect

    with connect(db, read_only=True) as con:
        con.sql(args.sql).show(max_width=200)
    return EXIT_OK


def register(sub: Any) -> None:
    q = sub.add_parser("query", help="run read-only SQL against the database")
    q.add_argument("sql")
    q.add_argument("--db")
    q.set_defaults(func=cmd_query)
