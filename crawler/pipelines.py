"""The run's outputs: WARC segments of article pages and the files of ``run_dir``.

``RawArticle`` -> the current WARC segment (closed after ``segment_pages`` pages or
``segment_seconds``, then loaded by the flow while the crawl goes on); ``Discovery`` ->
``discovered.jsonl``; ``Failure`` -> ``failures.jsonl``; every few seconds and at the end
-> ``progress.json``; at spider close -> ``stats.json`` (the keys of docs/architecture.md).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DropItem
from twisted.internet import task

from baotintuc.model import Failure
from crawler.archive import SegmentWriter
from crawler.compact import IdSet
from crawler.items import Discovery, RawArticle
from crawler.memory import release_free_memory
from crawler.request import current_request

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

TICK_S = 0.5
PROGRESS_EVERY_TICKS = 4  # progress.json every 2 s


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _count(crawler: Crawler, key: str) -> int:
    assert crawler.stats is not None
    return int(crawler.stats.get_value(key, 0) or 0)


def run_counts(crawler: Crawler) -> dict[str, int]:
    """The counters of ``progress.json`` and ``stats.json``."""
    keys = ("requests", "responses", "bytes", "discovered", "fetched", "skipped_known",
            "skipped_old", "deferred", "failed", "not_modified", "pages_ok", "pages_failed",
            "article_requests", "queued_articles_max", "discovery_pages_held")
    out = {k: _count(crawler, f"btt/{k}") for k in keys}
    out["retries"] = _count(crawler, "retry/count")
    return out


class RunOutputPipeline:
    """Write every item of the crawl to its file; write ``stats.json`` when it ends."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.request = current_request()
        self.run_dir = self.request.run_dir
        self.archive: SegmentWriter | None = None
        self.discovered: IO[str] | None = None
        self.failures: IO[str] | None = None
        self.started_at = datetime.now(UTC)
        self.archived = IdSet()  # IDs archived this run (a backfill: every article's)
        self._rotator: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        pipeline = cls(crawler)
        # A bound method of a live object: Scrapy's weak reference keeps working.
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    def open_spider(self) -> None:
        req = self.request
        self.started_at = datetime.now(UTC)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.discovered = open(self.run_dir / "discovered.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.failures = open(self.run_dir / "failures.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.archive = SegmentWriter(
            req.archive_dir,
            req.archive_prefix,
            max_records=req.segment_pages,
            max_seconds=req.segment_seconds,
            level=req.gzip_level,
            info={
                "software": f"baotintuc-pipeline crawler (Scrapy {_scrapy_version()})",
                "http-header-user-agent": str(self.crawler.settings.get("USER_AGENT")),
                "robots": "obey" if self.crawler.settings.getbool("ROBOTSTXT_OBEY") else "ignore",
                "x-base-url": req.base_url,
                "x-run-id": req.run_id,
            },
        )
        # Pages fetched slowly (the live site: one a second) still reach the warehouse.
        self._rotator = task.LoopingCall(self.archive.rotate_if_idle)
        self._rotator.start(min(5.0, req.segment_seconds), now=False)

    def process_item(self, item: Any) -> Any:
        stats = self.crawler.stats
        assert stats is not None
        if isinstance(item, RawArticle):
            if item.article_id in self.archived:
                raise DropItem(f"Article already archived: {item.article_id}")
            self.archived.add(item.article_id)
            assert self.archive is not None
            self.archive.write_page(item.to_raw_page())
            stats.inc_value("btt/fetched")
        elif isinstance(item, Discovery):
            self._write_line(self.discovered, item.to_json())
            if item.outcome not in ("alias", "print_only"):
                stats.inc_value("btt/discovered")
            key = {"known": "skipped_known", "old": "skipped_old",
                   "deferred": "deferred"}.get(item.outcome)
            if key:
                stats.inc_value(f"btt/{key}")
        elif isinstance(item, Failure):
            self._write_line(self.failures, item.to_json())
            stats.inc_value("btt/failed")
            stats.inc_value(f"btt/failed/{item.stage}/{item.reason}")
        return item

    @staticmethod
    def _write_line(fh: IO[str] | None, data: dict[str, Any]) -> None:
        assert fh is not None
        fh.write(json.dumps(data, ensure_ascii=False) + "\n")
        fh.flush()

    def close_spider(self) -> None:
        if self._rotator is not None and self._rotator.running:
            self._rotator.stop()
        for fh in (self.discovered, self.failures):
            if fh is not None:
                fh.close()
        if self.archive is not None:
            closed = self.archive.close()
            logger.info("Archived %d article pages in %d segments", self.archive.records,
                        len(closed))

    def spider_closed(self, spider: Spider, reason: str) -> None:
        data: dict[str, Any] = {
            **run_counts(self.crawler),
            "segments": self.archive.number if self.archive else 0,
            "finish_reason": reason,
            "started_at": self.started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
        }
        write_json_atomic(self.run_dir / "stats.json", data)
        logger.info("Run stats: %s", json.dumps(data))


class ProgressExtension:
    """Twice a second: give the memory freed by parsing back to the system
    (:mod:`crawler.memory`); every few seconds: ``progress.json``, what the flow's progress
    bar shows."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.path = current_request().run_dir / "progress.json"
        self._loop = task.LoopingCall(self.tick)
        self._ticks = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop.start(TICK_S, now=True)

    def tick(self) -> None:
        release_free_memory()
        if self._ticks % PROGRESS_EVERY_TICKS == 0:
            self.write()
        self._ticks += 1

    def write(self) -> None:
        engine = self.crawler.engine
        scheduler = engine.scheduler if engine is not None else None
        queued = len(scheduler) if scheduler is not None and hasattr(scheduler, "__len__") else 0
        write_json_atomic(self.path, {**run_counts(self.crawler), "queued": queued,
                                      "at": datetime.now(UTC).isoformat()})

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._loop.running:
            self._loop.stop()
        self.write()


def _scrapy_version() -> str:
    import scrapy

    return scrapy.__version__


__all__ = ["ProgressExtension", "RunOutputPipeline", "run_counts", "write_json_atomic"]
