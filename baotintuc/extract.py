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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import lxml.etree
import lxml.html
import trafilatura
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


def render(body: lxml.etree._Element | None) -> tuple[str, str]:
    """``(text, markdown)`` of a trafilatura XML body: one tree, two renderings."""
    if body is None:
        return "", ""
    markdown = xmltotxt(body, True)
    flat = copy.deepcopy(body)
    for item in flat.iter("item"):
        item.tag = "p"  # a list item is a paragraph in the text: no "- " marker
    return xmltotxt(flat, False), markdown


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


def extract_page(tree: lxml.html.HtmlElement, *, url: str | None, title: str | None,
                 sapo: str | None, prune_xpath: Sequence[str] = ()) -> Body:
    """Generic fallback: trafilatura on the whole page (no site knowledge but ``prune_xpath``)."""
    text, markdown = render(extract_tree(tree, url=url, prune_xpath=prune_xpath,
                                         favor_precision=True))
    return Body(
        "\n\n".join(drop_repeats(blocks(text), title=title, sapo=sapo)),
        "\n\n".join(drop_repeats(blocks(markdown), title=title, sapo=sapo)),
    )
