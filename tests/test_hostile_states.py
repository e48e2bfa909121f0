"""Hostile site, class "honest states": a run's exit code, ``crawl_runs`` row and Prefect
state say what really happened.

* An origin that refuses connections: exit 2 at once, before Prefect starts; the flow
  itself (as a deployment runs it) ends Failed.
* Every feed and listing failing: the flow ends Failed (exit 1 from the CLI), the run row
  says ``failed`` and why.
* More than ``run.max_failure_share`` of the articles failing: exit 1, what was fetched is
  kept.
* A corrupt or truncated DuckDB file: exit 2 with one line naming it, nothing fetched,
  the file untouched (bytes and mtime).
* A full disk (a tiny tmpfs): the real cause (no space left) is reported, not DuckDB's
  ``cannot rollback - no transaction is active``; the file stays readable.
* Two crawls of different modes on one warehouse at once: they take turns, and no
  article is fetched twice.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from baotintuc.urls import article_id
from mirror.server import Fault, MirrorServer
from tests.hostile.run import assert_invariant, hostile_env, one_line, rows, run, runs
from tests.hostile.site import AN_NINH, PHAP_LUAT, StandIn, canonical

pytestmark = pytest.mark.slow
FEED = "tin-moi-nhat"
ARTICLES = 12


def free_closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Site:
    def __init__(self, root: Path) -> None:
        self.standin = s = StandIn(root, articles=40)
        self.articles = [s.take(PHAP_LUAT) for _ in range(ARTICLES)]
        for a in self.articles:
            s.publish(a)
        s.feed(FEED, [canonical(a.path) for a in self.articles])
        # The same articles on the listing (another mode of discovery), under a
        # sub-category's path for half of them.
        listed = []
        for i, a in enumerate(self.articles):
            if i % 2:
                other = a.path.replace("/phap-luat/", f"/{AN_NINH.slug}/")
                s.publish(a, other)
                listed.append(dataclasses.replace(a, path=other))
            else:
                listed.append(a)
        s.listing(PHAP_LUAT, 1, listed)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, MirrorServer]]:
    st = Site(tmp_path_factory.mktemp("states-site"))
    with MirrorServer(st.standin.site) as srv:
        yield st, srv


def _env(root: Path, factory: pytest.TempPathFactory, **extra: str) -> dict[str, str]:
    return hostile_env(root, factory, BTT_CRAWL__FEEDS=f'["{FEED}"]', **extra)


# -- unreachable origin -----------------------------------------------------------------


def test_unreachable_origin_exits_2_at_once(tmp_path: Path,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    db = tmp_path / "u.duckdb"
    base = f"http://127.0.0.1:{free_closed_port()}"
    t0 = time.monotonic()
    proc = run(_env(tmp_path, tmp_path_factory), "crawl", "--base-url", base, "--db", str(db))
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = one_line(proc.stderr)
    assert base in line and "Connection refused" in line
    assert elapsed < 60, f"took {elapsed:.0f} s"  # "quickly": generous on a busy machine
    assert not db.exists(), "nothing was created"
    assert not list((tmp_path / "data" / "raw").rglob("*.warc.gz"))


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


@pytest.mark.timeout(300)
def test_flow_run_is_failed_when_nothing_can_be_fetched(
        harness: None, site: tuple[Site, MirrorServer], tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow as a deployment runs it (no CLI): an unreachable origin and an origin
    whose every feed and listing fails both end in a Failed state; the second leaves a
    ``failed`` run row saying why."""
    from flows.ingest import ingest

    _, srv = site
    for key, value in _env(tmp_path, tmp_path_factory).items():
        if key.startswith("BTT_"):
            monkeypatch.setenv(key, value)
    db = tmp_path / "f.duckdb"
    state = ingest(base_url=f"http://127.0.0.1:{free_closed_port()}", db_path=str(db),
                   return_state=True)
    assert state.is_failed()
    assert "cannot reach" in (state.message or "")

    srv.set_fault("/*", Fault("status", status=500))
    try:
        state = ingest(base_url=srv.base_url, db_path=str(db), mode="all",
                       categories=["phap-luat"], return_state=True)
    finally:
        srv.clear_faults()
    assert state.is_failed()
    assert "nothing could be fetched" in (state.message or "")
    (row,) = runs(db)
    assert row["status"] == "failed" and "nothing could be fetched" in row["message"]
    assert row["discovered"] == 0 and row["stored"] == 0
    reasons = rows(db, "select distinct stage, reason from fetch_failures")
    assert set(reasons) <= {("feed", "http_500"), ("listing", "http_500")}, reasons


# -- too many failures --------------------------------------------------------------------


