"""``baotintuc attention``: per period, matching articles, all articles and the share."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from tests.analysis.conftest import read_only
from tests.support import run_cli
from warehouse.search import match_ids


def test_json_counts_totals_and_shares_per_day(warehouse: dict[str, Path]) -> None:
    proc = run_cli(warehouse["root"], "attention", "--db", str(warehouse["db"]), "--format",
                   "json", "--since", "2025-06-01", "--until", "2025-07-13", "lừa đảo")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {"period", "count", "total", "share"} <= set(rows[0])
    days = [r["period"] for r in rows]
    assert days[0] == "2025-06-01" and days[-1] == "2025-07-13"
    assert len(days) == (date(2025, 7, 13) - date(2025, 6, 1)).days + 1  # no gaps
    with read_only(warehouse["db"]) as con:
        matched = match_ids(con, "lừa đảo")
        per_day = dict(con.execute(
            "select strftime((published_at at time zone 'Asia/Ho_Chi_Minh')::date, '%Y-%m-%d'),"
            " count(*) from articles group by 1").fetchall())
        day_of = dict(con.execute(
            "select article_id, strftime((published_at at time zone 'Asia/Ho_Chi_Minh')::date,"
            " '%Y-%m-%d') from articles").fetchall())
    for r in rows:
        assert r["total"] == per_day.get(r["period"], 0)
        assert r["count"] == sum(1 for a in matched if day_of[a] == r["period"])
        assert r["share"] == (round(r["count"] / r["total"], 6) if r["total"] else 0)
    assert any(r["count"] for r in rows) and any(r["count"] == 0 for r in rows)


def test_several_queries_by_month_side_by_side(warehouse: dict[str, Path]) -> None:
    root, db = warehouse["root"], str(warehouse["db"])
    proc = run_cli(root, "attention", "--db", db, "--by", "month", "--format", "json",
                   "--since", "2025-05-01", "lừa đảo", '"tham ô"')
    rows = json.loads(proc.stdout)
    assert [r["query"] for r in rows] == ["lừa đảo"] * 3 + ['"tham ô"'] * 3
    assert [r["period"] for r in rows[:3]] == ["2025-05-01", "2025-06-01", "2025-07-01"]
    table = run_cli(root, "attention", "--db", db, "--by", "month", "--since", "2025-05-01",
                    "lừa đảo", '"tham ô"')
    assert table.returncode == 0
    assert "[1] lừa đảo" in table.stdout and '[2] "tham ô"' in table.stdout
    assert "2025-06-01" in table.stdout
    csv_out = run_cli(root, "attention", "--db", db, "--by", "week", "--format", "csv",
                      "--since", "2025-07-01", "--category", "Pháp luật", "vụ án")
    lines = csv_out.stdout.splitlines()
    assert lines[0] == "period,query,count,total,share" and len(lines) >= 3
    assert lines[1].startswith("2025-06-30,")  # ISO weeks start on Monday


def test_bad_range_is_one_line(warehouse: dict[str, Path]) -> None:
    proc = run_cli(warehouse["root"], "attention", "--db", str(warehouse["db"]),
                   "--since", "2025-07-02", "--until", "2025-07-01", "x")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
