"""baotintuc.vn article parsers, one class per page layout (Fundus-style versions).

A version is chosen by what the page contains (:meth:`BaotintucParser.matches`), not by
date: the site serves old articles in whatever layout they were last rendered in. A new
layout means a new subclass that overrides only the selectors that changed.
"""

from __future__ import annotations

import copy
import re
from typing import ClassVar

import lxml.html
from lxml.etree import XPath

from baotintuc.extract import EXTRACTOR_VERSION, extract_body
from baotintuc.model import COLUMNS, Article, ImageRecord, ParseError
from baotintuc.parsers import common
from baotintuc.parsers.byline import parse_byline, parse_credit
from baotintuc.parsers.dates import resolve_dates
from baotintuc.parsers.page import Page, markup_text, text_of
from baotintuc.text import clean_text, word_count

_CLS = "contains(concat(' ', normalize-space(@class), ' '), ' {} ')"
_TITLE_MAX = COLUMNS["title"].max_chars or 1000


def cls(name: str) -> str:
    """XPath predicate for an element carrying CSS class ``name``."""
    return _CLS.format(name)


class BaotintucParser:
    """Shared field logic; subclasses set the selectors of their layout."""

    VERSION: ClassVar[str] = "base"
    LAYOUT: ClassVar[str] = "base"
    TITLE: ClassVar[XPath]
    SAPO: ClassVar[XPath]
    BODY_PARTS: ClassVar[XPath]
    AUTHOR: ClassVar[XPath]
    TAGS: ClassVar[XPath]
    RELATED: ClassVar[XPath]
    VISIBLE_DATE: ClassVar[XPath]
    CATE_LINK: ClassVar[XPath]
    TITLE_ICON: ClassVar[XPath] = XPath("./i/@class")
    FIGURE: ClassVar[str] = ".//figure | .//img[not(ancestor::figure)]"
    PLAYER: ClassVar[XPath] = XPath(".//iframe[contains(@src, 'Player.aspx')]/@src"
                                    " | .//video/@src | .//video/source/@src")
    # Title icons that the site's listings use for item types (icon_4 on /anh/ photo items,
    # icon_6 on /long-form/emagazine/ items).
    ICON_KINDS: ClassVar[dict[str, str]] = {"icon_4": "photo", "icon_6": "emagazine"}

    def __init__(self, page: Page, article_id: str, url: str) -> None:
        self.page = page
        self.tree = page.tree
        self.article_id = article_id
        self.url = url

    @classmethod
    def matches(cls, page: Page) -> bool:
        return bool(cls.TITLE(page.tree)) and bool(cls.BODY_PARTS(page.tree))

    @property
    def parser_version(self) -> str:
        return f"baotintuc-{self.LAYOUT}-{self.VERSION}"

    # -- fields ---------------------------------------------------------------------------
    def title(self) -> str:
        """The layout's headline; ``og:title`` when it is missing, blank (whitespace or
        invisible characters only) or longer than a title can be stored (broken markup
        made the heading swallow the page: warning ``title_from_metadata``); "" when
        there is no title at all."""
        nodes = self.TITLE(self.tree)
        text = text_of(nodes[0]) if nodes else ""
        if text and len(text) <= _TITLE_MAX:
            return text
        meta = self.page.meta_text("og:title")
        if text and meta:
            self.page.warnings.append("title_from_metadata")
        return meta or text

    def sapo(self) -> str | None:
        nodes = self.SAPO(self.tree)
        text = text_of(nodes[0]) if nodes else ""
        return text or self.page.meta_text("og:description", "description") or None

    def byline_line(self) -> str | None:
        nodes = self.AUTHOR(self.tree)
        if not nodes:
            return None
        line = text_of(nodes[0])  # "<strong>Bùi Giang</strong><i> (TTXVN)</i>"
        return re.sub(r"(\S)\(", r"\1 (", clean_text(line)) or None

    def tags(self) -> list[str]:
        found = [text_of(t).rstrip(",;").strip() for t in self.TAGS(self.tree)]
        if not any(found):
            found = [markup_text(t) for t in self.page.meta.get("article:tag", [])]
        return list(dict.fromkeys(t for t in found if t))  # distinct, in order, linear

    def related_article_ids(self) -> list[str]:
        ids = common.related_ids([str(h) for h in self.RELATED(self.tree)])
        return [i for i in ids if i != self.article_id]

    def body_parts(self) -> list[lxml.html.HtmlElement]:
        return list(self.BODY_PARTS(self.tree))

    def images(self, parts: list[lxml.html.HtmlElement]) -> list[ImageRecord]:
        """One record per figure, ``position`` = figure index (the body's placeholders);
        the URL may still be unusable (see :meth:`parse`)."""
        out: list[ImageRecord] = []
        for part in parts:
            for fig in part.xpath(self.FIGURE):
                img = fig if fig.tag == "img" else next(iter(fig.iter("img")), None)
                sources = [] if img is None else [img.get("data-src"), img.get("src")]
                cap_nodes = fig.xpath(".//figcaption")
                caption = text_of(cap_nodes[0]) if cap_nodes else ""
                out.append(ImageRecord(
                    position=len(out),
                    url=common.image_url(sources),
                    caption=caption,
                    credit=parse_credit(caption),
                ))
        return out

    def video_urls(self, parts: list[lxml.html.HtmlElement]) -> tuple[list[str], int]:
        """Distinct http(s) video URLs of the body, and how many others were dropped."""
        return common.web_urls(
            common.player_video_url(str(src)) for part in parts for src in self.PLAYER(part)
        )

    def visible_date(self) -> str | None:
        nodes = self.VISIBLE_DATE(self.tree)
        return text_of(nodes[0]) if nodes else None

    def category(self) -> tuple[str | None, int | None, int | None]:
        links = self.CATE_LINK(self.tree)
        href = links[0].get("href") if links else None
        crumb_name, crumb_href = common.breadcrumb_leaf(self.page)
        cat_id, parent_id = common.category_ids_from_href(href)
        if cat_id is None:
            cat_id, parent_id = common.category_ids_from_href(crumb_href)
        if cat_id is None:
            cat_id, parent_id = common.category_from_url(self.url)
        name = self.page.meta_text("article:section")
        if not name and links:
            name = markup_text(links[0].get("title")) or text_of(links[0])
        return name or markup_text(crumb_name) or None, cat_id, parent_id

    def kind(self, body_text: str, images: list[ImageRecord], videos: list[str]) -> str:
        by_url = common.kind_from_url(self.url)
        if by_url:
            return by_url
        if common.count_live_stamps(body_text) >= 2:
            return "live"
        titles = self.TITLE(self.tree)
        icons = " ".join(str(c) for c in self.TITLE_ICON(titles[0])) if titles else ""
        for icon, kind in self.ICON_KINDS.items():
            if icon in icons.split():
                return kind
        if len(images) >= 5 and word_count(body_text) < 40 * len(images):
            return "photo"
        return "article"

    # -- assembly -------------------------------------------------------------------------
    def parse(self) -> Article:
        title = self.title()
        if not title:
            raise ParseError("no_title", self.LAYOUT)
        sapo = self.sapo()
        parts = self.body_parts()
        figures = self.images(parts)
        # Only http(s) images are stored; a figure without one keeps no record (its caption
        # is not body text either). Positions are renumbered after the body is placed.
        images = [img for img in figures if common.is_web_url(img.url)]
        warnings: list[str] = []  # this parse's notes; the page's own come first at the end
        if dropped := sum(1 for img in figures if img.url) - len(images):
            warnings.append(f"dropped_image_urls:{dropped}")
        videos, dropped_videos = self.video_urls(parts)
        if dropped_videos:
            warnings.append(f"dropped_video_urls:{dropped_videos}")
        if common.off_site_base(self.page):
            warnings.append("off_site_base_href_ignored")
        body = extract_body(parts, images, figure_xpath=self.FIGURE, title=title, sapo=sapo,
                            url=self.url)
        for position, img in enumerate(images):
            img.position = position
        if not body.text and not images and not videos:
            raise ParseError("empty_body", self.LAYOUT)
        ld = self.page.ld_of_type("NewsArticle", "Article", "ReportageNewsArticle") or {}
        dates = resolve_dates(
            meta=self.page.meta_first("article:published_time"),
            jsonld=ld.get("datePublished"),
            visible=self.visible_date(),
            article_id=self.article_id,
            modified=ld.get("dateModified") or self.page.meta_first("article:modified_time"),
        )
        if dates is None:  # unreachable with a valid ID17, kept for type safety
            raise ParseError("no_date")
        warnings.extend(f"implausible_date:{name}" for name in dates.rejected)
        byline, authors, source = parse_byline(self.byline_line())
        category, category_id, parent_id = self.category()
        return Article(
            article_id=self.article_id, url=self.url, title=title, sapo=sapo,
            body_text=body.text, body_markdown=body.markdown,
            byline=byline, authors=authors, source=source,
            published_at=dates.published_at, modified_at=dates.modified_at,
            date_source=dates.source, date_disagreement=dates.disagreement,
            category=category, category_id=category_id, parent_category_id=parent_id,
            tags=self.tags(), related_article_ids=self.related_article_ids(),
            word_count=word_count(body.text), kind=self.kind(body.text, images, videos),
            video_urls=videos, images=images,
            parser_version=self.parser_version, extractor_version=EXTRACTOR_VERSION,
            warnings=[*self.page.warnings, *warnings],
        )


