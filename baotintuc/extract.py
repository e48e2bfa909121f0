"""Article body → ``body_text`` and ``body_markdown`` with trafilatura, in one pass.

The site parser hands over the body containers (``div#divfirst`` + ``div#divend``); ads,
players and scripts are removed here and every figure becomes a placeholder paragraph so
that trafilatura (which drops captions) keeps the images' place for the Markdown.

trafilatura runs **once** per page: :func:`trafilatura.bare_extraction` on an lxml tree
(no serialising and re-parsing), with formatting kept, returns its internal XML body; both
outputs are rendered from that one tree with trafilatura's own renderer
(``trafilatura.xml.xmltotxt``): Markdown with formatting, text without, list items as
paragraphs (trafilatura's text output would otherwise prefix them with ``- ``,
indistinguishable from a dialogue dash). The fixtures prove this equal, block for block,
to the former two passes (text and Markdown) on every page.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import lxml.etree
import lxml.html
import trafilatura
from lxml.etree import XPath
from trafilatura.xml import xmltotxt

from baotintuc.model import ImageRecord
from baotintuc.text import clean_text

EXTRACTOR_VERSION = f"trafilatura-{trafilatura.__version__}"

# Clutter that sits inside the body containers on baotintuc.vn.
JUNK_XPATH = (
    ".//script | .//style | .//noscript | .//ins | .//iframe | .//zone | .//video"
    " | .//object | .//embed | .//form | .//button | .//template"
    " | .//*[contains(@class,'gliaplayer') or contains(@class,'widget')"
    " or contains(@class,'list-concern') or contains(@class,'keysword')"
    " or contains(@class,'author') or contains(@class,'likeshare')]"
)
_PLACEHOLDER = "IMGPLACEHOLDER{}X"
_PLACEHOLDER_RE = re.compile(r"IMGPLACEHOLDER(\d+)X")
_MD_ESCAPE_RE = re.compile(r"([\[\]])")


@dataclass(frozen=True, slots=True)
class Body:
    text: str
    markdown: str


def _container(
    parts: Iterable[lxml.html.HtmlElement], figure_xpath: str
) -> lxml.html.HtmlElement:
    """``<html><body><article>`` holding copies of the parts, junk removed, figures →
    placeholders."""
    root = lxml.html.Element("html")
    article = lxml.etree.SubElement(lxml.etree.SubElement(root, "body"), "article")
    n = 0
    for part in parts:
        part = copy.deepcopy(part)
        part.tail = None
        for fig in part.xpath(figure_xpath):
            ph = lxml.html.Element("p")
            ph.text = _PLACEHOLDER.format(n)
            ph.tail = fig.tail
            parent = fig.getparent()
            if parent is None:
                continue
            parent.replace(fig, ph)
            n += 1
        for junk in part.xpath(JUNK_XPATH):
            junk.drop_tree()
        article.append(part)
    return root


def extract_tree(
    tree: lxml.html.HtmlElement,
    *,
    url: str | None,
    prune_xpath: Sequence[str] = (),
    **options: Any,
) -> lxml.etree._Element | None:
    """trafilatura's XML body of ``tree`` (formatting kept), or None. ``tree`` is not changed
    (trafilatura copies an element input). ``options``: ``favor_precision`` etc."""
    doc = trafilatura.bare_extraction(
        tree,
        url=url,
        output_format="markdown",  # no text rendering inside bare_extraction: we render
        include_formatting=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        deduplicate=False,
        with_metadata=False,
        prune_xpath=list(prune_xpath) or None,
        **options,
    )
    return None if doc is None else doc.body  # type: ignore[union-attr]


def render(body: lxml.etree._Element | None, *, markdown: bool = True) -> tuple[str, str]:
    """``(text, markdown)`` of a trafilatura XML body: one tree, two renderings (the
    Markdown is "" with ``markdown=False``)."""
    if body is None:
        return "", ""
    md = xmltotxt(body, True) if markdown else ""
    items = list(body.iter("item"))
    for item in items:
        item.tag = "p"  # a list item is a paragraph in the text: no "- " marker
    text = xmltotxt(body, False)  # (plain rendering does not change the tree)
    for item in items:
        item.tag = "item"
    return text, md


def blocks(text: str) -> list[str]:
    """Non-empty, whitespace-collapsed lines of trafilatura's output."""
    return [b for b in (clean_text(line) for line in text.splitlines()) if b]


