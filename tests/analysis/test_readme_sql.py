"""Every SQL example of the README runs through ``baotintuc query`` and returns rows on a
warehouse of the mirror (the demo's data), except those marked as needing other data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from config import PROJECT_ROOT
from tests.support import run_cli

NO_ROWS_MARK = "-- (no rows on the demo"


def _statements() -> list[str]:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```sql\n(.*?)```", readme, flags=re.S):
        for stmt in block.split(";"):
            code = "\n".join(line for line in stmt.splitlines() if line.strip())
            if code.strip() and not all(x.strip().startswith("--") for x in code.splitlines()):
                out.append(code)
    return out


STATEMENTS = _statements()


def test_the_readme_has_examples() -> None:
    assert len(STATEMENTS) >= 10


@pytest.mark.parametrize("sql", STATEMENTS, ids=[s.splitlines()[0][:60] for s in STATEMENTS])
def test_readme_example_returns_rows(warehouse: dict[str, Path], sql: str) -> None:
    proc = run_cli(warehouse["root"], "query", "--db", str(warehouse["db"]), "--format",
                   "json", sql)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    if NO_ROWS_MARK in sql:
        assert isinstance(rows, list)
    else:
        assert rows, f"no rows for:\n{sql}"
