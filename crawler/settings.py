"""Scrapy settings of the baotintuc crawl.

The fixed settings are below. The per-run ones (User-Agent, delays, concurrency, retries,
limits, cache and log paths) come from the run's :class:`crawler.request.CrawlRequest`,
named by the environment variable ``BTT_CRAWL_REQUEST`` (the ingest flow sets it). Run
by hand, ``scrapy crawl baotintuc`` resolves a request from ``config/settings.toml``
instead (mode ``all``, a run directory under ``paths.runs_dir``).
"""

from __future__ import annotations

from crawler.request import current_request

BOT_NAME = "baotintuc"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
CONCURRENT_REQUESTS = 16
AUTOTHROTTLE_MAX_DELAY = 60.0

# Limits and failures.
DOWNLOAD_FAIL_ON_DATALOSS = True  # a cut body fails (-> "truncated"), never gets archived
RETRY_ENABLED = True
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
REDIRECT_MAX_TIMES = 10

DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.OffsiteGuardMiddleware": 40,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
    "crawler.middlewares.RedirectGuardMiddleware": 650,
    "crawler.middlewares.WireStatsMiddleware": 950,
}

# Conditional requests for feeds, listings and sitemaps (ETag / Last-Modified); article
# pages are never cached (they are archived). Those requests carry
# "Cache-Control: max-age=0" so every run revalidates instead of trusting a heuristic.
HTTPCACHE_ENABLED = True
HTTPCACHE_POLICY = "scrapy.extensions.httpcache.RFC2616Policy"
HTTPCACHE_STORAGE = "scrapy.extensions.httpcache.FilesystemCacheStorage"
HTTPCACHE_GZIP = True
HTTPCACHE_IGNORE_HTTP_CODES = [400, 401, 403, 404, 408, 410, 429, 500, 502, 503, 504, 522, 524]

ITEM_PIPELINES = {"crawler.pipelines.RunOutputPipeline": 300}
EXTENSIONS = {"crawler.pipelines.ProgressExtension": 500}

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"

# The run's own settings, from its request (one file, resolved once by the flow).
globals().update(current_request().scrapy_settings())
