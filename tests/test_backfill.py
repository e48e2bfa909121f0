"""End to end: ``baotintuc backfill`` through the mirror over HTTP, with a tiny queue bound
so that listing and sitemap pages are held back and released many times."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support import BAOTINTUC, REPO, cli_env

pytestmark = pytest.mark.slow


def test_a_backfill_with_a_tiny_queue_stores_every_article_once(
    mirror_server: Any, ground_truth: dict, tmp_path: Path
) -> None:
    import subprocess

    db = tmp_path / "b.duckdb"
    env = cli_env(tmp_path) | {"BTT_CRAWL__QUEUED_ARTICLES": "10"}
    proc = subprocess.run(
        [str(BAOTINTUC), "backfill", "--base-url", mirror_server.base_url, "--db", str(db),
         "--max-articles", "0"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        ids = [r[0] for r in con.sql("select article_id from articles").fetchall()]
        run = con.sql("select status, discovered, stored, skipped, failed, lost, run_id "
                      "from crawl_runs").fetchall()
        sources = dict(con.sql("select split_part(via, ':', 1), count(*) from article_urls "
                               "group by 1").fetchall())
    assert sorted(ids) == sorted(ground_truth)  # every article, once
    ((status, discovered, stored, skipped, failed, lost, run_id),) = run
    assert (status, lost, failed, skipped) == ("completed", 0, 0, 0)
    assert discovered == stored == len(ground_truth)
    assert sources.get("listing", 0) > 0 and sources.get("sitemap", 0) > 0, sources
    stats = json.loads((tmp_path / "data" / "runs" / run_id / "stats.json").read_text("utf-8"))
    assert stats["discovery_pages_held"] > 0  # the bound was reached and pages waited
    assert not db.with_name(db.name + ".backfill.json").exists()  # a finished backfill
