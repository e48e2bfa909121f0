"""One warehouse of the whole offline mirror, built once for every analysis test.

It is made the way a user makes one: ``baotintuc crawl`` of the mirror over HTTP (real
pages included), then ``baotintuc search --rebuild``. Tests that write get a copy
(:func:`writable_copy`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support import copy_of, run_cli

# An article of the mirror made from a real baotintuc.vn page (tests/resources/baotintuc/):
# "Phát hiện ngăn chặn và tiêu hủy 14 tấn lợn bị dịch tả Châu Phi".
REAL_ARTICLE = "20250712100502617"


@pytest.fixture(scope="session")
def warehouse(
    ingested: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("analysis")
    db = copy_of(ingested, root)
    rebuild = run_cli(root, "search", "--rebuild", "--db", str(db))
    assert rebuild.returncode == 0, rebuild.stderr[-3000:]
    assert "articles indexed" in rebuild.stdout
    return {"root": root, "db": db}


def writable_copy(warehouse: dict[str, Path], tmp_path: Path) -> Path:
    target = tmp_path / "copy.duckdb"
    shutil.copy(warehouse["db"], target)
    return target


def read_only(db: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'Asia/Ho_Chi_Minh'")
    return con
