"""``baotintuc query``: every column, four formats, one-line errors, and confinement to the
warehouse file (no other file read or written, no ATTACH, no extension, no settings)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import duckdb
import pytest

from tests.analysis.conftest import read_only
from tests.support import run_cli


def _query(warehouse: dict[str, Path], sql: str, *extra: str):  # noqa: ANN202
    return run_cli(warehouse["root"], "query", "--db", str(warehouse["db"]), *extra, sql)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_prints_a_header_and_one_line_per_row(warehouse: dict[str, Path]) -> None:
    proc = _query(warehouse, "select article_id, title, authors, published_at from articles "
                  "order by article_id", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    with read_only(warehouse["db"]) as con:
        n = con.execute("select count(*) from articles").fetchone()[0]  # type: ignore[index]
    assert rows[0] == ["article_id", "title", "authors", "published_at"]
    assert len(rows) == n + 1 and len(proc.stdout.splitlines()) == n + 1
    assert json.loads(rows[1][2]) is not None  # lists as JSON arrays
    assert rows[1][3].endswith("+07:00")


def test_table_shows_every_column_of_a_wide_result(warehouse: dict[str, Path]) -> None:
    proc = _query(warehouse, "select * from articles limit 2")
    assert proc.returncode == 0
    with read_only(warehouse["db"]) as con:
        columns = [d[0] for d in con.execute("select * from articles limit 0").description]
    header = proc.stdout.splitlines()[1]
    assert [c.strip() for c in header.strip("|").split("|")] == columns
    assert proc.stdout.rstrip().endswith(f"2 rows, {len(columns)} columns")


def test_json_and_markdown(warehouse: dict[str, Path]) -> None:
    proc = _query(warehouse, "select category, count(*) as n from articles group by 1 "
                  "order by 2 desc, 1 limit 3", "--format", "json")
    records = json.loads(proc.stdout)
    assert len(records) == 3 and set(records[0]) == {"category", "n"}
    assert isinstance(records[0]["n"], int)
    md = _query(warehouse, "select 'a|b' as x, 1 as y", "--format", "markdown")
    assert md.stdout.splitlines() == ["| x | y |", "|---|---|", "| a\\|b | 1 |"]


def test_views_and_macros_work_in_the_confined_connection(warehouse: dict[str, Path]) -> None:
    proc = _query(warehouse, "select vn_fold('Đảng Hoà') as f, "
                  "(select count(*) from search_match('tham ô')) > 0 as found, "
                  "(select count(*) from articles_vn) > 0 as vn", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"f": "dang hoa", "found": True, "vn": True}]


def test_vietnam_time_is_the_same_in_every_client(warehouse: dict[str, Path]) -> None:
    sql = "select published_vn from articles_vn where article_id = '20250712100502617'"
    cli = json.loads(_query(warehouse, sql, "--format", "json").stdout)[0]["published_vn"]
    with duckdb.connect(str(warehouse["db"]), read_only=True) as con:  # session TZ untouched
        con.execute("SET TimeZone = 'UTC'")
        plain = con.execute(sql).fetchone()[0]  # type: ignore[index]
    assert cli == plain.isoformat() == "2025-07-12T10:26:00"


@pytest.mark.parametrize(
    ("sql", "code", "message"),
    [
        ("", 2, "empty SQL"),
        ("   ;  ", 2, "empty SQL"),
        ("selec 1", 1, "Parser Error"),
        ("select nope from articles", 1, "nope"),
        ("select 1; select 2", 2, "one statement at a time"),
        ("select 1; attach ':memory:' as m", 2, "one statement at a time"),
        ("delete from articles", 2, "DELETE statements are refused"),
        ("set TimeZone = 'UTC'", 2, "SET statements are refused"),
        ("reset TimeZone", 2, "refused"),
        ("pragma enable_profiling", 2, "PRAGMA statements are refused"),
        ("install httpfs", 2, "refused"),
        ("load httpfs", 2, "refused"),
        ("attach ':memory:' as m", 2, "ATTACH statements are refused"),
        ("create secret (type s3, key_id 'a', secret 'b')", 2, "refused"),
        ("call enable_logging()", 2, "refused"),
        ("checkpoint", 2, "refused"),
    ],
)
def test_errors_and_refusals_are_one_line(
    warehouse: dict[str, Path], sql: str, code: int, message: str
) -> None:
    proc = _query(warehouse, sql)
    assert proc.returncode == code
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("baotintuc: ")
    assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture()
def outside(tmp_path: Path) -> dict[str, Path]:
    """Files outside the warehouse: a secret to read, a target to write, another DB."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LINE\n")
    (tmp_path / "data.csv").write_text("a,b\nTOP-SECRET-CSV,2\n")
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("create table articles as select 'keep me' as title")
    return {"dir": tmp_path, "secret": secret, "csv": tmp_path / "data.csv", "other": other}


ATTACKS = [
    "select content from read_text('{secret}')",
    "select * from read_text('/etc/passwd')",
    "select * from read_blob('{secret}')",
    "select * from read_csv('{csv}')",
    "select * from '{csv}'",
    "select * from read_json('{csv}')",
    "select * from read_parquet('{dir}/*.parquet')",
    "select * from glob('{dir}/*')",
    "select * from sniff_csv('{csv}')",
    "copy (select 1) to '{dir}/written.csv'",
    "copy (select * from articles) to '{dir}/written.parquet' (format parquet)",
    "copy articles from '{csv}'",
    "export database '{dir}/exported'",
    "attach '{other}' as w (read_only false)",
    "select * from (select 1) t, (select * from read_text('{secret}'))",
    "with x as (select * from read_csv('{csv}')) select * from x",
    "select 1; delete from articles",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_no_file_outside_the_warehouse_is_read_or_written(
    warehouse: dict[str, Path], outside: dict[str, Path], attack: str
) -> None:
    sql = attack.format(**{k: str(v) for k, v in outside.items()})
    before = {p.name: _digest(p) for p in outside["dir"].iterdir()}
    wh_before = _digest(warehouse["db"])
    proc = _query(warehouse, sql)
    assert proc.returncode in (1, 2)
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("baotintuc: ")
    assert "TOP-SECRET" not in proc.stderr and "root:" not in proc.stderr
    assert {p.name: _digest(p) for p in outside["dir"].iterdir()} == before
    assert _digest(warehouse["db"]) == wh_before
    with duckdb.connect(str(outside["other"]), read_only=True) as con:
        assert con.execute("select title from articles").fetchall() == [("keep me",)]


def test_missing_database_is_one_line(warehouse: dict[str, Path], tmp_path: Path) -> None:
    proc = run_cli(warehouse["root"], "query", "--db", str(tmp_path / "nope.duckdb"),
                   "select 1")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "no database at" in proc.stderr
    assert not (tmp_path / "nope.duckdb").exists()