def drop_repeats(items: list[str], *, title: str | None, sapo: str | None) -> list[str]:
    """Drop the repeated title and the sapo trafilatura keeps at the start of a page."""
    skip = {clean_text(t).strip("#* ").lower() for t in (title, sapo) if t}
    return [b for b in items if b.strip("#* ").lower() not in skip]


def _image_md(img: ImageRecord) -> str:
    alt = _MD_ESCAPE_RE.sub(r"\\\1", img.caption)
    return f"![{alt}]({img.url})"


def extract_body(
    parts: Sequence[lxml.html.HtmlElement],
    images: Sequence[ImageRecord],
    *,
    figure_xpath: str = ".//figure",
    title: str | None = None,
    sapo: str | None = None,
    url: str | None = None,
) -> Body:
    """Body blocks of the given containers; ``images[i]`` is the i-th ``figure_xpath`` match."""
    root = _container(parts, figure_xpath)
    text, markdown = render(extract_tree(root, url=url, favor_recall=True, fast=True))
    text_blocks = [b for b in blocks(text) if not _PLACEHOLDER_RE.fullmatch(b)]
    by_pos = {img.position: img for img in images}
    seen: set[int] = set()
    md: list[str] = []
    for b in blocks(markdown):
        m = _PLACEHOLDER_RE.fullmatch(b.strip("*_ "))
        if m:
            idx = int(m.group(1))
            seen.add(idx)
            if idx in by_pos:
                md.append(_image_md(by_pos[idx]))
            continue
        md.append(_PLACEHOLDER_RE.sub("", b).strip())
    md.extend(_image_md(img) for img in images if img.position not in seen)
    text_blocks = drop_repeats(text_blocks, title=title, sapo=sapo)
    md = drop_repeats([b for b in md if b], title=title, sapo=sapo)
    return Body("\n\n".join(text_blocks), "\n\n".join(md))


# Recall escalation for the precision focus, with trafilatura's own constants for its
# balanced focus (trafilatura.core, 2.3): a precise extraction shorter than this …
ESCALATION_MAX_LENGTH = 3000
# … that covers less than this share of the page's text is retried for recall …
ESCALATION_PAGE_SHARE = 0.2
# … and the retry is kept when it is this much longer.
ESCALATION_ACCEPT_RATIO = 1.5
# Same-class blocks that together hold an article body split into chunks (ads, paywall
# markers or layout grids between them): a class naming a content area …
_BODYISH_CLASS_RE = re.compile(r"body|content|text|article|story|entry|post", re.IGNORECASE)
# … and at least this much paragraph text in each chunk.
MIN_CHUNK_PARAGRAPH_CHARS = 150


_PARAGRAPH_HOLDERS = XPath("//p/parent::*[self::div or self::section or self::article]")


def _paragraph_chars(el: lxml.html.HtmlElement) -> int:
    return sum(len("".join(p.itertext()).strip()) for p in el.iterchildren("p"))


def merge_split_bodies(tree: lxml.html.HtmlElement) -> int:
    """Join an article body split into several same-class blocks into the first one.

    trafilatura reads the *first* element that looks like an article body; pages that cut
    the body into chunks of the same class (``div.article__body`` × 4 between ad slots)
    lose everything after the first chunk. Blocks of one tag and one content-area class
    (see ``_BODYISH_CLASS_RE``), not nested in each other, each with at least
    ``MIN_CHUNK_PARAGRAPH_CHARS`` of paragraph text, are joined in document order (the
    blocks between them stay where they are). Changes ``tree``; returns how many blocks
    were joined into another.
    """
    # Candidates are the blocks that hold paragraphs themselves: a few dozen per page.
    groups: dict[tuple[str, str], list[lxml.html.HtmlElement]] = {}
    for el in _PARAGRAPH_HOLDERS(tree):
        cls = el.get("class")
        if cls and _BODYISH_CLASS_RE.search(cls):
            groups.setdefault((el.tag, cls), []).append(el)
    joined = 0
    for members in groups.values():
        if len(members) < 2:
            continue
        ids = {id(el) for el in members}
        chunks = [el for el in members
                  if not any(id(a) in ids for a in el.iterancestors())
                  and _paragraph_chars(el) >= MIN_CHUNK_PARAGRAPH_CHARS]
        for other in chunks[1:]:
            chunks[0].extend(list(other))
            parent = other.getparent()
            if parent is not None:
                other.drop_tree()
            joined += 1
    return joined


