"""Re-extraction beyond one machine: ``reextract --dask-address`` sends its parse tasks to
that Dask scheduler (a real scheduler and worker, started here as separate processes), and
the default local cluster gives the same rows."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support import BAOTINTUC, REPO, cli_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
DASK = Path(sys.executable).with_name("dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Dask scheduler and one worker process on loopback, as on another host."""
    logs = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=(logs / "scheduler.log").open("w"), stderr=subprocess.STDOUT)]
    procs.append(subprocess.Popen(
        [str(DASK), "worker", address, "--nworkers", "1", "--nthreads", "1",
         "--no-dashboard", "--name", "remote-worker"],
        cwd=logs, stdout=(logs / "worker.log").open("w"), stderr=subprocess.STDOUT))
    from distributed import Client

    deadline = time.monotonic() + 90
    while True:
        try:
            with Client(address, timeout=5) as client:
                if client.scheduler_info()["workers"]:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, (logs / "worker.log").read_text()[-2000:]
        time.sleep(0.5)
    try:
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BAOTINTUC), *args], cwd=REPO, env=cli_env(root),
                          capture_output=True, text=True, timeout=240, check=False)


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory, mirror_server: Any) -> Path:
    """A small warehouse with its WARC archive (the Pháp luật listing, one page)."""
    root = tmp_path_factory.mktemp("dask-crawl")
    proc = _cli(root, "crawl", "--base-url", mirror_server.base_url, "--db",
                str(root / "w.duckdb"), "--mode", "listings", "--categories", "phap-luat")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root


def _copy(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest)
    return dest


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("select article_id, content_hash, title from articles "
                           "order by 1").fetchall()


def test_reextract_sends_its_tasks_to_the_given_scheduler(
    cluster: str, crawled: Path, tmp_path: Path
) -> None:
    from distributed import Client

    root = _copy(crawled, tmp_path / "copy")
    db = root / "w.duckdb"
    with duckdb.connect(str(db)) as con:  # make the stored rows stale: something to repair
        con.execute("update articles set title = 'cũ' where article_id in "
                    "(select article_id from articles order by 1 limit 3)")
    proc = _cli(root, "reextract", "--db", str(db), "--dask-address", cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = re.search(r"re-extracted (\d+) of (\d+) archived articles", proc.stdout)
    assert m and int(m.group(1)) == int(m.group(2)) > 5, proc.stdout
    assert "3 rows changed" in proc.stdout, proc.stdout
    assert all(title != "cũ" for _, _, title in _rows(db))

    with Client(cluster, timeout=10) as client:
        # Seconds of compute per task prefix this scheduler has seen (finished tasks too).
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: {
                name: sum(p.all_durations.values())
                for name, p in dask_scheduler.task_prefixes.items()
            }
        )
        workers = client.scheduler_info()["workers"]
    assert prefixes.get("parse_segment", 0) > 0, prefixes  # ran on this scheduler's worker
    assert [w["name"] for w in workers.values()] == ["remote-worker"]


def test_local_cluster_and_in_process_give_the_same_rows(crawled: Path, tmp_path: Path) -> None:
    results = []
    for workers in ("2", "0"):
        root = _copy(crawled, tmp_path / f"w{workers}")
        db = root / "w.duckdb"
        with duckdb.connect(str(db)) as con:
            con.execute("update articles set title = 'cũ'")
        proc = _cli(root, "reextract", "--db", str(db), "--workers", workers)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results.append(_rows(db))
    assert results[0] == results[1] and all(t != "cũ" for _, _, t in results[0])
