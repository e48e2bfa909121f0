"""Pages a big mirror renders on request: synthetic articles and category listings.

The server asks :class:`OnDemandPages` for a path it has no file for. Rendering uses the
same shells and functions as a files build, so a page is the same bytes either way (a test
holds that). The newest few pages are kept (LRU) so that conditional re-requests and
retries cost no rendering; memory stays flat whatever the size of the mirror.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path

from baotintuc.site import category_by_key
from mirror import sources
from mirror.build import render_listing_page
from mirror.listings import PER_PAGE, ListingShell
from mirror.plan import PlanStore
from mirror.server import etag_of
from mirror.shell import ArticleShell

_LISTING_RE = re.compile(r"^/([a-z0-9-]+-\d+ct\d+)(?:/trang-(\d+))?\.htm$")
CACHE_PAGES = 32  # ~9 MB of rendered pages


class OnDemandPages:
    def __init__(self, plan_file: Path, cache_pages: int = CACHE_PAGES) -> None:
        self.plan_file = plan_file
        self.store = PlanStore(plan_file)
        built_from = self.store.meta().get("inputs")
        if built_from != sources.inputs_digest():
            self.store.close()
            raise ValueError(f"{plan_file} was built from other inputs than this package's "
                             "mirror/inputs; rebuild the mirror")
        self.mtime = plan_file.stat().st_mtime
        self._articles = ArticleShell()
        self._listings = ListingShell()
        self._cache: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._cache_pages = cache_pages
        self._lock = threading.Lock()

    def close(self) -> None:
        self.store.close()

    def page(self, path: str) -> tuple[bytes, str] | None:
        """(body, ETag) of the page at ``path``, or None when the plan has no such page."""
        with self._lock:
            hit = self._cache.get(path)
            if hit is not None:
                self._cache.move_to_end(path)
                return hit
        text = self._render(path)
        if text is None:
            return None
        body = text.encode("utf-8")
        got = (body, etag_of(body))
        with self._lock:
            self._cache[path] = got
            while len(self._cache) > self._cache_pages:
                self._cache.popitem(last=False)
        return got

    def _render(self, path: str) -> str | None:
        m = _LISTING_RE.match(path)
        if m is not None:
            return self._listing(m.group(1), int(m.group(2) or 1), m.group(2) is not None)
        if not path.endswith(".htm"):
            return None
        art = self.store.by_path(path)
        if art is None or art.origin != "synthetic":  # real and seed pages are files
            return None
        return self._articles.render(art, self.store.by_id)

    def _listing(self, key: str, n: int, numbered: bool) -> str | None:
        cat = category_by_key(key)
        n_pages = self.store.listing_pages(key)
        if cat is None or cat.key != key or n_pages is None or n > n_pages:
            return None
        if numbered and n < 2:  # page 1 is only /<key>.htm, as in a files build
            return None
        focus = self.store.listing_items(key, 0, 4)
        chunk = self.store.listing_items(key, (n - 1) * PER_PAGE, PER_PAGE)
        return render_listing_page(self._listings, cat, chunk, focus, n, n_pages)
