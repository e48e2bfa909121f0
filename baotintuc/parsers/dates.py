"""Publication dates: machine metadata cross-checked with the visible date line and the ID17.

Priority: ``article:published_time`` (meta) > JSON-LD ``datePublished`` > the visible
``Thứ Bảy, 12/07/2025 21:11`` > the ID17 (creation time, last resort only). Priority
decides among plausible sources that agree equally well. Implausible: before 2000 (the
site did not publish then), or further than ``ID17_WINDOW`` from the ID17, the article's
creation stamp, which is part of its URL and key (a year-2099 meta tag never wins over a
visible date and an ID17 that agree on 2025). A plausible source that another one
confirms (within a minute) wins over one that nothing confirms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from baotintuc.clock import VN_TZ, id17_datetime, to_vn

TOLERANCE = timedelta(minutes=1)  # two sources agree within this
# An article is published soon after it is created (1 minute before to 36 minutes after in
# the real pages); a source this far from the ID17 with nothing else backing it is noise.
ID17_WINDOW = timedelta(days=366)
EARLIEST = datetime(2000, 1, 1, tzinfo=VN_TZ)
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
    rejected: tuple[str, ...] = ()  # sources dropped as implausible (before 2000, unsupported)


def parse_iso(value: object) -> datetime | None:
    """ISO 8601 (``2025-07-12T21:11:00+07:00``, ``...Z``, naive) → aware +07:00, or None
    (also for a non-string JSON-LD value or a date that overflows when converted)."""
    if not value or not isinstance(value, str):
        return None
    try:
        return to_vn(datetime.fromisoformat(value.strip().replace(" ", "T", 1)))
    except (ValueError, OverflowError):
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
    meta: object,
    jsonld: object,
    visible: str | None,
    article_id: str | None,
    modified: object = None,
) -> Dates | None:
    """Pick ``published_at`` (see the module docstring); flag disagreement (> 1 min) among
    the sources seen, the dropped ones included."""
    seen = [
        ("meta", parse_iso(meta)),
        ("jsonld", parse_iso(jsonld)),
        ("visible", parse_visible(visible)),
    ]
    seen = [(name, dt) for name, dt in seen if dt is not None]
    created = id17_datetime(article_id)
    plausible = [
        (name, dt) for name, dt in seen
        if dt >= EARLIEST and (created is None or abs(dt - created) <= ID17_WINDOW)
    ]
    rejected = tuple(name for name, _ in seen if name not in dict(plausible))
    if plausible:
        support = [sum(1 for _, o in plausible if abs(o - dt) <= TOLERANCE) for _, dt in plausible]
        source, published = plausible[support.index(max(support))]  # first = priority
    elif created is not None:
        source, published = "id17", created.replace(microsecond=0)  # a date, not a stamp
    else:
        return None
    disagreement = any(abs(dt - published) > TOLERANCE for _, dt in seen)
    mod = parse_iso(modified)
    if mod is not None and mod < EARLIEST:
        mod, rejected = None, (*rejected, "modified")
    return Dates(published, mod, source, disagreement, rejected)
