"""The real 2025 pages: served byte for byte; metadata read from their <head> for listings.

Their ground truth is not computed here: it is the parser engineer's frozen truth (values
checked by reading the pages), copied into ``mirror/inputs/real-truth.json``. When that
file is missing the pages are still served and listed, and manifest.json says so.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from baotintuc.model import TRUTH_FIELDS
from baotintuc.site import CATEGORIES_BY_ID
from baotintuc.urls import article_id, listing_info, to_canonical
from mirror import sources
from mirror.model import Article
from mirror.sources import SourcePage

TRUTH_KEYS = tuple(f for f in TRUTH_FIELDS if f != "images")  # images: their own list


@dataclass(frozen=True, slots=True)
class RealPage:
    article: Article  # metadata only (no blocks): for listings, feeds and links
    data: bytes


def _meta(page: str, prop: str) -> str:
    m = re.search(rf'<meta property="{re.escape(prop)}"[^>]*?content="([^"]*)"', page)
    if m is None:
        raise ValueError(f"real page without {prop}")
    return html.unescape(m.group(1)).strip()


def read_real_pages(pages: Iterable[SourcePage] | None = None) -> list[RealPage]:
    """The real article pages (default: the package's inputs) with their metadata."""
    out: list[RealPage] = []
    for source in sources.article_pages() if pages is None else pages:
        data = source.data
        page = source.text
        url = _meta(page, "og:url")
        aid = article_id(url)
        cate = re.search(r'<h4 class="cate">\s*<a href="([^"]+)"', page)
        info = listing_info(cate.group(1)) if cate else None
        if aid is None or info is None:
            raise ValueError(f"{source.name}: no article id or category link")
        art = Article(
            article_id=aid,
            path=url.split("baotintuc.vn", 1)[1],
            title=_meta(page, "og:title"),
            sapo=_meta(page, "og:description"),
            category=CATEGORIES_BY_ID[info[1]],
            published_at=datetime.fromisoformat(_meta(page, "article:published_time")),
            thumb=_meta(page, "og:image"),
            origin="real",
            real_file=source.name,
        )
        out.append(RealPage(art, data))
    return out


def load_expected(expected_file: Path) -> dict[str, dict[str, Any]]:
    """Frozen truth by canonical URL, from ``{"<fixture>": {"url", "layout", "expected"}}``."""
    if not expected_file.is_file():
        return {}
    raw = json.loads(expected_file.read_text(encoding="utf-8"))
    out: dict[str, dict[str, Any]] = {}
    for entry in raw.values():
        if isinstance(entry, dict) and "url" in entry and "expected" in entry:
            out[to_canonical(entry["url"])] = entry["expected"]
    return out


def real_truth(art: Article, expected: dict[str, Any]) -> dict[str, Any]:
    row = {k: expected.get(k) for k in TRUTH_KEYS}
    row["article_id"] = row["article_id"] or art.article_id
    row["url"] = row["url"] or art.url
    row["images"] = expected.get("images", [])
    row["listed_in"] = art.listed_in
    return row
