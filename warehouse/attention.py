"""Attention over time (Media Cloud's measure): per period, how many articles match a query,
out of how many published, and the share.

Periods are Vietnam calendar days, ISO weeks (starting Monday) or months, named by their
first day. Every period between the first and the last (``since``/``until`` when given,
else the first and last article under the filters) is present, with 0 where nothing
matched. The category filter restricts both the matches and the totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from warehouse.search import SITE_TIMEZONE, Filters, check_index_ready, compile_query

PERIODS = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class AttentionRow:
    query: str
    period: date
    count: int
    total: int

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "period": self.period.isoformat(),
            "count": self.count,
            "total": self.total,
            "share": round(self.share, 6),
        }


def _local_period(by: str, alias: str = "a") -> str:
    return f"date_trunc('{by}', {alias}.published_at at time zone '{SITE_TIMEZONE}')::date"


def attention(
    con: duckdb.DuckDBPyConnection,
    queries: list[str],
    *,
    by: str = "day",
    filters: Filters | None = None,
) -> list[AttentionRow]:
    """One row per query and period, periods in order, queries in the order given."""
    if by not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {by!r}")
    check_index_ready(con)
    filters = filters or Filters()
    cond, params = filters.where("a")
    totals_rows = con.execute(
        f"select {_local_period(by)} as period, count(*) from articles a "
        f"where {cond} and a.published_at is not null group by 1",
        params,
    ).fetchall()
    totals = {r[0]: int(r[1]) for r in totals_rows}
    first = _trunc(con, filters.since, by) if filters.since else min(totals, default=None)
    last = _trunc(con, filters.until, by) if filters.until else max(totals, default=None)
    if first is None or last is None:
        return []
    periods = [
        r[0]
        for r in con.execute(
            f"select generate_series::date from generate_series(?::date, ?::date, "
            f"interval 1 {by})",
            [first, last],
        ).fetchall()
    ]
    out: list[AttentionRow] = []
    for q in queries:
        compiled = compile_query(con, q)
        counts = dict(
            con.execute(
                f"with {compiled.ctes}, m as ({compiled.matches_sql}) "
                f"select {_local_period(by)} as period, count(*) from m "
                f"join articles a on a.article_id = m.doc::varchar where {cond} group by 1",
                params,
            ).fetchall()
        )
        out += [AttentionRow(q, p, int(counts.get(p, 0)), totals.get(p, 0)) for p in periods]
    return out


def _trunc(con: duckdb.DuckDBPyConnection, day: date, by: str) -> date:
    row = con.execute(f"select date_trunc('{by}', ?::date)::date", [day]).fetchone()
    assert row is not None
    return row[0]


__all__ = ["PERIODS", "AttentionRow", "attention"]
