"""Vietnam time and the ID17: the one place that knows both.

An article's ID17 is ``yyyyMMddHHmmssfff`` in Vietnam time (UTC+7, no daylight saving):
when the article was *created*. It is the stable key, the order of listings and the
last-resort date, never ``published_at`` (publication came 1 to 36 minutes later in
the real samples).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
ID17_RE = re.compile(
    r"^(?P<y>\d{4})(?P<mo>\d\d)(?P<d>\d\d)(?P<h>\d\d)(?P<mi>\d\d)(?P<s>\d\d)(?P<ms>\d{3})$"
)
# The site's first articles: an ID17 before this is not a real creation time.
EARLIEST = datetime(2000, 1, 1, tzinfo=VN_TZ)


def to_vn(dt: datetime) -> datetime:
    """Aware datetime in Vietnam time; a naive one is taken as Vietnam time."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=VN_TZ)
    return dt.astimezone(VN_TZ)


def id17_datetime(article_id: str | None) -> datetime | None:
    """Creation time (aware, Vietnam time) encoded in an ID17; None if it is not a real
    date and time (month 13, 25 o'clock, before 2000)."""
    m = ID17_RE.match(article_id or "")
    if not m:
        return None
    try:
        dt = datetime(
            *(int(m[k]) for k in ("y", "mo", "d", "h", "mi", "s")),
            microsecond=int(m["ms"]) * 1000,
            tzinfo=VN_TZ,
        )
    except ValueError:
        return None
    return dt if dt >= EARLIEST else None


def id17_of(dt: datetime) -> str:
    """The ID17 of a creation time (the inverse of :func:`id17_datetime`)."""
    dt = to_vn(dt)
    return dt.strftime("%Y%m%d%H%M%S") + f"{dt.microsecond // 1000:03d}"


def vn_day_start(day: date) -> datetime:
    """Midnight of ``day`` in Vietnam time (``--since`` days are Vietnam days)."""
    return datetime.combine(day, time(0), tzinfo=VN_TZ)


def vn_date(dt: datetime) -> date:
    """The Vietnam calendar day of an instant."""
    return to_vn(dt).date()


__all__ = [
    "EARLIEST",
    "ID17_RE",
    "VN_TZ",
    "id17_datetime",
    "id17_of",
    "to_vn",
    "vn_date",
    "vn_day_start",
]
