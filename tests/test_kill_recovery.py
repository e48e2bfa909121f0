"""Issue 4: a run SIGKILLed mid-fetch or mid-load loses nothing and breaks nothing.

The real ``baotintuc crawl`` runs as its own process group (``start_new_session=True``),
so ``os.killpg(SIGKILL)`` kills the CLI, its ephemeral Prefect server and the Scrapy
subprocess at once, with no chance to clean up. The next run must complete and leave
every article stored exactly once; no WARC file may be corrupt.

Mid-load, the kill lands inside the load transaction through the documented test hook
``BTT_TEST_PAUSE_IN_LOAD_S`` (warehouse/load.py), detected from outside by the DuckDB
file lock the loader holds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.archive import iter_pages
from mirror.server import Fault
from tests.support import BAOTINTUC, REPO, cli_env

pytestmark = pytest.mark.slow
FEED = "tin-moi-nhat"
SLOW_SECONDS = 25.0  # the hanging paths answer nothing for this long (killed well before)


def shared_env(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``cli_env`` with one Prefect home per test session (migrations paid once)."""
    env = cli_env(root)
    env["PREFECT_HOME"] = str(tmp_path_factory.getbasetemp() / "prefect-shared")
    env["BTT_CRAWL__FEEDS"] = f'["{FEED}"]'
    env["BTT_CRAWL__DISCOVER_FEED_INDEX"] = "false"
    return env


def feed_paths(site: Path, feed: str = FEED) -> list[str]:
    xml = (site / f"{feed}.rss").read_text(encoding="utf-8")
    links = re.findall(r"<link>https://baotintuc\.vn(/[^<]+-\d{17}\.htm)</link>", xml)
    return list(dict.fromkeys(links))


def start_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BAOTINTUC), *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def run_cli_env(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BAOTINTUC), *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def kill_group(proc: subprocess.Popen[str]) -> tuple[str, str]:
    os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # Nothing of the group may survive (Scrapy child, Prefect's server).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"process group {proc.pid} still alive after SIGKILL")
    return out, err


def wait_for(cond: Any, timeout: float, what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"CLI ended (exit {proc.returncode}) before {what}: {err[-2000:]}")
        time.sleep(0.05)
    kill_group(proc)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def strict_records(path: Path) -> int:
    """Response records of a WARC read with warcio itself: raises on any corrupt byte."""
    n = 0
    with path.open("rb") as fh:
        for record in ArchiveIterator(fh, arc2warc=False):
            if record.rec_type == "response":
                record.content_stream().read()
                n += 1
    return n