def test_failure_share_fails_the_run_and_keeps_what_was_fetched(
        site: tuple[Site, MirrorServer], tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    st, srv = site
    db = tmp_path / "s.duckdb"
    dead = st.articles[: ARTICLES * 2 // 3]  # 8 of 12: 67 % > 50 %
    for a in dead:
        srv.set_fault(a.path, Fault("status", status=404))
    try:
        proc = run(_env(tmp_path, tmp_path_factory), "crawl", "--base-url", srv.base_url,
                   "--db", str(db), "--mode", "rss")
    finally:
        srv.clear_faults()
    assert proc.returncode == 1, proc.stderr[-2000:]
    line = one_line(proc.stderr)
    assert f"{len(dead)} of {ARTICLES} articles could not be fetched" in line
    assert "allowed 50%" in line and "http_404" in line
    (row,) = runs(db)
    assert row["status"] == "failed" and row["failed"] == len(dead)
    assert_invariant(row)
    stored = {r[0] for r in rows(db, "select article_id from articles")}
    assert stored == {a.article_id for a in st.articles[len(dead):]}, "fetched pages are kept"


# -- a warehouse we cannot read ----------------------------------------------------------------


def _truncated_db(path: Path) -> None:
    from warehouse.db import writer

    with writer(path) as con:
        con.execute("create table filler as select range as i, repeat('x', 200) as t "
                    "from range(20000)")
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(size // 2)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty"])
def test_unreadable_warehouse_exits_2_untouched(
        kind: str, site: tuple[Site, MirrorServer], tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    _, srv = site
    db = tmp_path / "bad.duckdb"
    if kind == "garbage":
        db.write_bytes(os.urandom(300_000))
    elif kind == "truncated":
        _truncated_db(db)
    else:
        db.write_bytes(b"")
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    mark = len(srv.requests)
    proc = run(_env(tmp_path, tmp_path_factory), "crawl", "--base-url", srv.base_url,
               "--db", str(db))
    assert proc.returncode == 2, (kind, proc.stdout[-1000:], proc.stderr[-2000:])
    line = one_line(proc.stderr)
    assert str(db) in line, line
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before, "the file is untouched"
    assert srv.requests[mark:] == [], "nothing fetched"


# -- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted on a folder, with a migrated warehouse and little room left."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {err}")
    try:
        from warehouse.db import writer

        with writer(mnt / "w.duckdb"):
            pass
        used = sum(p.stat().st_size for p in mnt.iterdir())
        subprocess.run(["mount", "-o", f"remount,size={used + 64 * 1024}", str(mnt)],
                       check=True)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_reports_the_real_cause(site: tuple[Site, MirrorServer], tiny_disk: Path,
                                          tmp_path: Path,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    _, srv = site
    db = tiny_disk / "w.duckdb"
    proc = run(_env(tmp_path, tmp_path_factory), "crawl", "--base-url", srv.base_url,
               "--db", str(db), "--mode", "rss")
    assert proc.returncode == 1, (proc.stdout[-1000:], proc.stderr[-2000:])
    line = one_line(proc.stderr)
    assert "No space left on device" in line, line
    assert "cannot rollback" not in line
    with duckdb.connect(str(db), read_only=True) as con:  # still a readable warehouse
        assert con.execute("select count(*) from articles").fetchone()[0] >= 0
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


# -- two crawls at once ----------------------------------------------------------------------------


def test_two_crawls_of_one_warehouse_take_turns(site: tuple[Site, MirrorServer], tmp_path: Path,
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    st, srv = site
    db = tmp_path / "t.duckdb"
    env = _env(tmp_path, tmp_path_factory)
    mark = len(srv.requests)
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def crawl(mode: str) -> None:
        # Each its own Prefect home: two temporary Prefect servers on one SQLite file
        # would fight over it (a copy keeps the migrations already paid).
        home = tmp_path / f"prefect-{mode}"
        shared = Path(env["PREFECT_HOME"])
        if shared.is_dir():
            shutil.copytree(shared, home, ignore=shutil.ignore_patterns("*.lock", "*-wal",
                                                                        "*-shm"))
        results[mode] = run(env | {"PREFECT_HOME": str(home)}, "crawl", "--base-url",
                            srv.base_url, "--db", str(db), "--mode", mode,
                            "--categories", "phap-luat")

    threads = [threading.Thread(target=crawl, args=(m,)) for m in ("rss", "listings")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(400)
    for mode, proc in results.items():
        assert proc.returncode == 0, (mode, proc.stderr[-2000:])
    hits = Counter(article_id(r.path) for r in srv.requests[mark:] if article_id(r.path))
    assert set(hits) == {a.article_id for a in st.articles}
    assert all(n == 1 for n in hits.values()), hits
    both = runs(db)
    assert [r["status"] for r in both] == ["completed", "completed"]
    assert sorted(r["mode"] for r in both) == ["listings", "rss"]
    # The one that got the warehouse first fetched everything; the other found it stored.
    assert sorted(r["new"] for r in both) == [0, ARTICLES]
    later = next(r for r in both if r["new"] == 0)
    assert later["stats"]["skipped_known"] == ARTICLES
    for r in both:
        assert_invariant(r)
