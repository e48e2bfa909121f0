"""URL rules of baotintuc.vn: article IDs, canonical form, origin rewriting.

Every stored URL is canonical ``https://baotintuc.vn/<path>``. A crawl may fetch from
another origin (the offline mirror, a stand-in): :func:`to_fetch_url` maps a canonical
URL onto that origin with the same path, :func:`to_canonical` maps it back.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from baotintuc.clock import id17_datetime
from baotintuc.site import CANONICAL_HOST, CANONICAL_ORIGIN

# ``...-<ID17>.htm``; print views are ``-n<ID17>.htm``, videos ``-v<ID17>.htm``.
ARTICLE_RE = re.compile(r"-(?P<prefix>[nv]?)(?P<id>\d{17})\.htm$")
LISTING_RE = re.compile(
    r"^/(?P<slug>[a-z0-9-]+?)-(?P<cat>\d+)ct(?P<parent>\d+)(?:/trang-(?P<page>\d+))?\.htm$"
)


def article_id(url: str) -> str | None:
    """The 17-digit article ID (``yyyyMMddHHmmssfff``, Vietnam time) of an article URL.

    Returns None for anything that is not an article page (listings, tags, print views),
    and for 17 digits that are not a real creation time (month 13, 25 o'clock): such an
    ID could never be ordered, dated or filtered by ``--since``.
    """
    path = urlsplit(url).path
    m = ARTICLE_RE.search(path)
    if not m or m.group("prefix") == "n" or id17_datetime(m.group("id")) is None:
        return None
    return m.group("id")


def is_article_url(url: str) -> bool:
    return article_id(url) is not None


def _norm_path(path: str) -> str:
    # Keep raw UTF-8 tag paths readable but consistently encoded.
    return quote(unquote(path), safe="/-._~+%!$&'()*,;=:@")


def to_canonical(url: str, base: str | None = None) -> str:
    """Canonical ``https://baotintuc.vn<path>`` for any URL of the site or of ``base``.

    Drops query string and fragment, forces https and the bare host. ``url`` may be
    root-relative. URLs of other hosts are returned unchanged.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    base_host = urlsplit(base).netloc.lower() if base else ""
    if (
        parts.scheme
        and host not in (CANONICAL_HOST, f"www.{CANONICAL_HOST}")
        and (parts.netloc.lower() != base_host)
    ):
        return url
    return urlunsplit(("https", CANONICAL_HOST, _norm_path(parts.path or "/"), "", ""))


def to_fetch_url(url: str, base_url: str) -> str:
    """Where to fetch ``url`` from: the same path on ``base_url``'s origin.

    Query strings are kept (pagination and players use none, but a stand-in may).
    """
    parts = urlsplit(url.strip())
    base = urlsplit(base_url.rstrip("/"))
    return urlunsplit((base.scheme, base.netloc, parts.path or "/", parts.query, ""))


def same_origin(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def is_site_url(url: str, base_url: str | None = None) -> bool:
    """True for a URL on baotintuc.vn itself (or on ``base_url``), relative URLs included."""
    parts = urlsplit(url)
    if not parts.netloc:
        return True
    host = parts.netloc.lower()
    if host in (CANONICAL_HOST, f"www.{CANONICAL_HOST}"):
        return True
    return bool(base_url) and host == urlsplit(base_url).netloc.lower()


def listing_info(url: str) -> tuple[str, int, int, int] | None:
    """``(slug, category id, parent id, page)`` for a category listing URL."""
    m = LISTING_RE.match(urlsplit(url).path)
    if not m:
        return None
    return m.group("slug"), int(m.group("cat")), int(m.group("parent")), int(m.group("page") or 1)


__all__ = [
    "CANONICAL_ORIGIN",
    "article_id",
    "is_article_url",
    "is_site_url",
    "listing_info",
    "same_origin",
    "to_canonical",
    "to_fetch_url",
]
