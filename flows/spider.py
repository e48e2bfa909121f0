"""Run the Scrapy spider in a subprocess and collect what it wrote.

Scrapy's Twisted reactor cannot restart inside one process and its logging set-up fights
Prefect's (shared/NOTES.md), so every crawl is a fresh ``python -m scrapy crawl``.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from config import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)


# Spider processes running now, so an interrupted CLI can wait for them to close their
# archive before it exits (flows/cli/).
ACTIVE_CRAWLS: set[subprocess.Popen[bytes]] = set()


def stop_active_crawls(grace_s: float = 15.0) -> None:
    """Ask running spiders to stop (SIGINT: Scrapy's graceful shutdown), then wait."""
    for proc in list(ACTIVE_CRAWLS):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in list(ACTIVE_CRAWLS):
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()


class CrawlFailed(RuntimeError):
    """The spider process itself failed (not a page: pages fail into failures.jsonl)."""


class CrawlBusy(CrawlFailed):
    """Another crawl of the same kind holds the crawl lock."""


@contextlib.contextmanager
def crawl_lock(jobdir: Path, wait_s: float = 0.0, poll_s: float = 2.0) -> Iterator[None]:
    """One crawl per job directory at a time, waiting up to ``wait_s`` for the holder.

    Two crawls of one mode would share the pending-archive bookkeeping; an hourly sweep
    that falls due during the nightly backfill waits for it (bounded) instead of failing.
    """
    jobdir.mkdir(parents=True, exist_ok=True)
    lock_path = jobdir / "crawl.lock"
    deadline = time.monotonic() + wait_s
    logged = False
    with lock_path.open("a+") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "unknown"
                if time.monotonic() >= deadline:
                    raise CrawlBusy(
                        f"another crawl is running (pid {holder}, lock {lock_path}) and did "
                        f"not finish within {wait_s:.0f} s (setting crawl.busy_wait_seconds)"
                    ) from None
                if not logged:
                    log.warning(
                        "another crawl is running (pid %s, lock %s): waiting up to %.0f s for it",
                        holder,
                        lock_path,
                        wait_s,
                    )
                    logged = True
                time.sleep(poll_s)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(slots=True)
class CrawlRequest:
    base_url: str
    run_dir: Path
    warc_path: Path
    since: date | None = None
    max_pages: int = 1
    categories: list[str] = field(default_factory=list)
    feeds: list[str] = field(default_factory=list)
    skip_ids_file: Path | None = None
    recheck_file: Path | None = None  # canonical URLs of stored articles due for a re-check
    mode: str = "all"  # all | rss | listings
    polite: bool = True
    # Scrapy's JOBDIR (disk queue). The ingest flow does not use it: every request is
    # dont_filter, so a resumed queue refetches what the new run rediscovers; the flow
    # resumes a killed crawl from its WARC instead (flows/ingest.py, pending crawls).
    jobdir: Path | None = None
    httpcache_dir: Path | None = None
    timeout_s: float = 4 * 3600


@dataclass(slots=True)
class CrawlOutput:
    warc_path: Path
    discovered: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    stats: dict[str, Any]
    returncode: int
    log_path: Path


def is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_command(req: CrawlRequest, settings: Settings) -> list[str]:
    args: dict[str, str] = {
        "base_url": req.base_url,
        "run_dir": str(req.run_dir),
        "warc_path": str(req.warc_path),
        "max_pages": str(req.max_pages),
        "mode": req.mode,
    }
    if req.since:
        args["since"] = req.since.isoformat()
    if req.categories:
        args["categories"] = ",".join(req.categories)
    if req.feeds:
        args["feeds"] = ",".join(req.feeds)
    if req.skip_ids_file:
        args["skip_ids"] = str(req.skip_ids_file)
    if req.recheck_file:
        args["recheck"] = str(req.recheck_file)
    cmd = [sys.executable, "-m", "scrapy", "crawl", "baotintuc"]
    for k, v in args.items():
        cmd += ["-a", f"{k}={v}"]
    overrides: dict[str, str] = {"LOG_FILE": str(req.run_dir / "scrapy.log"), "LOG_LEVEL": "INFO"}
    if not req.polite:
        # The offline mirror on 127.0.0.1: no need to be gentle with ourselves.
        overrides |= {
            "DOWNLOAD_DELAY": "0",
            "AUTOTHROTTLE_ENABLED": "False",
            "CONCURRENT_REQUESTS_PER_DOMAIN": "8",
            "CONCURRENT_REQUESTS": "8",
        }
    if req.jobdir:
        overrides["JOBDIR"] = str(req.jobdir)
    if req.httpcache_dir:
        overrides["HTTPCACHE_DIR"] = str(req.httpcache_dir)
    for k, v in overrides.items():
        cmd += ["-s", f"{k}={v}"]
    return cmd


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("skipping a torn line in %s", path)
    return rows


def run_crawl(req: CrawlRequest, settings: Settings) -> CrawlOutput:
    """Run the spider to completion; raise :class:`CrawlFailed` if the process fails."""
    req.run_dir.mkdir(parents=True, exist_ok=True)
    req.warc_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = build_command(req, settings)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env["SCRAPY_SETTINGS_MODULE"] = "crawler.settings"
    out_path = req.run_dir / "scrapy.stdout"
    log.info("crawl: %s", " ".join(cmd))
    with out_path.open("wb") as out:
        try:
            proc = subprocess.Popen(
                cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
            ACTIVE_CRAWLS.add(proc)
            try:
                proc.wait(timeout=req.timeout_s)
            finally:
                ACTIVE_CRAWLS.discard(proc)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait()
            raise CrawlFailed(f"spider did not finish within {req.timeout_s:.0f} s") from exc
    stats_path = req.run_dir / "stats.json"
    stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.exists() else {}
    if proc.returncode != 0 or not stats:
        tail = out_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise CrawlFailed(
            f"spider exited with code {proc.returncode}; see {out_path}: " + " | ".join(tail)
        )
    if req.jobdir and stats.get("finish_reason") == "finished":
        # A finished crawl leaves nothing to resume; a killed one keeps its queue.
        shutil.rmtree(req.jobdir, ignore_errors=True)
    return CrawlOutput(
        warc_path=req.warc_path,
        discovered=_read_jsonl(req.run_dir / "discovered.jsonl"),
        failures=_read_jsonl(req.run_dir / "failures.jsonl"),
        stats=stats,
        returncode=proc.returncode,
        log_path=req.run_dir / "scrapy.log",
    )