class V2023(BaotintucParser):
    """The ``div.detail-left`` layout (seen 2023-05 and 2025-07)."""

    VERSION = "1"
    LAYOUT = "V2023"
    TITLE = XPath(f"//h1[{cls('detail-title')}]")
    SAPO = XPath(f"//h2[{cls('sapo')}]")
    BODY_PARTS = XPath("//div[@id='divfirst'] | //div[@id='divend']")
    AUTHOR = XPath(f"//div[{cls('author')}]")
    TAGS = XPath(f"//div[{cls('keysword')}]//li/a")
    RELATED = XPath(f"//ul[{cls('list-concern')}]//li//a/@href")
    VISIBLE_DATE = XPath(f"//div[{cls('action-link')}]//div[{cls('date')}]/span[{cls('txt')}]")
    CATE_LINK = XPath(f"//h4[{cls('cate')}]/a[@href]")


class Legacy(BaotintucParser):
    """The older layout (about 2014–2019), known only from other scrapers' selectors."""

    VERSION = "1"
    LAYOUT = "Legacy"
    TITLE = XPath(f"//h1[{cls('title')}]")
    SAPO = XPath("//*[@id='plhMain_NewsDetail1_divSapoLive']")
    BODY_PARTS = XPath("//div[@id='plhMain_NewsDetail1_divContentLive']")
    AUTHOR = XPath(f"//*[{cls('author')} or {cls('tacgia')}]")
    TAGS = XPath(f"//*[{cls('keysword')} or {cls('tags')} or {cls('tag')}]//a")
    RELATED = XPath(f"//*[{cls('list-concern')} or {cls('relate')} or {cls('related')}]//a/@href")
    VISIBLE_DATE = XPath(f"//*[{cls('date')} or {cls('time')}]")
    CATE_LINK = XPath(f"//*[{cls('cate')} or {cls('breadcrumb')}]//a[contains(@href, 'ct')]")
    _BYLINE_P_RE = re.compile(r"^[^.!?]{2,80}(\([A-ZĐ]{2,10}\)|/[^/]{2,40})$")

    def byline_line(self) -> str | None:
        line = super().byline_line()
        if line:
            return line
        last = self._trailing_byline_p()
        return text_of(last) if last is not None else None

    def _trailing_byline_p(self) -> lxml.html.HtmlElement | None:
        """Old pages print the byline as the last, all-bold paragraph of the body."""
        parts = super().body_parts()
        paras = parts[0].xpath("./p") if parts else []
        if not paras:
            return None
        last = paras[-1]
        text = text_of(last)
        bold = "".join(text_of(b) for b in last.xpath(".//strong | .//b"))
        if text and bold == text and self._BYLINE_P_RE.match(text):
            return last
        return None

    def body_parts(self) -> list[lxml.html.HtmlElement]:
        parts = super().body_parts()
        byline_p = self._trailing_byline_p() if not self.AUTHOR(self.tree) else None
        if byline_p is None:
            return parts
        trimmed = copy.deepcopy(parts[0])
        trimmed.xpath("./p")[-1].drop_tree()
        return [trimmed, *parts[1:]]


VERSIONS: tuple[type[BaotintucParser], ...] = (V2023, Legacy)
