"""Field helpers shared by the site parser versions and the generic fallback."""

from __future__ import annotations

import re
from urllib.parse import unquote, urljoin, urlsplit

from baotintuc.parsers.page import Page
from baotintuc.site import CANONICAL_ORIGIN, CATEGORIES_BY_SLUG
from baotintuc.urls import article_id, listing_info, to_canonical

_THUMB_RE = re.compile(r"^https?://cdnthumb\.baotintuc\.vn/.*?https?@@\$\$(?:cdn)?media\.baotintuc\.vn(/.*)$")
_FILE_ID_RE = re.compile(r"[?&]fileId=([^&]+)", re.IGNORECASE)
_LIVE_STAMP_RE = re.compile(r"\b\d{1,2}:\d{2}\s+Ngày\s+\d{1,2}/\d{1,2}/\d{4}", re.IGNORECASE)


def full_size_image(src: str, base: str = CANONICAL_ORIGIN) -> str:
    """Absolute full-size URL: cdnthumb ``ha_w/<w>/https@@$$media…/Upload/…`` → cdnmedia."""
    src = urljoin(base + "/", src.strip())
    m = _THUMB_RE.match(src)
    if m:
        return f"https://cdnmedia.baotintuc.vn{m.group(1)}"
    return src


def player_video_url(src: str) -> str:
    """The video file of a ``Player.aspx?...fileId=<mp4>`` iframe, else the iframe URL."""
    m = _FILE_ID_RE.search(src)
    if m:
        return unquote(m.group(1)).strip()
    return urljoin(CANONICAL_ORIGIN + "/", src.strip())


def related_ids(hrefs: list[str]) -> list[str]:
    out: list[str] = []
    for href in hrefs:
        aid = article_id(to_canonical(href))
        if aid and aid not in out:
            out.append(aid)
    return out


def category_ids_from_href(href: str | None) -> tuple[int | None, int | None]:
    info = listing_info(to_canonical(href)) if href else None
    return (info[1], info[2]) if info else (None, None)


def breadcrumb_leaf(page: Page) -> tuple[str | None, str | None]:
    """``(name, @id URL)`` of the last BreadcrumbList item, or ``(None, None)``."""
    crumbs = page.ld_of_type("BreadcrumbList")
    items = (crumbs or {}).get("itemListElement") or []
    if not isinstance(items, list) or len(items) < 2:
        return None, None
    last = items[-1] if isinstance(items[-1], dict) else {}
    item = last.get("item") if isinstance(last.get("item"), dict) else last
    return item.get("name"), item.get("@id") or item.get("url")


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
