"""The article: one typed schema from the parser to the warehouse.

Every field of :class:`Article` carries a :class:`Column` in its metadata, and the rest of
the pipeline reads its lists from there instead of keeping its own:

* the ``articles`` columns and their DuckDB types (``warehouse.load``; a test checks them
  against ``warehouse/schema``);
* the fields of the content hash: a change there is an edit and makes a new version;
* the fields on the run's scorecard and in the quality report (fill rates);
* the fields a layout-drift gate never lets an empty value overwrite;
* the fields of the offline mirror's ground truth;
* the size bound of each text or list field (longer values are cut and the cut is
  recorded in ``warnings``, so the run can count it).

"Filled" has one definition, :func:`is_filled`, with its SQL twin :func:`filled_sql`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class ParseError(Exception):
    """No parser could read the page. ``reason`` is a short code for the failure table."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Column:
    """What the pipeline needs to know about one field of :class:`Article`."""

    sql: str | None  # DuckDB type of its ``articles`` column; None: not a column there
    content: bool = False  # part of the content hash (a change is an edit)
    scored: bool = False  # fill rate on the scorecard and in the quality report
    protected: bool = False  # a stored non-empty value is never replaced by an empty one
    follows: str | None = None  # derived from that field (kept or replaced with it)
    truth: bool = False  # in the offline mirror's ground truth
    max_chars: int | None = None  # text bound (for lists: of each item)
    max_items: int | None = None  # list bound


def _col(**kwargs: Any) -> Any:
    return field(metadata={"column": Column(**kwargs)})


def _col_default(default: Any = None, **kwargs: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=list, metadata={"column": Column(**kwargs)})
    return field(default=default, metadata={"column": Column(**kwargs)})


@dataclass(slots=True)
class ImageRecord:
    position: int  # 0-based, reading order
    url: str  # full-size (cdnmedia), never a thumbnail; http(s) only
    caption: str  # full caption text, "" when the figure has none
    credit: str | None  # text after the last "Ảnh…:" of the caption

    MAX_URL = 2048
    MAX_CAPTION = 2000


# Bounds: far above anything the real site prints (titles ~60–200 characters, long-form
# bodies ~60,000), low enough that a hostile page cannot fill the warehouse.
_TEXT = 1_000_000


@dataclass(slots=True)
class Article:
    """One article page as read by a parser (all text NFC, whitespace-cleaned)."""

    article_id: str = _col(sql="VARCHAR", truth=True)  # ID17 of the canonical URL
    url: str = _col(sql="VARCHAR", truth=True, max_chars=2048)  # canonical https://baotintuc.vn/…
    title: str = _col(sql="VARCHAR", content=True, scored=True, protected=True, truth=True,
                      max_chars=1000)
    sapo: str | None = _col(sql="VARCHAR", content=True, scored=True, truth=True,
                            max_chars=5000)
    body_text: str = _col(sql="VARCHAR", content=True, scored=True, protected=True, truth=True,
                          max_chars=_TEXT)
    body_markdown: str = _col(sql="VARCHAR", follows="body_text", max_chars=2 * _TEXT)
    byline: str | None = _col(sql="VARCHAR", content=True, scored=True, truth=True,
                              max_chars=500)
    authors: list[str] = _col(sql="VARCHAR[]", content=True, scored=True, truth=True,
                              max_items=30, max_chars=200)
    source: str | None = _col(sql="VARCHAR", content=True, scored=True, truth=True,
                              max_chars=300)
    published_at: datetime = _col(sql="TIMESTAMPTZ", content=True, scored=True,
                                  protected=True, truth=True)
    modified_at: datetime | None = _col(sql="TIMESTAMPTZ", content=True, scored=True)
    date_source: str = _col(sql="VARCHAR")  # meta | jsonld | visible | id17
    date_disagreement: bool = _col(sql="BOOLEAN")
    category: str | None = _col(sql="VARCHAR", content=True, scored=True, truth=True,
                                max_chars=300)
    category_id: int | None = _col(sql="INTEGER", content=True, scored=True, truth=True)
    parent_category_id: int | None = _col(sql="INTEGER", content=True, truth=True)
    tags: list[str] = _col(sql="VARCHAR[]", content=True, scored=True, truth=True,
                           max_items=100, max_chars=300)
    related_article_ids: list[str] = _col(sql="VARCHAR[]", max_items=200, max_chars=17)
    word_count: int = _col(sql="INTEGER", follows="body_text", scored=True)
    kind: str = _col(sql="VARCHAR", content=True, scored=True, truth=True, max_chars=30)
    video_urls: list[str] = _col(sql="VARCHAR[]", content=True, max_items=50, max_chars=2048)
    images: list[ImageRecord] = _col(sql=None, content=True, scored=True, truth=True,
                                     max_items=500)
    parser_version: str = _col(sql="VARCHAR")
    extractor_version: str = _col(sql="VARCHAR")
    warnings: list[str] = _col_default([], sql="VARCHAR[]", max_items=100, max_chars=300)
    fetched_at: datetime | None = _col_default(None, sql="TIMESTAMPTZ")  # set from the archive

    def to_row(self) -> dict[str, Any]:
        """Plain types: the form of the ground truth, the fixtures and JSON exports."""
        return dataclasses.asdict(self)

    def bounded(self) -> Article:
        """This article with every text and list field cut to its bound.

        Each cut is recorded in ``warnings`` as ``cut:<field>`` (text too long) or
        ``capped:<field>`` (too many items), so a run can count what it cut.
        """
        notes: list[str] = []
        for name, col in COLUMNS.items():
            value = getattr(self, name)
            if isinstance(value, str) and col.max_chars and len(value) > col.max_chars:
                setattr(self, name, value[: col.max_chars])
                notes.append(f"cut:{name}")
            elif isinstance(value, list):
                if col.max_items and len(value) > col.max_items:
                    value = value[: col.max_items]
                    notes.append(f"capped:{name}")
                if col.max_chars and any(
                    isinstance(v, str) and len(v) > col.max_chars for v in value
                ):
                    value = [v[: col.max_chars] if isinstance(v, str) else v for v in value]
                    notes.append(f"cut:{name}")
                setattr(self, name, value)
        for img in self.images:
            if len(img.url) > ImageRecord.MAX_URL or len(img.caption) > ImageRecord.MAX_CAPTION:
                img.url = img.url[: ImageRecord.MAX_URL]
                img.caption = img.caption[: ImageRecord.MAX_CAPTION]
                notes.append("cut:images")
        self.warnings = [*self.warnings, *dict.fromkeys(notes)]
        return self


