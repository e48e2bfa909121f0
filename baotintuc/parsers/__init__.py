"""Article page → :class:`Article`: the site's layout versions, then a generic fallback."""

from __future__ import annotations

from datetime import datetime

from baotintuc.model import Article, ImageRecord, ParseError
from baotintuc.parsers.generic import parse_generic
from baotintuc.parsers.layouts import VERSIONS, BaotintucParser
from baotintuc.parsers.page import Page, load_page
from baotintuc.urls import article_id, to_canonical

__all__ = ["ImageRecord", "ParseError", "Article", "parse_article", "pick_parser"]


def pick_parser(page: Page) -> type[BaotintucParser] | None:
    """The first layout version whose selectors find a title and a body on the page."""
    for version in VERSIONS:
        if version.matches(page):
            return version
    return None


def parse_article(html: bytes | str, url: str, fetched_at: datetime | None = None) -> Article:
    """Parse one article page fetched from ``url`` (canonical or mirror URL) at ``fetched_at``.

    Every field is cut to its bound (:meth:`Article.bounded`; cuts are in ``warnings``).

    Raises:
        ParseError: with a short ``reason`` (``not_article``, ``no_title``, ``empty_body`` …)
            when no parser can read the page; an empty row is never returned.
    """
    page = load_page(html, url)
    canonical = to_canonical(url, base=url)  # a mirror/stand-in origin maps to the site
    aid = article_id(canonical)
    if aid is None:
        raise ParseError("not_article", f"no article ID in {url}")
    tree = page.tree  # raises ParseError on empty or unparseable input
    page_url = page.canonical_url()
    if page_url and article_id(page_url) not in (None, aid):
        page.warnings.append("canonical_id_mismatch")
    body = tree.find("body")
    if body is None or not any(text.strip() for text in body.itertext()):
        raise ParseError("empty_page")
    version = pick_parser(page)
    if version is not None:
        article = version(page, aid, canonical).parse()
    else:
        article = parse_generic(page, aid, canonical)
    article.fetched_at = fetched_at
    return article.bounded()
