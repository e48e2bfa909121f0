"""Printing result rows as a table, CSV, JSON or Markdown (``query``, ``search``, ``attention``).

Values keep their types in JSON (numbers, booleans, lists, ``null``); timestamps are ISO 8601
strings with their offset (``2025-07-11T11:34:00+07:00``); CSV and the table print lists as
JSON arrays. The table shows every column: long cells are cut to ``max_cell`` characters
with an ellipsis, never whole columns.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TextIO
from uuid import UUID

FORMATS = ("table", "csv", "json", "markdown")


def jsonable(value: Any) -> Any:
    """A JSON-ready form of a DuckDB value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def text_cell(value: Any) -> str:
    """One cell as text (CSV and table): lists and structs as JSON, NULL as empty."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | dict):
        return json.dumps(jsonable(value), ensure_ascii=False)
    if isinstance(value, datetime | date | time):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else repr(value)
    return str(jsonable(value))


def _width(s: str) -> int:
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in s
    )


def _cut(s: str, limit: int) -> str:
    s = " ".join(s.split()) if ("\n" in s or "\t" in s) else s
    if _width(s) <= limit:
        return s
    out, w = [], 0
    for c in s:
        w += _width(c)
        if w > limit - 1:
            break
        out.append(c)
    return "".join(out) + "…"


def _pad(s: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(s))
    return gap + s if right else s + gap


def render_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], max_cell: int = 60
) -> str:
    """A plain-text table with every column; numbers right-aligned; NULL shown as NULL."""
    cells = [[("NULL" if v is None else _cut(text_cell(v), max_cell)) for v in r] for r in rows]
    numeric = [
        all(isinstance(r[i], int | float | Decimal) or r[i] is None for r in rows) and bool(rows)
        for i in range(len(columns))
    ]
    widths = [
        max([_width(c), *(_width(r[i]) for r in cells)]) for i, c in enumerate(columns)
    ]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, "| " + " | ".join(_pad(c, w, False) for c, w in zip(columns, widths,
                                                                  strict=True)) + " |", line]
    for r in cells:
        out.append(
            "| "
            + " | ".join(_pad(v, w, n) for v, w, n in zip(r, widths, numeric, strict=True))
            + " |"
        )
    out.append(line)
    out.append(f"{len(rows)} row{'s' if len(rows) != 1 else ''}, {len(columns)} columns")
    return "\n".join(out)


def render_markdown(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def esc(s: str) -> str:
        return " ".join(s.replace("|", "\\|").split())

    out = ["| " + " | ".join(esc(c) for c in columns) + " |",
           "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join(esc(text_cell(v)) for v in r) + " |" for r in rows]
    return "\n".join(out)


def write_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    out: TextIO | None = None,
    max_cell: int = 60,
) -> None:
    """Print ``rows`` in ``fmt`` (one of :data:`FORMATS`) to ``out`` (stdout)."""
    out = out or sys.stdout
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        w.writerows([text_cell(v) for v in r] for r in rows)
        out.write(buf.getvalue())
    elif fmt == "json":
        records = [
            {c: jsonable(v) for c, v in zip(columns, r, strict=True)} for r in rows
        ]
        out.write(json.dumps(records, ensure_ascii=False, indent=2) + "\n")
    elif fmt == "markdown":
        out.write(render_markdown(columns, rows) + "\n")
    elif fmt == "table":
        out.write(render_table(columns, rows, max_cell) + "\n")
    else:  # pragma: no cover - argparse restricts the choices
        raise ValueError(f"unknown format {fmt!r}")


__all__ = ["FORMATS", "jsonable", "render_markdown", "render_table", "text_cell", "write_rows"]