@dataclass(slots=True)
class Failure:
    """A URL that gave no stored article this time: where, why, when.

    ``stage``: ``robots|feed|feed_index|listing|sitemap|article`` (fetching),
    ``parse`` (no parser could read the page), ``quality`` (held back by the drift gate),
    ``accounting`` (a discovered article the run lost track of: a bug, never expected).
    ``reason``: a short code (``http_404``, ``timeout``, ``parse_error:no_title`` …).
    """

    url: str
    stage: str
    reason: str
    status: int | None = None
    detail: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    article_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "stage": self.stage,
            "reason": self.reason,
            "status": self.status,
            "detail": self.detail,
            "at": self.at.isoformat(),
            "article_id": self.article_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Failure:
        at = data.get("at")
        status = data.get("status")
        return cls(
            url=str(data.get("url") or ""),
            stage=str(data.get("stage") or ""),
            reason=str(data.get("reason") or ""),
            status=int(status) if status not in (None, "") else None,
            detail=str(data.get("detail") or ""),
            at=datetime.fromisoformat(at) if isinstance(at, str) else datetime.now(UTC),
            article_id=data.get("article_id") or None,
        )


def _columns() -> dict[str, Column]:
    return {f.name: f.metadata["column"] for f in dataclasses.fields(Article)}


COLUMNS: dict[str, Column] = _columns()
"""Every field of :class:`Article` and its :class:`Column`, in declaration order."""


def fields_where(**flags: bool) -> tuple[str, ...]:
    """Names of the fields whose Column has every given flag, e.g. ``content=True``."""
    return tuple(
        name for name, col in COLUMNS.items() if all(getattr(col, k) == v for k, v in flags.items())
    )


CONTENT_FIELDS = fields_where(content=True)
SCORED_FIELDS = fields_where(scored=True)
PROTECTED_FIELDS = fields_where(protected=True)
TRUTH_FIELDS = fields_where(truth=True)
STORED_COLUMNS: dict[str, str] = {n: c.sql for n, c in COLUMNS.items() if c.sql is not None}
"""The ``articles`` columns that come from the article, with their DuckDB types."""
REPORTED_COLUMNS: tuple[str, ...] = tuple(f for f in SCORED_FIELDS if f in STORED_COLUMNS)
"""The scored fields that are ``articles`` columns: fill rates computed in SQL."""


def followers(name: str) -> tuple[str, ...]:
    """Fields derived from ``name`` (kept or replaced together with it)."""
    return tuple(n for n, c in COLUMNS.items() if c.follows == name)


def is_filled(value: Any) -> bool:
    """Filled: not None, non-blank text, a non-empty list. 0 and False are filled."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | dict | set):
        return bool(value)
    return True


def filled_sql(column: str, sql_type: str) -> str:
    """:func:`is_filled` as a DuckDB predicate over a column of type ``sql_type``."""
    col = f'"{column}"'
    if sql_type.endswith("[]"):
        return f"coalesce(len({col}), 0) > 0"
    if sql_type.upper().startswith("VARCHAR"):
        return f"nullif(trim({col}), '') is not null"
    return f"{col} is not null"


__all__ = [
    "Article",
    "COLUMNS",
    "CONTENT_FIELDS",
    "Column",
    "Failure",
    "ImageRecord",
    "PROTECTED_FIELDS",
    "REPORTED_COLUMNS",
    "ParseError",
    "SCORED_FIELDS",
    "STORED_COLUMNS",
    "TRUTH_FIELDS",
    "fields_where",
    "filled_sql",
    "followers",
    "is_filled",
]
