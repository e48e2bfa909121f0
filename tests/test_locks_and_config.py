"""Issue 4: a locked warehouse, bad configuration and a Prefect server that is down.

Real processes only: the ``baotintuc`` CLI, "analyst" subprocesses holding the DuckDB file
(read-write or read-only), the mirror over HTTP on 127.0.0.1, a closed local port for
Prefect's API.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mirror.server import Fault
from tests.support import BAOTINTUC, REPO, cli_env
from warehouse.db import WarehouseLocked, connect, writer

PY = sys.executable
HOLDER = (
    "import duckdb, sys, time\n"
    "con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro')\n"
    "print('holding', flush=True)\n"
    "time.sleep(float(sys.argv[3]))\n"
    "con.close()\n"
)


def shared_env(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = cli_env(root)
    env["PREFECT_HOME"] = str(tmp_path_factory.getbasetemp() / "prefect-shared")
    return env


def hold(db: Path, mode: str, seconds: float) -> subprocess.Popen[str]:
    """An analyst process holding ``db`` (``rw`` or ``ro``) for ``seconds``; returns once
    it holds the file."""
    proc = subprocess.Popen(
        [PY, "-c", HOLDER, str(db), mode, str(seconds)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "holding", proc.stderr.read() if proc.stderr else ""
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=10)


def first_listing_article(site: Path, listing: str = "phap-luat-475ct0.htm") -> str:
    html = (site / listing).read_text(encoding="utf-8")
    m = re.search(r'href="(?:https://baotintuc\.vn)?(/[^"]+-\d{17}\.htm)"', html)
    assert m
    return m.group(1)


def crawl_with_holder(
    env: dict[str, str], mirror_server: Any, site: Path, db: Path, hold_s: float
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run the CLI on one listing; once it is fetching (one article hangs 3 s, twice:
    Twisted re-sends it once on a reused connection), an analyst takes the DuckDB file
    read-write for ``hold_s``. Returns (result, seconds from the hold to the CLI's end,
    whole run seconds)."""
    slow = first_listing_article(site)
    mirror_server.set_fault(slow, Fault("timeout", seconds=3))
    raw = Path(env["BTT_ROOT"]) / "data" / "raw"
    t0 = time.monotonic()
    cli = subprocess.Popen(
        [str(BAOTINTUC), "crawl", "--base-url", mirror_server.base_url, "--db", str(db),
         "--mode", "listings", "--categories", "phap-luat"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    holder = None
    try:
        deadline = time.monotonic() + 90
        while not list(raw.rglob("*.part")):
            assert cli.poll() is None, cli.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the crawl never started"
            time.sleep(0.05)
        holder = hold(db, "rw", hold_s)
        held_at = time.monotonic()
        out, err = cli.communicate(timeout=180)
        done = time.monotonic()
    finally:
        mirror_server.clear_faults(slow)
        if cli.poll() is None:
            cli.kill()
        if holder is not None:
            stop(holder)
    result = subprocess.CompletedProcess(cli.args, cli.returncode, out, err)
    return result, done - held_at, done - t0


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_load_waits_for_an_analyst_then_succeeds(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, mirror_server: Any,
    mirror_out: Path,
) -> None:  # fmt: skip
    env = shared_env(tmp_path, tmp_path_factory) | {"BTT_CRAWL__RETRY_TIMES": "0"}
    db = tmp_path / "a.duckdb"
    proc, after_hold, total = crawl_with_holder(env, mirror_server, mirror_out / "site", db, 12)
    print(f"\nanalyst holds {db.name} read-write 12 s: CLI exit {proc.returncode}, ended "
          f"{after_hold:.1f} s after the hold began, run {total:.1f} s")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    waits = [ln for ln in proc.stderr.splitlines() if "is locked by" in ln]
    assert waits, f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
    assert str(db) in waits[0] and re.search(r"PID \d+", waits[0]), waits[0]
    assert "waiting up to 60s" in waits[0]
    assert after_hold >= 12 - 0.5, "the load waited for the holder"
    with connect(db, read_only=True) as con:
        n = con.execute("select count(*) from articles").fetchone()[0]
    assert n >= 10


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_load_gives_up_after_the_bound_with_one_message(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, mirror_server: Any,
    mirror_out: Path,
) -> None:  # fmt: skip
    bound = 2.0
    env = shared_env(tmp_path, tmp_path_factory) | {
        "BTT_CRAWL__RETRY_TIMES": "0",
        "BTT_WAREHOUSE__LOCK_TIMEOUT_SECONDS": str(bound),
    }
    db = tmp_path / "b.duckdb"
    proc, after_hold, total = crawl_with_holder(env, mirror_server, mirror_out / "site", db, 300)
    print(f"\nlock_timeout {bound} s, holder stays: exit {proc.returncode} {after_hold:.1f} s "
          f"after the hold began (load task retries included), run {total:.1f} s")  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    final = [ln for ln in proc.stderr.splitlines() if ln.startswith("baotintuc: ")]
    assert len(final) == 1, proc.stderr[-3000:]
    assert str(db) in final[0] and "is locked by another process (PID" in final[0]
    assert "BTT_WAREHOUSE__LOCK_TIMEOUT_SECONDS" in final[0]
    # The load task has retries=2, delays 5 s and 15 s: 3 attempts x bound + 20 s.
    # Bounded, but ~13x the configured bound (see the report).
    assert after_hold < 3 * bound + 20 + 15


@pytest.mark.timeout(60)
def test_read_only_readers_block_the_writer_only_within_the_bound(tmp_path: Path) -> None:
    """DuckDB: a read-only connection in another process takes a shared lock, which DOES
    block a writer. The writer waits while readers hold it, and a relay of overlapping
    readers makes it give up at the bound: bounded, never forever."""
    db = tmp_path / "r.duckdb"
    with writer(db) as con:
        con.execute("select 1")
    readers = [hold(db, "ro", 4) for _ in range(3)]  # several at once: they share the file
    t0 = time.monotonic()
    try:
        with writer(db) as con:  # lock_timeout 60 s by default
            waited = time.monotonic() - t0
            con.execute("select count(*) from articles")
    finally:
        for r in readers:
            stop(r)
    assert 2.5 <= waited < 8, f"3 read-only readers for 4 s held the writer {waited:.1f} s"

    relay: list[subprocess.Popen[str]] = []
    t1 = time.monotonic()
    try:
        relay.append(hold(db, "ro", 30))
        with pytest.raises(WarehouseLocked) as err:
            connect(db, lock_timeout=2, retry_interval=0.2)
        gave_up = time.monotonic() - t1
    finally:
        for r in relay:
            stop(r)
    assert 1.9 <= gave_up < 5
    assert "PID" in str(err.value)
    print(f"\n3 read-only readers (4 s): writer waited {waited:.1f} s; a reader that stays: "
          f"writer gave up after {gave_up:.1f} s (bound 2 s)")  # fmt: skip


# -- bad configuration -------------------------------------------------------------


def _run(root: Path, env_extra: dict[str, str], *args: str) -> tuple[Any, float]:
    env = cli_env(root) | env_extra
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(BAOTINTUC), *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    return proc, time.monotonic() - t0


BAD_CONFIG: dict[str, tuple[dict[str, str], list[str], str]] = {
    # case: (env, crawl arguments, text the one message must contain)
    "--categories nope": ({}, ["--categories", "nope"], "--categories: unknown category 'nope'"),
    "BTT_CRAWL__CATEGORIES": (
        {"BTT_CRAWL__CATEGORIES": '["nope"]'}, [], "BTT_CRAWL__CATEGORIES",
    ),
    "BTT_CRAWL__BASE_URL=ftp://x": (
        {"BTT_CRAWL__BASE_URL": "ftp://x"}, ["--no-base-url"], "BTT_CRAWL__BASE_URL",
    ),
    "negative delay": ({"BTT_CRAWL__DOWNLOAD_DELAY": "-1"}, [], "BTT_CRAWL__DOWNLOAD_DELAY"),
    "--db under a file": ({}, ["--db", "{tmp}/file.txt/data/x.duckdb"], "file.txt/data"),
    "BTT_PATHS__DATA_DIR under a file": (
        {"BTT_PATHS__DATA_DIR": "{tmp}/file.txt/data"}, [], "BTT_PATHS__DATA_DIR",
    ),
    "BTT_ROOT under a file": ({"BTT_ROOT": "{tmp}/file.txt/root"}, [], "BTT_PATHS__"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", list(BAD_CONFIG))
def test_bad_configuration_fails_at_start(
    case: str, tmp_path: Path, mirror_server: Any
) -> None:
    env_extra, args, want = BAD_CONFIG[case]
    (tmp_path / "file.txt").write_text("a regular file\n")
    env_extra = {k: v.format(tmp=tmp_path) for k, v in env_extra.items()}
    args = [a.format(tmp=tmp_path) for a in args]
    base = [] if "--no-base-url" in args else ["--base-url", mirror_server.base_url]
    args = [a for a in args if a != "--no-base-url"]
    if "--db" not in args:
        args += ["--db", str(tmp_path / "ok.duckdb")]
    proc, seconds = _run(tmp_path, env_extra, "crawl", *base, *args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("baotintuc: "), proc.stderr[-2000:]
    assert want in lines[0], lines[0]
    assert seconds < 15, f"{case}: took {seconds:.1f} s to refuse"
    assert not (tmp_path / "ok.duckdb").exists()


@pytest.mark.timeout(60)
def test_malformed_base_url_option_names_the_option(tmp_path: Path) -> None:
    proc, _ = _run(tmp_path, {}, "crawl", "--base-url", "notaurl",
                   "--db", str(tmp_path / "x.duckdb"))  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--base-url" in proc.stderr and "notaurl" in proc.stderr, proc.stderr


# -- Prefect server down ----------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_down_run(
    tmp_path_factory: pytest.TempPathFactory, mirror_server: Any
) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("prefect-down")
    api = f"http://127.0.0.1:{_closed_port()}/api"
    env = shared_env(root, tmp_path_factory) | {"PREFECT_API_URL": api}
    mark = len(mirror_server.requests)
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(BAOTINTUC), "crawl", "--base-url", mirror_server.base_url,
         "--db", str(root / "p.duckdb"), "--mode", "rss"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=80, check=False,
    )  # fmt: skip
    return {
        "api": api, "proc": proc, "seconds": time.monotonic() - t0, "root": root,
        "requests": mirror_server.requests[mark:],
    }  # fmt: skip


@pytest.mark.timeout(90)
def test_prefect_api_down_does_not_hang(prefect_down_run: dict[str, Any]) -> None:
    """The run stops within seconds, before fetching anything."""
    proc, seconds, api = (prefect_down_run[k] for k in ("proc", "seconds", "api"))
    tail = proc.stderr.strip().splitlines()[-1:] or [""]
    print(f"\nPREFECT_API_URL={api} (closed): exit {proc.returncode} after {seconds:.1f} s; "
          f"traceback: {'Traceback' in proc.stderr}; last line: {tail[0][:160]}")  # fmt: skip
    assert seconds < 30
    assert proc.returncode != 0
    assert prefect_down_run["requests"] == [], "nothing is fetched without an orchestrator"
    assert not (prefect_down_run["root"] / "p.duckdb").exists()


@pytest.mark.timeout(90)
def test_prefect_api_down_fails_clearly(prefect_down_run: dict[str, Any]) -> None:
    proc, api = prefect_down_run["proc"], prefect_down_run["api"]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "PREFECT_API_URL" in proc.stderr and api in proc.stderr


def test_runs_starting_together_pass_each_others_write_check(tmp_path: Path) -> None:
    """The CLI probes every folder a run writes to. With one fixed probe name, two runs
    starting together (seen in CI: two crawls of one warehouse) removed each other's probe
    and one failed as "not writable (No such file or directory)"."""
    import threading

    from config import PathSettings, load_settings
    from flows.cli.common import check_writable

    settings = load_settings().model_copy(
        update={"paths": PathSettings().resolved(tmp_path / "root")})
    db = tmp_path / "shared" / "w.duckdb"
    errors: list[str] = []

    def start_runs() -> None:
        for _ in range(300):
            if (problem := check_writable(settings, db)) is not None:
                errors.append(problem)

    threads = [threading.Thread(target=start_runs) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list(db.parent.iterdir()) == []  # no probe left behind
    # A folder that cannot be written is still named.
    (tmp_path / "file.txt").write_text("x")
    problem = check_writable(settings, tmp_path / "file.txt" / "w.duckdb")
    assert problem is not None and "--db / paths.db_path" in problem
