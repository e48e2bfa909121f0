"""Scrapy settings of the baotintuc crawl, taken from ``config.load_settings().crawl``.

Every value can be overridden per run with ``-s NAME=value`` (the flow passes
``-s DOWNLOAD_DELAY=0 -s AUTOTHROTTLE_ENABLED=False -s HTTPCACHE_DIR=...`` for the
local mirror); the defaults stay polite for the live site.
"""

from __future__ import annotations

from config import load_settings

_cfg = load_settings()
_crawl = _cfg.crawl

BOT_NAME = "baotintuc"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# Defaults of the spider arguments (spider args win over these).
BTT_BASE_URL = _crawl.base_url
BTT_CATEGORIES = list(_crawl.categories)
BTT_FEEDS = list(_crawl.feeds)
BTT_MAX_PAGES = _crawl.max_pages
BTT_DISCOVER_FEED_INDEX = _crawl.discover_feed_index

# Politeness: an honest User-Agent, robots.txt, one origin, a delay between requests.
USER_AGENT = _crawl.full_user_agent
ROBOTSTXT_OBEY = _crawl.obey_robots_txt
DOWNLOAD_DELAY = _crawl.download_delay
AUTOTHROTTLE_ENABLED = _crawl.autothrottle
AUTOTHROTTLE_START_DELAY = max(_crawl.download_delay, 1.0)
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = _crawl.autothrottle_target_concurrency
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = _crawl.concurrent_requests
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# Limits and failures.
DOWNLOAD_TIMEOUT = _crawl.download_timeout
DOWNLOAD_MAXSIZE = _crawl.max_page_bytes
DOWNLOAD_WARNSIZE = _crawl.max_page_bytes // 2
DOWNLOAD_FAIL_ON_DATALOSS = True  # a cut body fails (-> "truncated"), never gets archived
RETRY_ENABLED = True
RETRY_TIMES = _crawl.retry_times
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
RETRY_BACKOFF_BASE = _crawl.retry_backoff_base  # seconds, doubled at each retry
RETRY_BACKOFF_MAX = _crawl.retry_backoff_max  # also caps Retry-After
REDIRECT_MAX_TIMES = 10

DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.OffsiteGuardMiddleware": 40,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
    "crawler.middlewares.RedirectGuardMiddleware": 650,
    "crawler.middlewares.WireStatsMiddleware": 950,
}

# Conditional requests for feeds and listings (ETag / Last-Modified); article pages are
# never cached (they are archived). Feed and listing requests carry
# "Cache-Control: max-age=0" so every run revalidates instead of trusting a heuristic.
HTTPCACHE_ENABLED = True
HTTPCACHE_POLICY = "scrapy.extensions.httpcache.RFC2616Policy"
HTTPCACHE_STORAGE = "scrapy.extensions.httpcache.FilesystemCacheStorage"
HTTPCACHE_DIR = str(_cfg.paths.data_dir / "httpcache")
HTTPCACHE_GZIP = True
HTTPCACHE_IGNORE_HTTP_CODES = [400, 401, 403, 404, 408, 410, 429, 500, 502, 503, 504, 522, 524]

ITEM_PIPELINES = {
    "crawler.pipelines.RunOutputPipeline": 300,
}

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
