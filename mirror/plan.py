"""The build plan on disk (``plan.sqlite``): what a big mirror serves without page files.

A 100,000-article mirror written as page files would take ~28 GB (each page carries the
real ~280 KB shell). Instead the build stores each article as it was planned (compressed
JSON of :class:`Article`) and each listing's order; the server renders article and listing
pages from it on request, with the same code that writes them as files for small builds.
SQLite (standard library) gives keyed random access with flat memory; the file is written
in one sorted pass, so the same plan gives the same bytes. (``articles`` keeps its rowid:
a WITHOUT ROWID table of ~1.5 KB records came out three times larger.)
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from baotintuc.site import CATEGORIES_BY_ID
from mirror.listings import pages_for
from mirror.model import Article, Block, Byline, Figure

PLAN_FILE = "plan.sqlite"
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE articles (
    id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE, origin TEXT NOT NULL, record BLOB NOT NULL
);
CREATE TABLE listings (key TEXT PRIMARY KEY, pages INTEGER NOT NULL, total INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE listing (key TEXT NOT NULL, rank INTEGER NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (key, rank)) WITHOUT ROWID;
"""


# --- Article <-> compact JSON ------------------------------------------------------------
def _figure(f: Figure | None) -> list[Any] | None:
    return None if f is None else [f.url, f.caption, f.credit]


def encode(a: Article) -> bytes:
    b = a.byline
    record = {
        "i": a.article_id, "p": a.path, "t": a.title, "s": a.sapo, "c": a.category.id,
        "d": a.published_at.isoformat(), "m": a.thumb, "o": a.origin,
        "b": [[x.kind, x.text, list(x.items), _figure(x.figure)] for x in a.blocks],
        "y": None if b is None else [b.main, b.agency, b.tag, b.printed, list(b.authors),
                                     b.source],
        "g": a.tags, "r": a.related, "k": a.kind, "x": a.reconstructed, "f": a.real_file,
    }
    return zlib.compress(json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                         .encode("utf-8"), 6)


def decode(blob: bytes) -> Article:
    r = json.loads(zlib.decompress(blob))
    y = r["y"]
    return Article(
        article_id=r["i"], path=r["p"], title=r["t"], sapo=r["s"],
        category=CATEGORIES_BY_ID[r["c"]], published_at=datetime.fromisoformat(r["d"]),
        thumb=r["m"], origin=r["o"],
        blocks=[Block(k, t, tuple(items), None if f is None else Figure(*f))
                for k, t, items, f in r["b"]],
        byline=None if y is None else Byline(y[0], y[1], y[2], y[3], tuple(y[4]), y[5]),
        tags=r["g"], related=r["r"], kind=r["k"], reconstructed=r["x"], real_file=r["f"],
    )


# --- writing -----------------------------------------------------------------------------
def write_plan(file: Path, arts: Iterable[Article], listings: dict[str, list[Article]],
               meta: dict[str, str]) -> None:
    """Write the plan in one transaction, rows in key order (deterministic bytes)."""
    file.unlink(missing_ok=True)
    con = sqlite3.connect(file)
    try:
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        con.executescript(_SCHEMA)
        with con:
            con.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            con.executemany(
                "INSERT INTO articles VALUES (?, ?, ?, ?)",
                ((a.article_id, a.path, a.origin, encode(a))
                 for a in sorted(arts, key=lambda a: a.article_id)),
            )
            for key in sorted(listings):
                items = listings[key]
                con.execute("INSERT INTO listings VALUES (?, ?, ?)",
                            (key, pages_for(len(items)), len(items)))
                con.executemany("INSERT INTO listing VALUES (?, ?, ?)",
                                ((key, rank, a.article_id) for rank, a in enumerate(items)))
    finally:
        con.close()


# --- reading -----------------------------------------------------------------------------
class PlanStore:
    """Read-only, thread-safe access to a plan (one connection behind a lock: queries take
    microseconds, and the HTTP server's threads share it)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._con = sqlite3.connect(f"file:{file}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._con.close()

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, args).fetchall()

    def meta(self) -> dict[str, str]:
        return dict(self._all("SELECT key, value FROM meta", ()))

    def by_path(self, path: str) -> Article | None:
        rows = self._all("SELECT record FROM articles WHERE path = ?", (path,))
        return decode(rows[0][0]) if rows else None

    def by_id(self, article_id: str) -> Article | None:
        rows = self._all("SELECT record FROM articles WHERE id = ?", (article_id,))
        return decode(rows[0][0]) if rows else None

    def listing_pages(self, key: str) -> int | None:
        rows = self._all("SELECT pages FROM listings WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def listing_items(self, key: str, start: int, count: int) -> list[Article]:
        rows = self._all(
            "SELECT a.record FROM listing l JOIN articles a ON a.id = l.id "
            "WHERE l.key = ? AND l.rank >= ? AND l.rank < ? ORDER BY l.rank",
            (key, start, start + count),
        )
        return [decode(r[0]) for r in rows]
