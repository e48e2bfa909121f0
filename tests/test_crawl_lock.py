"""One crawl per warehouse at a time: a second one waits (bounded), then gives up clearly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.spider import CrawlBusy, crawl_lock

HOLDER = """
import sys, time
from pathlib import Path
from flows.spider import crawl_lock
with crawl_lock(Path(sys.argv[1]), 0):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(db: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.timeout(30)
def test_second_crawl_gives_up_after_the_bound(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    holder = _hold(db, 10)
    try:
        started = time.monotonic()
        with pytest.raises(CrawlBusy) as err, crawl_lock(db, wait_s=1.0):
            pass
        assert 0.9 < time.monotonic() - started < 5
        assert f"pid {holder.pid}" in str(err.value)
        assert "crawl.busy_wait_seconds" in str(err.value)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.timeout(30)
def test_second_crawl_waits_for_the_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "w.duckdb"
    holder = _hold(db, 1.5)
    started = time.monotonic()
    with crawl_lock(db, wait_s=20):
        waited = time.monotonic() - started
    holder.wait()
    assert 0.5 < waited < 10
    assert any("waiting up to 20 s" in r.getMessage() for r in caplog.records)
