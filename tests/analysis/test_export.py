"""``baotintuc export``: Parquet round trip (hive partitions), JSONL for Hugging Face
``datasets``, CSV, and the schema written beside the data."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.analysis.conftest import read_only
from tests.support import run_cli

KEY = {"articles": "article_id", "article_images": "article_id, position",
       "article_versions": "article_id, version"}


def _export(warehouse: dict[str, Path], out: Path, fmt: str, *extra: str) -> None:
    proc = run_cli(warehouse["root"], "export", "--db", str(warehouse["db"]), "--format", fmt,
                   "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stderr
    assert "exported" in proc.stdout


def test_parquet_round_trips_every_row(warehouse: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "pq"
    _export(warehouse, out, "parquet")
    parts = sorted(p.relative_to(out / "articles").parts[:2]
                   for p in (out / "articles").rglob("*.parquet"))
    assert parts and all(y.startswith("year=") and m.startswith("month=") and len(m) == 8
                         for y, m in parts)
    con = read_only(warehouse["db"])
    con.execute("SET TimeZone = 'Asia/Ho_Chi_Minh'")
    for table, key in KEY.items():
        stored = con.execute(f"select * from {table} order by {key}").fetchall()
        files = list((out / table).rglob("*.parquet"))
        if not stored:
            assert files == []
            continue
        back = con.execute(
            f"select * exclude (year, month) from read_parquet('{out}/{table}/**/*.parquet', "
            f"hive_partitioning = true) order by {key}"
        ).fetchall()
        assert back == stored, table
    mismatch = con.execute(
        f"select count(*) from read_parquet('{out}/articles/**/*.parquet', "
        "hive_partitioning = true) where year <> year(published_at at time zone "
        "'Asia/Ho_Chi_Minh') or month::int <> month(published_at at time zone "
        "'Asia/Ho_Chi_Minh')"
    ).fetchone()
    assert mismatch == (0,)
    schema = (out / "SCHEMA.md").read_text()
    assert "| `published_at` | TIMESTAMP WITH TIME ZONE |" in schema
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["rows"]["articles"] == len(con.execute("from articles").fetchall())


def test_since_until_select_vietnam_days(warehouse: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "july"
    _export(warehouse, out, "parquet", "--since", "2025-07-12", "--until", "2025-07-13")
    with read_only(warehouse["db"]) as con:
        want = con.execute(
            "select article_id from articles where (published_at at time zone "
            "'Asia/Ho_Chi_Minh')::date between date '2025-07-12' and date '2025-07-13' "
            "order by 1").fetchall()
        got = con.execute(f"select article_id from read_parquet('{out}/articles/**/*.parquet')"
                          " order by 1").fetchall()
    assert got == want and len(want) > 5


def test_jsonl_loads_with_hugging_face_datasets(
    warehouse: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "jsonl"
    _export(warehouse, out, "jsonl")
    lines = (out / "articles" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    keys = set(records[0])
    assert all(set(r) == keys for r in records)  # every key on every line
    for k in keys:  # one JSON type per key (or null)
        assert len({type(r[k]).__name__ for r in records if r[k] is not None}) <= 1, k
    assert records[0]["published_at"].endswith("+07:00") and "T" in records[0]["published_at"]
    assert isinstance(records[0]["authors"], list)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    datasets = pytest.importorskip("datasets", reason="pip install -e '.[dev]' (datasets)")
    ds = datasets.load_dataset("json", data_files=str(out / "articles" / "articles.jsonl"),
                               split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert ds.num_rows == len(records)
    assert ds.features["authors"].feature.dtype == "string"
    assert ds[0]["article_id"] == records[0]["article_id"]


def test_csv_export_and_refusal_to_overwrite(warehouse: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "csv"
    _export(warehouse, out, "csv")
    with duckdb.connect() as con:
        n = con.execute(f"select count(*) from read_csv('{out}/articles/articles.csv')"
                        ).fetchone()
    with read_only(warehouse["db"]) as wh:
        assert n == wh.execute("select count(*) from articles").fetchone()
    again = run_cli(warehouse["root"], "export", "--db", str(warehouse["db"]), "--format",
                    "csv", "--out", str(out))
    assert again.returncode == 2 and "not an empty folder" in again.stderr
    assert again.stderr.count("\n") == 1