# Page regions left out of the page's text length, as trafilatura's html2txt leaves them
# out (scripts, styles and templates are already gone from a Page's tree).
_NOT_PAGE_TEXT = XPath(".//aside | .//footer | .//svg | .//div[contains(@class, 'footer')"
                       " or contains(@id, 'footer')]")


@functools.lru_cache(maxsize=8)
def _union(xpaths: tuple[str, ...]) -> XPath:
    """One compiled XPath for a list of expressions: one walk of the tree, not one each."""
    return XPath(" | ".join(f"({x})" for x in xpaths))


def _text_length(el: lxml.etree._Element) -> int:
    return len(" ".join(el.text_content().split()))


def page_text_length(tree: lxml.html.HtmlElement) -> int:
    """Characters of text on the page outside asides, footers and SVG: the measure of how
    much of the page an extraction covers (trafilatura's html2txt, without copying)."""
    body = tree.find("body")
    if body is None:
        body = tree
    regions = _NOT_PAGE_TEXT(body)
    ids = {id(el) for el in regions}
    outermost = [el for el in regions if not any(id(a) in ids for a in el.iterancestors())]
    return _text_length(body) - sum(_text_length(el) for el in outermost)


def _drop_sapo_heading(body: lxml.etree._Element, sapo: str | None) -> None:
    """Remove the heading that repeats the sapo (a lead printed as ``h2``, as this site
    does). A paragraph equal to the description stays: on most sites it is the article's
    first paragraph, and the body would lose it."""
    key = clean_text(sapo).lower()
    if not key:
        return
    for el in list(body):
        if el.tag == "head" and clean_text(" ".join(el.itertext())).lower() == key:
            body.remove(el)


def extract_page(tree: lxml.html.HtmlElement, *, url: str | None, title: str | None,
                 sapo: str | None, prune_xpath: Sequence[str] = (), join_split: bool = True,
                 escalate: bool = True, markdown: bool = True) -> Body:
    """Generic fallback: trafilatura on the whole page (no site knowledge but ``prune_xpath``).

    One precision-focused pass after :func:`merge_split_bodies`; when its result is short
    and covers little of the page (trafilatura escalates this way in its balanced focus,
    not in the precision one), a fast recall pass is tried and kept if clearly longer.
    The repeated title and a heading repeating the sapo are dropped. Changes ``tree``
    (read every other field first). ``join_split``/``escalate`` switch the two steps off
    (for ``bench.extraction --diagnose``); ``markdown=False`` leaves ``Body.markdown`` empty
    (for a caller that only needs the text).
    """
    if prune_xpath:
        for el in _union(tuple(prune_xpath))(tree):
            el.drop_tree()  # its tail text stays, as with trafilatura's prune_xpath
    if join_split:
        merge_split_bodies(tree)
    body = extract_tree(tree, url=url, favor_precision=True)
    text = render(body, markdown=False)[0]
    if (escalate and len(text) < ESCALATION_MAX_LENGTH
            and len(text) < ESCALATION_PAGE_SHARE * page_text_length(tree)):
        retry = extract_tree(tree, url=url, favor_recall=True, fast=True)
        if len(render(retry, markdown=False)[0]) > ESCALATION_ACCEPT_RATIO * len(text):
            body = retry
    if body is not None:
        _drop_sapo_heading(body, sapo)
    text, md = render(body, markdown=markdown)
    return Body(
        "\n\n".join(drop_repeats(blocks(text), title=title, sapo=None)),
        "\n\n".join(drop_repeats(blocks(md), title=title, sapo=None)),
    )
