"""Fallback for pages of no known layout: JSON-LD, meta tags, trafilatura metadata + body."""

from __future__ import annotations

from typing import Any

from trafilatura.metadata import extract_title

from baotintuc.extract import EXTRACTOR_VERSION, extract_page
from baotintuc.model import Article, ImageRecord, ParseError
from baotintuc.parsers import common
from baotintuc.parsers.byline import parse_byline
from baotintuc.parsers.dates import resolve_dates
from baotintuc.parsers.page import Page, load_page, markup_text, text_of
from baotintuc.text import word_count

VERSION = "generic-2"  # 2: split bodies joined, recall escalation, sapo heading only
ARTICLE_TYPES = ("NewsArticle", "Article", "ReportageNewsArticle", "BlogPosting")
# baotintuc.vn clutter to prune when trafilatura reads the whole page. Classes are matched
# exactly: ``contains(@class,'widget')`` also hits other sites' article containers
# (Elementor's ``elementor-widget-container``) and emptied 4 of the 181 benchmark pages.
PRUNE_XPATH = (
    "//ul[@class='list-concern']", "//div[@class='keysword']",
    "//div[@class='author']", "//div[@class='widget']",
    "//figure", "//figcaption", "//ins", "//iframe",
)


def _ld_name(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("name")
    if isinstance(value, list) and value:
        return _ld_name(value[0])
    return value if isinstance(value, str) else None


def is_article_page(page: Page) -> bool:
    og_type = (page.meta_first("og:type") or "").lower()
    return og_type == "article" or page.ld_of_type(*ARTICLE_TYPES) is not None


def _title_and_sapo(page: Page, url: str, ld: dict[str, Any]) -> tuple[str, str]:
    headline = ld.get("headline")
    title_src = page.meta_first("og:title") or (headline if isinstance(headline, str) else None)
    if not title_src:  # trafilatura's title heuristics (h1, title tag …) when no metadata
        title_src = extract_title(page.tree)
    desc = ld.get("description")
    sapo_src = page.meta_first("og:description", "description") or (
        desc if isinstance(desc, str) else None
    )
    return markup_text(title_src), markup_text(sapo_src)


def generic_body(html: str | bytes, url: str, **steps: bool) -> str:
    """The body text the generic path gives any page, article checks aside (benchmarks;
    the Markdown rendering, which ``parse_generic`` also pays for, is skipped).
    ``steps``: ``join_split``/``escalate`` of :func:`extract_page`, to switch one off."""
    page = load_page(html, url)
    title, sapo = _title_and_sapo(page, url, page.ld_of_type(*ARTICLE_TYPES) or {})
    return extract_page(page.tree, url=url, title=title, sapo=sapo, prune_xpath=PRUNE_XPATH,
                        markdown=False, **steps).text


def parse_generic(page: Page, article_id: str, url: str) -> Article:
    """Read any article page from its machine metadata and trafilatura's body."""
    if not is_article_page(page):
        raise ParseError("not_article", "no known layout, no og:type=article or NewsArticle")
    ld = page.ld_of_type(*ARTICLE_TYPES) or {}
    title, sapo = _title_and_sapo(page, url, ld)
    if not title:
        raise ParseError("no_title", "generic")
    dates = resolve_dates(
        meta=page.meta_first("article:published_time"), jsonld=ld.get("datePublished"),
        visible=None, article_id=article_id,
        modified=ld.get("dateModified") or page.meta_first("article:modified_time"),
    )
    if dates is None:
        raise ParseError("no_date", "generic")
    notes = [f"implausible_date:{name}" for name in dates.rejected]
    # JSON-LD/trafilatura authors glue name and agency ("Bùi GiangTTXVN"); meta author is
    # the site name. Only a printed ``.author`` element is trusted.
    printed = page.tree.xpath("//*[contains(concat(' ', @class, ' '), ' author ')]")
    line = text_of(printed[0]) if printed else None
    byline, authors, source = parse_byline(line if line and len(line) <= 120 else None)
    videos, dropped_videos = common.web_urls(
        common.player_video_url(str(src))
        for src in page.tree.xpath("//iframe[contains(@src, 'Player.aspx')]/@src"
                                   " | //video/@src | //video/source/@src")
    )
    if dropped_videos:
        notes.append(f"dropped_video_urls:{dropped_videos}")
    section = page.meta_text("article:section")
    crumb_name, crumb_href = common.breadcrumb_leaf(page)
    cat_id, parent_id = common.category_ids_from_href(crumb_href)
    if cat_id is None:
        cat_id, parent_id = common.category_from_url(url)
    image = common.full_size_image(page.meta_first("og:image") or "")
    images = [ImageRecord(0, image, "", None)] if common.is_web_url(image) else []
    if image and not images:
        notes.append("dropped_image_urls:1")
    if common.off_site_base(page):
        notes.append("off_site_base_href_ignored")
    tags = list(dict.fromkeys(t for t in map(markup_text, page.meta.get("article:tag", [])) if t))
    # Last: extract_page changes the tree (joins split bodies).
    body = extract_page(page.tree, url=url, title=title, sapo=sapo, prune_xpath=PRUNE_XPATH)
    if not body.text:
        raise ParseError("empty_body", "generic")
    return Article(
        article_id=article_id, url=url, title=title, sapo=sapo or None,
        body_text=body.text, body_markdown=body.markdown,
        byline=byline, authors=authors, source=source,
        published_at=dates.published_at, modified_at=dates.modified_at,
        date_source=dates.source, date_disagreement=dates.disagreement,
        category=section or markup_text(crumb_name) or None, category_id=cat_id,
        parent_category_id=parent_id, tags=tags, related_article_ids=[],
        word_count=word_count(body.text), kind=common.kind_from_url(url) or "article",
        video_urls=videos, images=images,
        parser_version=VERSION, extractor_version=EXTRACTOR_VERSION,
        warnings=[*page.warnings, "generic_parser", *notes],
    )
