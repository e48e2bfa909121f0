"""Sitemaps (sitemaps.org 0.9 and Google News): a guess, the live site's were never seen.

``/sitemap.xml`` is a sitemap index naming one sitemap per month of articles
(``/sitemaps/articles-YYYY-MM.xml``, split into ``-pN`` parts past 50,000 URLs) and the
news sitemap ``/sitemaps/news.xml`` (the articles of the last two days of the mirror's span,
at most 1,000, as Google News requires). Every ``<loc>`` is canonical
(``https://baotintuc.vn/...``), like the feeds' links.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from xml.sax.saxutils import escape

from baotintuc.site import CANONICAL_ORIGIN
from mirror.model import Article
from mirror.text import iso

INDEX_PATH = "/sitemap.xml"
NEWS_PATH = "/sitemaps/news.xml"
PATH_PREFIX = "/sitemaps/"
MAX_URLS = 50_000  # sitemaps.org limit per file
NEWS_WINDOW = timedelta(days=2)
NEWS_MAX = 1_000  # Google News limit per news sitemap
PUBLICATION = "Báo Tin tức"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(slots=True)
class Sitemaps:
    files: dict[str, str] = field(default_factory=dict)  # URL path -> XML
    urls_by_file: dict[str, int] = field(default_factory=dict)
    news_urls: int = 0

    def summary(self) -> dict[str, object]:
        return {
            "index": INDEX_PATH,
            "news": NEWS_PATH,
            "sitemaps": len(self.urls_by_file),
            "article_urls": sum(n for p, n in self.urls_by_file.items() if p != NEWS_PATH),
            "news_urls": self.news_urls,
            "urls_by_sitemap": dict(sorted(self.urls_by_file.items())),
        }


def is_sitemap_path(path: str) -> bool:
    return path == INDEX_PATH or path.startswith(PATH_PREFIX)


def robots_line() -> str:
    return f"Sitemap: {CANONICAL_ORIGIN}{INDEX_PATH}\n"


def _urlset(arts: list[Article]) -> str:
    rows = "".join(
        f"<url><loc>{escape(a.url)}</loc><lastmod>{iso(a.published_at)}</lastmod></url>\n"
        for a in arts
    )
    return f'{_HEAD}<urlset xmlns="{SITEMAP_NS}">\n{rows}</urlset>\n'


def _news(arts: list[Article]) -> str:
    rows = "".join(
        f"<url><loc>{escape(a.url)}</loc><news:news><news:publication>"
        f"<news:name>{escape(PUBLICATION)}</news:name><news:language>vi</news:language>"
        f"</news:publication><news:publication_date>{iso(a.published_at)}"
        f"</news:publication_date><news:title>{escape(a.title)}</news:title></news:news>"
        "</url>\n"
        for a in arts
    )
    return f'{_HEAD}<urlset xmlns="{SITEMAP_NS}" xmlns:news="{NEWS_NS}">\n{rows}</urlset>\n'


def build_sitemaps(arts: list[Article]) -> Sitemaps:
    """Every sitemap file of the mirror, from its articles (any order)."""
    out = Sitemaps()
    by_month: dict[str, list[Article]] = defaultdict(list)
    for a in arts:
        by_month[f"{a.published_at:%Y-%m}"].append(a)
    index: list[tuple[str, str]] = []  # (path, lastmod)
    for month in sorted(by_month, reverse=True):
        items = sorted(by_month[month], key=lambda a: (a.published_at, a.article_id),
                       reverse=True)
        parts = [items[i : i + MAX_URLS] for i in range(0, len(items), MAX_URLS)]
        for n, part in enumerate(parts, start=1):
            suffix = "" if len(parts) == 1 else f"-p{n}"
            path = f"{PATH_PREFIX}articles-{month}{suffix}.xml"
            out.files[path] = _urlset(part)
            out.urls_by_file[path] = len(part)
            index.append((path, iso(max(a.published_at for a in part))))
    if arts:
        last = max(a.published_at for a in arts)
        recent = sorted((a for a in arts if a.published_at > last - NEWS_WINDOW),
                        key=lambda a: (a.published_at, a.article_id), reverse=True)[:NEWS_MAX]
        out.files[NEWS_PATH] = _news(recent)
        out.urls_by_file[NEWS_PATH] = out.news_urls = len(recent)
        index.insert(0, (NEWS_PATH, iso(last)))
    rows = "".join(
        f"<sitemap><loc>{CANONICAL_ORIGIN}{p}</loc><lastmod>{lastmod}</lastmod></sitemap>\n"
        for p, lastmod in index
    )
    out.files[INDEX_PATH] = f'{_HEAD}<sitemapindex xmlns="{SITEMAP_NS}">\n{rows}</sitemapindex>\n'
    return out
