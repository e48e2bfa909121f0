"""Small stand-in sites for the hostile tests, served by :class:`mirror.server.MirrorServer`.

Article pages are rendered into the real 2025 page shell (:class:`mirror.shell.ArticleShell`),
listing pages into the real listing shell (:class:`mirror.listings.ListingShell`), from
articles the mirror's own generator plans (seeded, so every run builds the same site). A
test takes articles from :class:`StandIn`, bends them (a title of 2 MB, a date in 2099,
100,000 figures), writes them under any path, writes feeds and listings that link them
in hostile ways, and knows each article's ground truth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from baotintuc.site import CANONICAL_ORIGIN, CATEGORIES_BY_ID, Category
from mirror import sources
from mirror.build import synthetic_truth
from mirror.content import real_paragraphs, seed_paragraphs
from mirror.listings import ListingShell, category_header, page_path
from mirror.model import Article, Block, Figure
from mirror.shell import ArticleShell
from mirror.synth import plan_synthetic
from mirror.text import VN_TZ, id17, iso, slugify

PHAP_LUAT = CATEGORIES_BY_ID[475]  # top-level, /phap-luat-475ct0.htm
AN_NINH = CATEGORIES_BY_ID[579]  # its sub-category /an-ninh-trat-tu-579ct475.htm
THE_THAO = CATEGORIES_BY_ID[273]  # another top-level category


def canonical(path: str) -> str:
    return CANONICAL_ORIGIN + path


class StandIn:
    """A site directory and the articles planned for it."""

    def __init__(self, root: Path, articles: int = 60) -> None:
        self.root = root
        self.site = root / "site"
        self.site.mkdir(parents=True, exist_ok=True)
        pool = real_paragraphs(sources.article_pages()) + seed_paragraphs(sources.seed_text())
        self._pool = plan_synthetic(articles, pool, set())
        self._next = 0
        self.by_id: dict[str, Article] = {}
        self.shell = ArticleShell()
        self.listing_shell = ListingShell()
        (self.site / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")

    # -- articles -------------------------------------------------------------------------
    def take(self, category: Category | None = None, **changes: Any) -> Article:
        """The next planned article, moved to ``category`` and changed as given."""
        art = self._pool[self._next]
        self._next += 1
        cat = category or art.category
        fields: dict[str, Any] = {"category": cat}
        if "article_id" in changes and "path" not in changes:
            fields["path"] = f"/{cat.slug}/{art.slug}-{changes['article_id']}.htm"
        elif category is not None:
            fields["path"] = f"/{cat.slug}/{art.slug}-{art.article_id}.htm"
        fields.update(changes)
        art = dataclasses.replace(art, **fields)
        art.related = []
        self.by_id[art.article_id] = art
        return art

    def fresh(self, created: datetime, category: Category | None = None,
              **changes: Any) -> Article:
        """An article created at ``created`` (its ID17) and published a minute later."""
        aid = id17(created.astimezone(VN_TZ))
        return self.take(category, article_id=aid,
                         published_at=created.astimezone(VN_TZ).replace(microsecond=0),
                         **changes)

    def render(self, art: Article) -> str:
        return self.shell.render(art, self.by_id.get)

    def publish(self, art: Article, path: str | None = None, html: str | None = None) -> str:
        """Write the article's page at ``path`` (default: its own); returns the path."""
        path = path or art.path
        self.write(path, self.render(art) if html is None else html)
        return path

    @staticmethod
    def truth(art: Article) -> dict[str, Any]:
        return synthetic_truth(art)

    # -- pages ----------------------------------------------------------------------------
    def write(self, path: str, data: str | bytes) -> Path:
        file = self.site / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return file

    def feed(self, slug: str, links: Iterable[str], *, raw_items: Iterable[str] = ()) -> str:
        """``/<slug>.rss`` with one item per link (written as given, so a test may put
        entity references in it) and extra raw ``<item>`` XML; returns its path."""
        items = [
            f"<item>\n<title>{escape(slug)} {i}</title>\n<link>{link}</link>\n"
            f"<pubDate>Sat, 12 Jul 2025 21:11:00 +0700</pubDate>\n</item>\n"
            for i, link in enumerate(links)
        ]
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">\n<channel>\n'
            f"<title>{escape(slug)} - baotintuc.vn</title>\n<link>{CANONICAL_ORIGIN}/</link>\n"
            "<description>Báo Tin tức</description>\n<language>vi</language>\n"
            + "".join(items) + "".join(raw_items) + "</channel>\n</rss>\n"
        )
        path = f"/{slug}.rss"
        self.write(path, xml)
        return path

    def listing(self, cat: Category, page: int, items: list[Article],
                *, top: list[Article] | None = None, next_href: str | None = None,
                hrefs: dict[str, str] | None = None) -> str:
        """Page ``page`` of ``cat``'s listing in the real shell: ``items`` in the main list,
        ``top`` in the top block, a ``Tiếp`` link to ``next_href`` (none: last page).
        ``hrefs`` replaces an article's path in the links (``{path: href}``)."""
        html = self.listing_shell.render(category_header(cat), items, top or [], page,
                                         page + (1 if next_href else 0),
                                         page_path(cat.listing_path, page))
        start = html.index('<ul class="list-pagination">') + len('<ul class="list-pagination">')
        end = html.index("</ul>", start)
        pager = (f'\n<li class="pagination-item"><a class="active" href="javascript:void(0)">'
                 f"{page}</a></li>")
        if next_href:
            pager += f'\n<li class="pagination-item"><a href="{next_href}">Tiếp</a></li>'
        html = html[:start] + pager + "\n" + html[end:]
        for old, new in (hrefs or {}).items():
            html = html.replace(f'href="{old}"', f'href="{new}"')
        path = page_path(cat.listing_path, page)
        self.write(path, html)
        return path


def meta_refresh(target: str) -> str:
    """A page that only sends the browser elsewhere."""
    return (
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0; url={target}">'
        "<title>Đang chuyển trang</title></head><body></body></html>"
    )


def many_figures(art: Article, n: int) -> Article:
    """The article with ``n`` extra figures after its text."""
    figs = [
        Block("figure", figure=Figure(
            f"https://cdnmedia.baotintuc.vn/Upload/hostile/files/2025/07/f{i}.jpg", "", None))
        for i in range(n)
    ]
    return dataclasses.replace(art, blocks=[*art.blocks, *figs])


__all__ = ["AN_NINH", "PHAP_LUAT", "THE_THAO", "StandIn", "canonical", "iso", "many_figures",
           "meta_refresh", "slugify"]
