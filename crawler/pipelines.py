"""The run's outputs: the WARC of article pages and the JSON files of ``run_dir``.

``RawArticle`` -> WARC record; ``DiscoveredArticle`` -> ``discovered.jsonl``;
``FetchFailure`` -> ``failures.jsonl``; at spider close -> ``stats.json`` (the keys of
docs/architecture.md). Paths come from the spider (``run_dir``, ``warc_path``).
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

from crawler.archive import WarcWriter
from crawler.items import DiscoveredArticle, FetchFailure, RawArticle

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

STATS_KEYS = (
    "requests",
    "responses",
    "bytes",
    "discovered",
    "fetched",
    "skipped_known",
    "failed",
    "retries",
    "not_modified",
    "finish_reason",
    "started_at",
    "finished_at",
)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class RunOutputPipeline:
    """Write every item of the crawl to its file; write ``stats.json`` when it ends."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.warc: WarcWriter | None = None
        self.discovered: IO[str] | None = None
        self.failures: IO[str] | None = None
        self.run_dir: Path | None = None
        self.started_at = datetime.now(UTC)
        self.seen_ids: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        pipeline = cls(crawler)
        # A bound method of a live object: Scrapy's weak reference keeps working.
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    def open_spider(self) -> None:
        spider = self.crawler.spider
        assert spider is not None
        self.started_at = datetime.now(UTC)
        self.run_dir = Path(spider.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.discovered = open(self.run_dir / "discovered.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.failures = open(self.run_dir / "failures.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.warc = WarcWriter(
            spider.warc_path,
            info={
                "software": f"baotintuc-pipeline crawler (Scrapy {_scrapy_version()})",
                "http-header-user-agent": str(self.crawler.settings.get("USER_AGENT")),
                "robots": "obey" if self.crawler.settings.getbool("ROBOTSTXT_OBEY") else "ignore",
                "x-base-url": str(spider.base_url),
                "x-run-dir": str(self.run_dir),
            },
        )

    def process_item(self, item: Any) -> Any:
        stats = self.crawler.stats
        assert stats is not None
        if isinstance(item, RawArticle):
            if item.article_id in self.seen_ids:
                raise DropItem(f"Article already archived: {item.article_id}")
            self.seen_ids.add(item.article_id)
            assert self.warc is not None
            self.warc.write_page(item.to_raw_page())
            stats.inc_value("btt/fetched")
        elif isinstance(item, DiscoveredArticle):
            self._write_line(self.discovered, item.to_json())
            stats.inc_value("btt/discovered")
        elif isinstance(item, FetchFailure):
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
        for fh in (self.discovered, self.failures):
            if fh is not None:
                fh.close()
        if self.warc is not None:
            path = self.warc.close()
            logger.info("Archived %d article pages in %s", self.warc.records, path)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.run_dir is None:
            return
        stats = self.crawler.stats
        assert stats is not None

        def count(key: str) -> int:
            return int(stats.get_value(key, 0) or 0)

        data: dict[str, Any] = {
            "requests": count("btt/requests"),
            "responses": count("btt/responses"),
            "bytes": count("btt/bytes"),
            "discovered": count("btt/discovered"),
            "fetched": count("btt/fetched"),
            "skipped_known": count("btt/skipped_known"),
            "failed": count("btt/failed"),
            "retries": count("retry/count"),
            "not_modified": count("btt/not_modified"),
            "finish_reason": reason,
            "started_at": self.started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
        }
        write_json_atomic(self.run_dir / "stats.json", data)
        logger.info("Run stats: %s", json.dumps(data))


def _scrapy_version() -> str:
    import scrapy

    return scrapy.__version__


__all__ = ["RunOutputPipeline", "STATS_KEYS", "write_json_atomic"]
