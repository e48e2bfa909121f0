"""Field helpers shared by the site parser versions and the generic fallback."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urljoin, urlsplit

from baotintuc.model import ImageRecord
from baotintuc.parsers.page import Page
from baotintuc.site import CANONICAL_ORIGIN, CATEGORIES_BY_SLUG
from baotintuc.urls import article_id, listing_info, to_canonical

_THUMB_RE = re.compile(r"^https?://cdnthumb\.baotintuc\.vn/.*?https?@@\$\$(?:cdn)?media\.baotintuc\.vn(/.*)$")
_FILE_ID_RE = re.compile(r"[?&]fileId=([^&]+)", re.IGNORECASE)
_LIVE_STAMP_RE = re.compile(r"\b\d{1,2}:\d{2}\s+Ngày\s+\d{1,2}/\d{1,2}/\d{4}", re.IGNORECASE)


def _join(base: str, src: str) -> str:
    try:
        return urljoin(base, src.strip())
    except ValueError:  # "http://[::1" and friends: not a URL
        return ""


def is_web_url(url: str) -> bool:
    """An absolute http(s) URL with a host, within the stored URL bound: the only kind
    stored for images and videos (never ``javascript:``, ``data:``, ``file:`` …, and never
    a URL that would have to be cut short)."""
    if len(url) > ImageRecord.MAX_URL:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def image_url(sources: Iterable[str | None]) -> str:
    """The first of an image's sources (``data-src``, ``src`` …) that resolves to a web URL;
    else the first given, as resolved (to be counted and dropped); "" when none is given."""
    given = [full_size_image(s) for s in sources if s and s.strip()]
    return next((u for u in given if is_web_url(u)), given[0] if given else "")


def full_size_image(src: str, base: str = CANONICAL_ORIGIN) -> str:
    """Absolute full-size URL: cdnthumb ``ha_w/<w>/https@@$$media…/Upload/…`` → cdnmedia.

    Relative URLs resolve against the site's origin, never against a page's ``<base
    href>`` (see :func:`off_site_base`). ``src`` as written when it is not a URL.
    """
    joined = _join(base + "/", src)
    if not joined:  # not a URL: kept as written, to be counted and dropped as one
        return src.strip()
    src = joined
    m = _THUMB_RE.match(src)
    if m:
        return f"https://cdnmedia.baotintuc.vn{m.group(1)}"
    return src


def off_site_base(page: Page) -> bool:
    """Whether the page's ``<base href>`` points off baotintuc.vn. It is ignored either way
    (relative URLs resolve against the site), but an off-site one is worth a warning: a
    browser would have fetched the page's relative images from that other host."""
    if not page.base_href:
        return False
    host = urlsplit(_join(CANONICAL_ORIGIN + "/", page.base_href)).hostname or ""
    return not (host == "baotintuc.vn" or host.endswith(".baotintuc.vn"))


def player_video_url(src: str) -> str:
    """The video file of a ``Player.aspx?...fileId=<mp4>`` iframe, else the iframe URL."""
    m = _FILE_ID_RE.search(src)
    if m:
        return unquote(m.group(1)).strip()
    return _join(CANONICAL_ORIGIN + "/", src)


def web_urls(urls: Iterable[str]) -> tuple[list[str], int]:
    """The distinct http(s) URLs in order, and how many others were dropped."""
    kept: dict[str, None] = {}
    dropped = 0
    for url in urls:
        if is_web_url(url):
            kept.setdefault(url, None)
        else:
            dropped += 1
    return list(kept), dropped


def related_ids(hrefs: Iterable[str]) -> list[str]:
    out: dict[str, None] = {}
    for href in hrefs:
        try:
            aid = article_id(to_canonical(href))
        except ValueError:
            continue
        if aid:
            out.setdefault(aid, None)
    return list(out)


def category_ids_from_href(href: str | None) -> tuple[int | None, int | None]:
    if not href or not isinstance(href, str):
        return None, None
    try:
        info = listing_info(to_canonical(href))
    except ValueError:
        return None, None
    return (info[1], info[2]) if info else (None, None)


def breadcrumb_leaf(page: Page) -> tuple[str | None, str | None]:
    """``(name, @id URL)`` of the last BreadcrumbList item, or ``(None, None)``."""
    crumbs = page.ld_of_type("BreadcrumbList")
    items = (crumbs or {}).get("itemListElement") or []
    if not isinstance(items, list) or len(items) < 2:
        return None, None
    last = items[-1] if isinstance(items[-1], dict) else {}
    item = last.get("item") if isinstance(last.get("item"), dict) else last
    name, href = item.get("name"), item.get("@id") or item.get("url")
    return (name if isinstance(name, str) else None), (href if isinstance(href, str) else None)


def category_from_url(url: str) -> tuple[int | None, int | None]:
    """Category of the article URL's first path segment (``/phap-luat/...``)."""
    seg = urlsplit(url).path.strip("/").split("/", 1)[0]
    cat = CATEGORIES_BY_SLUG.get(seg)
    return (cat.id, cat.parent_id) if cat else (None, None)


def kind_from_url(url: str) -> str | None:
    path = urlsplit(url).path.lower()
    if path.startswith("/video/") or re.search(r"-v\d{17}\.htm$", path):
        return "video"
    if "/long-form/" in path or "/emagazine/" in path:
        return "emagazine"
    if path.startswith(("/infographic", "/infographics/")):
        return "infographic"
    if path.startswith(("/truc-tuyen/", "/live/")):
        return "live"
    if path.startswith("/anh/"):
        return "photo"
    return None


def count_live_stamps(text: str) -> int:
    """Entries of a live blog are stamped ``HH:MM Ngày dd/MM/yyyy``."""
    return len(_LIVE_STAMP_RE.findall(text))
