"""Text helpers for the generator: entity encoding as the site writes it, slugs, dates."""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import datetime
from email.utils import format_datetime
from html.entities import codepoint2name

from baotintuc.clock import VN_TZ, id17_of

__all__ = ["VN_TZ", "attr", "collapse", "entities", "id17", "iso", "numeric_entities",
           "rfc822", "slugify", "visible_date"]
WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")
_WS = re.compile(r"\s+")


def collapse(text: str) -> str:
    """NFC, nbsp/zero-width → space/nothing, whitespace collapsed, stripped."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u00a0", " ").replace("\u200b", "").replace("\ufeff", "")
    return _WS.sub(" ", text).strip()


def entities(text: str) -> str:
    """Body-text encoding of the real pages: named entities for Latin-1 letters (``&agrave;``),
    other Vietnamese letters literal (``Đo&agrave;n``), ``&quot;`` for quotes."""
    out: list[str] = []
    for ch in html.escape(text, quote=False):
        cp = ord(ch)
        if ch == '"':
            out.append("&quot;")
        elif cp >= 128 and cp in codepoint2name:
            out.append(f"&{codepoint2name[cp]};")
        else:
            out.append(ch)
    return "".join(out)


def attr(text: str) -> str:
    """Literal UTF-8 attribute value (title, meta, og:)."""
    return html.escape(text, quote=True).replace("&#x27;", "'")


def numeric_entities(text: str) -> str:
    """The listing pages' ``alt`` encoding: ``&#244;`` for Latin-1 letters."""
    return "".join(
        f"&#{ord(c)};" if 128 <= ord(c) < 256 else c for c in html.escape(text, quote=True)
    )


def slugify(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^a-z0-9\s-]", "", text)  # "1,3 triệu" -> "13-trieu", as the site does
    return re.sub(r"[\s-]+", "-", text).strip("-")


id17 = id17_of


def visible_date(dt: datetime) -> str:
    return f"{WEEKDAYS[dt.weekday()]}, {dt:%d/%m/%Y %H:%M}"


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def rfc822(dt: datetime) -> str:
    return format_datetime(dt)
