"""The crawl request: one typed, validated value that tells the spider everything.

It is resolved once (:meth:`CrawlRequest.resolve`: the settings tree, then the run's own
overrides), validated once (pydantic), written to ``<run_dir>/request.json`` and handed
to the spider process as that one file. The spider reads no settings of its own; the
Scrapy settings of the run are derived from the request (:meth:`scrapy_settings`).
"""

from __future__ import annotations

import functools
import ipaddress
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from baotintuc.site import TOP_LEVEL, category_by_key
from config import ConfigError, Politeness, Settings, load_settings, normalize_origin

REQUEST_ENV = "BTT_CRAWL_REQUEST"  # names the request file of the spider's process

Mode = Literal["all", "rss", "listings", "backfill"]
MODES: tuple[str, ...] = Mode.__args__  # type: ignore[attr-defined]


def is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CrawlRequest(BaseModel):
    """Everything one crawl needs; see :meth:`resolve` for where each value comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str = Field(min_length=1)
    mode: Mode = "all"
    base_url: str = "https://baotintuc.vn"
    since: date | None = None
    max_pages: int | None = Field(1, ge=1)  # listing pages per category; None = no bound
    categories: tuple[str, ...] = ()  # category keys ``<slug>-<id>ct<parent>``
    feeds: tuple[str, ...] = ()
    discover_feed_index: bool = True
    sitemaps: bool = False
    max_articles: int | None = Field(None, ge=1)  # article fetches per run; None = no cap
    queued_articles: int = Field(2000, ge=1)  # then discovery pages wait (memory bound)
    politeness: Politeness
    fast_loopback: bool = False  # drop delays: the origin is our own mirror on 127.0.0.1
    run_dir: Path
    archive_dir: Path
    archive_prefix: str = Field(min_length=1)
    segment_pages: int = Field(200, ge=1)
    segment_seconds: float = Field(30.0, gt=0)
    gzip_level: int = Field(2, ge=0, le=3)
    skip_ids_file: Path | None = None  # ID17s not to fetch (stored, not due)
    recheck_file: Path | None = None  # canonical URLs of stored articles due for a re-check
    frontier_file: Path | None = None  # backfill: how deep each listing was read
    httpcache_dir: Path

    @field_validator("base_url")
    @classmethod
    def _origin(cls, v: str) -> str:
        return normalize_origin(v)

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        keys: list[str] = []
        for key in v:
            cat = category_by_key(key)
            if cat is None:
                raise ValueError(f"unknown category {key!r}")
            if cat.key not in keys:
                keys.append(cat.key)
        return tuple(keys)

    @field_validator("feeds")
    @classmethod
    def _feeds(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.strip().removesuffix(".rss").strip("/") for f in v if f))

    @classmethod
    def resolve(
        cls,
        settings: Settings,
        *,
        run_id: str,
        mode: str = "all",
        base_url: str | None = None,
        since: date | None = None,
        max_pages: int | None = None,
        categories: list[str] | tuple[str, ...] | None = None,
        max_articles: int | None = None,
        run_dir: Path,
        archive_dir: Path,
        skip_ids_file: Path | None = None,
        recheck_file: Path | None = None,
        frontier_file: Path | None = None,
    ) -> CrawlRequest:
        """The run's request: each value is the override when given, else the setting.

        Raises:
            ConfigError: a value is invalid; the message names it.
        """
        c = settings.crawl
        base = base_url or c.base_url
        backfill = mode == "backfill"
        cap = c.max_articles_per_run if max_articles is None else max_articles
        try:
            req = cls(
                run_id=run_id,
                mode=mode,  # type: ignore[arg-type]
                base_url=base,
                since=since,
                max_pages=max_pages if max_pages is not None else (None if backfill
                                                                   else c.max_pages),
                categories=tuple(categories if categories is not None else c.categories)
                or tuple(cat.key for cat in TOP_LEVEL),
                feeds=tuple(c.feeds),
                discover_feed_index=c.discover_feed_index,
                sitemaps=c.sitemaps and backfill,
                max_articles=cap or None,
                queued_articles=c.queued_articles,
                politeness=c.politeness(),
                run_dir=run_dir,
                archive_dir=archive_dir,
                archive_prefix=run_id,
                segment_pages=settings.archive.segment_pages,
                segment_seconds=settings.archive.segment_seconds,
                gzip_level=settings.archive.gzip_level,
                skip_ids_file=skip_ids_file,
                recheck_file=recheck_file,
                frontier_file=frontier_file if backfill else None,
                httpcache_dir=settings.paths.data_dir / "httpcache",
            )
        except ValidationError as err:
            raise ConfigError(
                describe(err), settings=[".".join(str(p) for p in e["loc"]) for e in err.errors()]
            ) from None
        fast = is_loopback(req.base_url) and not c.loopback_polite
        return req.model_copy(update={"fast_loopback": fast})

    # -- files ---------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.run_dir / "request.json"

    def write(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return self.path

    @classmethod
    def read(cls, path: Path) -> CrawlRequest:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    # -- Scrapy --------------------------------------------------------------------
    def scrapy_settings(self) -> dict[str, Any]:
        """The per-run Scrapy settings (the fixed ones are in ``crawler.settings``)."""
        p = self.politeness
        out: dict[str, Any] = {
            "USER_AGENT": p.user_agent,
            "ROBOTSTXT_OBEY": p.obey_robots_txt,
            "DOWNLOAD_DELAY": p.download_delay,
            "AUTOTHROTTLE_ENABLED": p.autothrottle,
            "AUTOTHROTTLE_START_DELAY": max(p.download_delay, 1.0),
            "AUTOTHROTTLE_TARGET_CONCURRENCY": p.autothrottle_target_concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": p.concurrent_requests,
            "DOWNLOAD_TIMEOUT": p.download_timeout,
            "DOWNLOAD_MAXSIZE": p.max_page_bytes,
            "DOWNLOAD_WARNSIZE": p.max_page_bytes // 2,
            "RETRY_TIMES": p.retry_times,
            "RETRY_BACKOFF_BASE": p.retry_backoff_base,
            "RETRY_BACKOFF_MAX": p.retry_backoff_max,
            "HTTPCACHE_DIR": str(self.httpcache_dir),
            "LOG_FILE": str(self.run_dir / "scrapy.log"),
        }
        if self.fast_loopback:
            # The offline mirror on 127.0.0.1: no need to be gentle with ourselves.
            out |= {
                "DOWNLOAD_DELAY": 0,
                "AUTOTHROTTLE_ENABLED": False,
                "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
                "CONCURRENT_REQUESTS": 8,
            }
        return out


@functools.cache
def current_request() -> CrawlRequest:
    """The request of this spider process: the file named by ``BTT_CRAWL_REQUEST``.

    Without it (``scrapy crawl baotintuc`` by hand), a request is resolved from the
    settings (mode ``all``), written to its run directory and named in the environment,
    so that Scrapy's settings and the spider read the same one.
    """
    path = os.environ.get(REQUEST_ENV)
    if path:
        return CrawlRequest.read(Path(path))
    settings = load_settings()
    now = datetime.now(UTC)
    run_id = "manual-" + now.strftime("%Y%m%dT%H%M%S")
    req = CrawlRequest.resolve(
        settings,
        run_id=run_id,
        run_dir=settings.paths.runs_dir / run_id,
        archive_dir=settings.paths.raw_dir / now.strftime("%Y-%m-%d"),
    )
    os.environ[REQUEST_ENV] = str(req.write())
    return req


def describe(err: ValidationError) -> str:
    """One line naming each invalid value of a request."""
    parts = []
    for e in err.errors():
        name = ".".join(str(p) for p in e["loc"]) or "request"
        parts.append(f"{name}: {e['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


__all__ = ["MODES", "REQUEST_ENV", "CrawlRequest", "Politeness", "current_request",
           "is_loopback"]
