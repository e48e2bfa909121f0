"""Publication dates: machine metadata cross-checked with the visible date line.

Priority: ``article:published_time`` (meta) > JSON-LD ``datePublished`` > the visible
``Thứ Bảy, 12/07/2025 21:11`` > the ID17 (creation time, last resort only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from baotintuc.clock import VN_TZ, id17_datetime, to_vn

TOLERANCE = timedelta(minutes=1)
_VISIBLE_RE = re.compile(
    r"(?P<d>\d{1,2})/(?P<mo>\d{1,2})/(?P<y>\d{4})(?:\D{1,12}?(?P<h>\d{1,2})[:h](?P<mi>\d{2}))?"
)
_LIVE_RE = re.compile(
    r"(?P<h>\d{1,2}):(?P<mi>\d{2})\s+Ngày\s+(?P<d>\d{1,2})/(?P<mo>\d{1,2})/(?P<y>\d{4})",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Dates:
    published_at: datetime
    modified_at: datetime | None
    source: str  # meta | jsonld | visible | id17
    disagreement: bool


def parse_iso(value: str | None) -> datetime | None:
    """ISO 8601 (``2025-07-12T21:11:00+07:00``, ``...Z``, naive) → aware +07:00, or None."""
    if not value:
        return None
    try:
        return to_vn(datetime.fromisoformat(value.strip().replace(" ", "T", 1)))
    except ValueError:
        return None


def parse_visible(text: str | None) -> datetime | None:
    """``Thứ Bảy, 12/07/2025 21:11`` (or ``21:11 Ngày 12/07/2025``) → aware datetime."""
    if not text:
        return None
    m = _LIVE_RE.search(text) or _VISIBLE_RE.search(text)
    if not m:
        return None
    try:
        return datetime(
            int(m["y"]), int(m["mo"]), int(m["d"]),
            int(m["h"] or 0), int(m["mi"] or 0), tzinfo=VN_TZ,
        )
    except ValueError:
        return None


def resolve_dates(
    *,
    meta: str | None,
    jsonld: str | None,
    visible: str | None,
    article_id: str | None,
    modified: str | None = None,
) -> Dates | None:
    """Pick ``published_at`` by priority; flag disagreement (> 1 min) among the sources seen."""
    candidates = [
        ("meta", parse_iso(meta)),
        ("jsonld", parse_iso(jsonld)),
        ("visible", parse_visible(visible)),
    ]
    found = [(name, dt) for name, dt in candidates if dt is not None]
    if not found:
        id_dt = id17_datetime(article_id)
        if id_dt is None:
            return None
        found = [("id17", id_dt.replace(microsecond=0))]  # a date, not a creation stamp
    source, published = found[0]
    disagreement = any(abs(dt - published) > TOLERANCE for _, dt in found[1:])
    return Dates(published, parse_iso(modified), source, disagreement)
