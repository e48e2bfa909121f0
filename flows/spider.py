"""Run the Scrapy spider in a subprocess, and let one crawl at a time use a warehouse.

Scrapy's Twisted reactor cannot restart inside one process and its logging set-up fights
Prefect's (NOTES: Scrapy under Prefect), so every crawl is a fresh
``python -m scrapy crawl baotintuc`` whose only input is the run's request file
(``BTT_CRAWL_REQUEST``). The flow reads what it writes while it runs: closed WARC
segments, ``progress.json``; and at the end ``stats.json``, ``discovered.jsonl``,
``failures.jsonl``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from crawler.request import REQUEST_ENV, CrawlRequest

log = logging.getLogger(__name__)


class CrawlFailed(RuntimeError):
    """The spider process itself failed (not a page: pages fail into failures.jsonl)."""


class CrawlBusy(CrawlFailed):
    """Another crawl holds the warehouse's crawl lock beyond the bound."""


@contextlib.contextmanager
def crawl_lock(db_path: Path, wait_s: float) -> Iterator[None]:
    """One crawl per warehouse at a time, waiting up to ``wait_s`` for the holder.

    Two crawls of a warehouse (of any modes) would fetch the same new articles and share
    its resume bookkeeping; the second one waits for the first (bounded, logged once),
    so an hourly sweep that falls due during the nightly backfill takes its turn.
    """
    lock_path = db_path.with_name(db_path.name + ".crawl.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _read(lock_path.with_suffix(".pid")) or "unknown"
        log.warning("another crawl of %s is running (pid %s): waiting up to %.0f s for it",
                    db_path, holder, wait_s)
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            raise CrawlBusy(
                f"another crawl of {db_path} is running (pid {holder}) and did not finish "
                f"within {wait_s:.0f} s (setting crawl.busy_wait_seconds)"
            ) from None
    pid_file = lock_path.with_suffix(".pid")
    try:
        pid_file.write_text(str(os.getpid()), encoding="utf-8")
        yield
    finally:
        pid_file.unlink(missing_ok=True)
        lock.release()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _die_with_parent() -> None:
    """In the child, before exec: be killed when the flow's process dies.

    SIGKILL, not SIGTERM: a spider outliving its flow would go on writing a segment that
    the next run, finding its run unfinished, salvages. Every record is flushed, so the
    killed spider's ``.part`` keeps all its complete pages.
    """
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class SpiderProcess:
    """The running spider of one request."""

    def __init__(self, request: CrawlRequest) -> None:
        self.request = request
        self.run_dir = request.run_dir
        self.out_path = self.run_dir / "scrapy.stdout"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SpiderProcess:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.request.archive_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env[REQUEST_ENV] = str(self.request.write())
        env["SCRAPY_SETTINGS_MODULE"] = "crawler.settings"
        cmd = [sys.executable, "-m", "scrapy", "crawl", "baotintuc"]
        log.info("crawl %s: %s", self.request.run_id, " ".join(cmd))
        with self.out_path.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=self.run_dir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )
        ACTIVE.add(self)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace_s: float) -> None:
        """Ask Scrapy to stop (SIGINT: it closes the archive), kill it after ``grace_s``."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is not None:
                ACTIVE.discard(self)

    def progress(self) -> dict[str, Any]:
        return _read_json(self.run_dir / "progress.json")

    def stats(self) -> dict[str, Any]:
        """``stats.json``; raises :class:`CrawlFailed` if the spider did not finish."""
        assert self.proc is not None
        stats = _read_json(self.run_dir / "stats.json")
        if self.proc.returncode != 0 or not stats:
            tail = self.out_path.read_text(encoding="utf-8", errors="replace")
            lines = " | ".join(tail.strip().splitlines()[-5:])
            raise CrawlFailed(
                f"spider exited with code {self.proc.returncode}; see {self.out_path}: {lines}"
            )
        return stats


# Spiders running now, so that an interrupted CLI stops them before it exits.
ACTIVE: set[SpiderProcess] = set()


def stop_active_crawls(grace_s: float) -> None:
    for spider in list(ACTIVE):
        spider.stop(grace_s)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The complete JSON lines of a file (a torn last line of a killed writer is skipped)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                log.warning("skipping a torn line in %s", path)
                continue
            if isinstance(data, dict):
                yield data


def wait_for(condition: Any, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


__all__ = [
    "ACTIVE",
    "CrawlBusy",
    "CrawlFailed",
    "SpiderProcess",
    "crawl_lock",
    "read_jsonl",
    "stop_active_crawls",
]
