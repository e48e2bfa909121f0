"""Article body → ``body_text`` and ``body_markdown`` with trafilatura.

The site parser hands over the body containers (``div#divfirst`` + ``div#divend``); ads,
players and scripts are removed here and every figure becomes a placeholder paragraph so
that trafilatura (which drops captions) keeps the images' place for the Markdown.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import lxml.html
import trafilatura

from baotintuc.model import ImageRecord
from baotintuc.text import clean_text

EXTRACTOR_VERSION = f"trafilatura-{trafilatura.__version__}"

# Clutter that sits inside the body containers on baotintuc.vn.
JUNK_XPATH = (
    ".//script | .//style | .//noscript | .//ins | .//iframe | .//zone | .//video"
    " | .//object | .//embed | .//form | .//button"
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
    parts: Iterable[lxml.html.HtmlElement], figure_xpath: str, *, flat_lists: bool = False
) -> str:
    """One ``<article>`` holding copies of the parts, junk removed, figures → placeholders.

    ``flat_lists`` turns list items into paragraphs: trafilatura's text output would
    otherwise prefix them with ``- ``, indistinguishable from a dialogue dash.
    """
    root = lxml.html.Element("article")
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
        if flat_lists:
            for el in part.iter("li", "ul", "ol"):
                el.tag = "p" if el.tag == "li" else "div"
        root.append(part)
    body = lxml.html.tostring(root, encoding="unicode")
    return f"<html><body>{body}</body></html>"


def _trafilatura(html: str, *, markdown: bool, url: str | None) -> str:
    out = trafilatura.extract(
        html,
        url=url,
        output_format="markdown" if markdown else "txt",
        include_formatting=markdown,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        favor_recall=True,
        deduplicate=False,
        with_metadata=False,
    )
    return out or ""


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
    html = _container(parts, figure_xpath)
    flat = _container(parts, figure_xpath, flat_lists=True)
    text_blocks = [
        b for b in blocks(_trafilatura(flat, markdown=False, url=url))
        if not _PLACEHOLDER_RE.fullmatch(b)
    ]
    md_blocks = blocks(_trafilatura(html, markdown=True, url=url))
    by_pos = {img.position: img for img in images}
    seen: set[int] = set()
    md: list[str] = []
    for b in md_blocks:
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


def extract_page(html: str, *, url: str | None, title: str | None, sapo: str | None,
                 prune_xpath: Sequence[str] = ()) -> Body:
    """Generic fallback: trafilatura on the whole page (no site knowledge but ``prune_xpath``)."""
    kwargs = {
        "url": url, "include_comments": False, "include_tables": True,
        "include_images": False, "favor_precision": True, "deduplicate": False,
        "prune_xpath": list(prune_xpath) or None,
    }
    text = trafilatura.extract(html, output_format="txt", **kwargs) or ""  # type: ignore[arg-type]
    md = trafilatura.extract(  # type: ignore[arg-type]
        html, output_format="markdown", include_formatting=True, **kwargs
    ) or ""
    return Body(
        "\n\n".join(drop_repeats(blocks(text), title=title, sapo=sapo)),
        "\n\n".join(drop_repeats(blocks(md), title=title, sapo=sapo)),
    )
