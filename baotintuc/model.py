"""The parsed form of one article page: what every parser version returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


class ParseError(Exception):
    """No parser could read the page. ``reason`` is a short code for the failure table."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class ImageRecord:
    position: int  # 0-based, reading order
    url: str  # full-size (cdnmedia), never a thumbnail
    caption: str  # full caption text, "" when the figure has none
    credit: str | None  # text after the last "Ảnh…:" of the caption


@dataclass(slots=True)
class ParsedArticle:
    article_id: str
    url: str
    title: str
    sapo: str | None
    body_text: str
    body_markdown: str
    byline: str | None
    authors: list[str]
    source: str | None
    published_at: datetime
    modified_at: datetime | None
    date_source: str  # meta | jsonld | visible | id17
    date_disagreement: bool
    category: str | None
    category_id: int | None
    parent_category_id: int | None
    tags: list[str]
    related_article_ids: list[str]
    word_count: int
    kind: str  # article | photo | video | emagazine | infographic | live
    video_urls: list[str]
    images: list[ImageRecord]
    parser_version: str
    extractor_version: str
    warnings: list[str] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        """The warehouse row: plain types, images as a list of dicts."""
        row = asdict(self)
        row["images"] = [asdict(i) for i in self.images]
        return row
