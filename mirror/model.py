"""What the generator knows about each article it serves (the source of its ground truth)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from baotintuc.site import CANONICAL_ORIGIN, CATEGORIES_BY_ID, Category


@dataclass(frozen=True, slots=True)
class Figure:
    url: str  # full-size https://cdnmedia.baotintuc.vn/... image
    caption: str  # plain text, credit included; "" for an empty caption
    credit: str | None


@dataclass(frozen=True, slots=True)
class Block:
    """One body block: ``p`` paragraph, ``h`` sub-heading, ``ul`` list, ``figure``."""

    kind: str
    text: str = ""  # plain text (p, h)
    items: tuple[str, ...] = ()  # list items (ul)
    figure: Figure | None = None


@dataclass(frozen=True, slots=True)
class Byline:
    main: str  # text of div.author > strong (may carry trailing spaces)
    agency: str | None  # text of the <i>/<em> after it, e.g. " (TTXVN)"
    tag: str  # "i" (2025) or "em" (2023 style)
    printed: str  # the line as printed, whitespace collapsed
    authors: tuple[str, ...]
    source: str | None


@dataclass(slots=True)
class Article:
    article_id: str
    path: str  # /<leaf-slug>/<title-slug>-<ID17>.htm
    title: str
    sapo: str
    category: Category
    published_at: datetime  # aware, +07:00, seconds 0
    thumb: str  # og:image, full size
    origin: str  # "synthetic" | "seed" | "real"
    blocks: list[Block] = field(default_factory=list)
    byline: Byline | None = None
    tags: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)  # article ids
    kind: str = "article"
    reconstructed: list[str] = field(default_factory=list)  # seed: what was made up
    real_file: str | None = None  # real pages: the source file name

    @property
    def url(self) -> str:
        return CANONICAL_ORIGIN + self.path

    @property
    def slug(self) -> str:
        """Title slug of the path, without the ``-<ID17>.htm`` tail."""
        return self.path.rsplit("/", 1)[-1][: -len(f"-{self.article_id}.htm")]

    @property
    def parent(self) -> Category | None:
        return CATEGORIES_BY_ID.get(self.category.parent_id)

    @property
    def listed_in(self) -> list[str]:
        keys = [self.category.key]
        if self.parent is not None:
            keys.append(self.parent.key)
        return keys

    @property
    def figures(self) -> list[Figure]:
        return [b.figure for b in self.blocks if b.figure is not None]

    def body_text(self) -> str:
        parts: list[str] = []
        for b in self.blocks:
            if b.kind in ("p", "h"):
                parts.append(b.text)
            elif b.kind == "ul":
                parts.extend(b.items)
        return "\n\n".join(parts)