def stored(db: Path) -> list[tuple[str, Any, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(
            "select article_id, first_seen_at, content_hash from articles order by 1"
        ).fetchall()


def lock_holder_pid(db: Path) -> int | None:
    """PID named by DuckDB's lock conflict when another process holds ``db``, else None."""
    try:
        duckdb.connect(str(db), read_only=True).close()
    except duckdb.IOException as err:
        m = re.search(r"\(PID (\d+)\)", str(err))
        return int(m.group(1)) if m else -1
    return None


@pytest.mark.timeout(200)
def test_sigkill_mid_fetch_then_rerun(
    tmp_path_factory: pytest.TempPathFactory,
    mirror_server: Any,
    mirror_out: Path,
    ground_truth: dict[str, dict[str, Any]],
) -> None:
    root = tmp_path_factory.mktemp("kill-fetch")
    db = root / "k.duckdb"
    env = shared_env(root, tmp_path_factory)
    paths = feed_paths(mirror_out / "site")
    slow = paths[:4]
    raw = root / "data" / "raw"
    for p in slow:
        mirror_server.set_fault(p, Fault("timeout", seconds=SLOW_SECONDS))
    mark = len(mirror_server.requests)
    t0 = time.monotonic()
    try:
        proc = start_cli(env, "crawl", "--base-url", mirror_server.base_url, "--db", str(db),
                         "--mode", "rss")  # fmt: skip

        def fetching() -> bool:
            parts = list(raw.rglob("*.part"))
            hit = {r.path for r in mirror_server.requests[mark:]}
            return bool(parts) and parts[0].stat().st_size > 200_000 and set(slow) <= hit

        wait_for(fetching, 90, "the crawl to archive pages and hang on the slow paths", proc)
        parts = list(raw.rglob("*.part"))
        archived_before_kill = sum(1 for _ in iter_pages(parts[0]))
        kill_group(proc)
        killed_at = time.monotonic() - t0
    finally:
        for p in slow:
            mirror_server.clear_faults(p)
    loaded_before_kill = stored(db) if db.exists() else []
    assert archived_before_kill >= 5

    t1 = time.monotonic()
    again = run_cli_env(env, "crawl", "--base-url", mirror_server.base_url, "--db", str(db),
                        "--mode", "rss")  # fmt: skip
    rerun_s = time.monotonic() - t1
    print(
        f"\nkill mid-fetch: killed after {killed_at:.1f} s with {archived_before_kill} pages in "
        f"{parts[0].name}; rerun {rerun_s:.1f} s, exit {again.returncode}"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Traceback" not in again.stderr

    rows = stored(db)
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "every article stored exactly once"
    want = {
        aid for aid, t in ground_truth.items()
        if t["url"].removeprefix("https://baotintuc.vn") in paths
    }  # fmt: skip
    assert set(ids) == want
    assert set(loaded_before_kill) <= set(rows), "what was loaded before the kill is kept"
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.sql("select status, new from crawl_runs order by started_at").fetchall()
        failures = con.execute("select count(*) from fetch_failures").fetchone()[0]
    # The killed run is closed as interrupted, and credited with the pages it had fetched
    # (loaded by the rerun); together the two runs stored each article once.
    assert [r[0] for r in runs] == ["interrupted", "completed"], runs
    assert runs[0][1] >= archived_before_kill and sum(r[1] for r in runs) == len(want)
    assert failures == 0

    # Every archive: iter_pages reads every one to its end, and a strict reader agrees
    # on every file published as .warc.gz (a leftover .part may have a torn tail).
    complete = sorted(raw.rglob("*.warc.gz"))
    assert complete
    for path in complete:
        assert sum(1 for _ in iter_pages(path)) == strict_records(path), path
    for part in raw.rglob("*.part"):
        assert sum(1 for _ in iter_pages(part)) >= 1  # readable up to its last full record

    # reextract reads every complete archive and finds nothing to change; the segment
    # the rerun loaded recorded its fetches too, so no archive needs a scan first.
    rex = run_cli_env(env, "reextract", "--db", str(db))
    assert rex.returncode == 0, rex.stderr[-3000:]
    m = re.search(r"re-extracted (\d+) of (\d+) archived articles \((\d+) fetches in (\d+) "
                  r"WARC files, (\d+) scanned first\): (\d+) rows changed",
                  rex.stdout)  # fmt: skip
    assert m, rex.stdout
    parsed, articles, fetches, archives, scanned, changed = map(int, m.groups())
    assert archives == len(complete) and scanned == 0
    assert parsed == articles == fetches == len(want) and changed == 0, rex.stdout
    assert stored(db) == rows


@pytest.mark.timeout(240)
def test_sigkill_mid_load_then_rerun(
    tmp_path_factory: pytest.TempPathFactory,
    mirror_server: Any,
    ground_truth: dict[str, dict[str, Any]],
) -> None:
    root = tmp_path_factory.mktemp("kill-load")
    db = root / "l.duckdb"
    env = shared_env(root, tmp_path_factory)
    base = ["crawl", "--base-url", mirror_server.base_url, "--db", str(db),
            "--mode", "listings", "--max-pages", "1"]  # fmt: skip

    first = run_cli_env(env, *base, "--categories", "phap-luat")
    assert first.returncode == 0, first.stderr[-3000:]
    before = stored(db)
    assert len(before) >= 10

    # Second run: more categories, so it has new articles to load; it pauses inside the
    # load transaction (test hook) and is killed there.
    env_pause = env | {"BTT_TEST_PAUSE_IN_LOAD_S": "60"}
    t0 = time.monotonic()
    proc = start_cli(env_pause, *base, "--categories", "phap-luat,the-thao")
    holder: list[int | None] = [None]

    def loading() -> bool:
        holder[0] = lock_holder_pid(db)
        return holder[0] is not None

    wait_for(loading, 120, "the load task to hold the DuckDB file", proc)
    time.sleep(0.5)  # well inside the 60 s pause
    group = {int(p) for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == proc.pid}
    assert holder[0] in group, f"the lock holder {holder[0]} is the CLI run being killed"
    kill_group(proc)
    killed_at = time.monotonic() - t0
    assert stored(db) == before, "the killed load's uncommitted rows are gone, nothing else"
    with duckdb.connect(str(db), read_only=True) as con:  # the killed run left its trace
        assert con.sql("select status from crawl_runs order by started_at").fetchall() == [
            ("completed",), ("running",)]

    t1 = time.monotonic()
    third = run_cli_env(env, *base, "--categories", "phap-luat,the-thao")
    rerun_s = time.monotonic() - t1
    print(f"\nkill mid-load: killed {killed_at:.1f} s after start while PID {holder[0]} held "
          f"{db.name}; rerun {rerun_s:.1f} s, exit {third.returncode}")  # fmt: skip
    assert third.returncode == 0, third.stderr[-3000:]
    after = stored(db)
    ids = [r[0] for r in after]
    assert len(ids) == len(set(ids))
    assert set(before) <= set(after), "nothing previously stored is lost or changed"
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.sql(
            "select new, unchanged, status from crawl_runs order by started_at"
        ).fetchall()
        cats = dict(con.sql("select category_id, count(*) from articles group by 1").fetchall())
    assert [r[2] for r in runs] == ["completed", "interrupted", "completed"], runs
    assert runs[0][0] == len(before)
    assert sum(r[0] or 0 for r in runs) == len(after), "crawl_runs.new adds up to the articles"
    assert len(after) > len(before) and len(cats) >= 2
    for aid in ids:
        assert aid in ground_truth


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
