"""The generator's inputs, shipped inside the package (``mirror/inputs/``).

- ``pages/*.html.gz``: the 20 real 2025 article pages and the real listing page, gzipped
  (decompressed bytes are the saved server responses, unchanged; see ``PROVENANCE.md``).
- ``seed-article.txt``: the real 2020 article known only as text.
- ``real-truth.json``: the frozen truth of the 20 real pages, a copy of their entries in the
  parser fixtures (``tests/resources/baotintuc/expected.json``; a test keeps them equal).
  The mirror owns its copy so that an installed package builds the same mirror as a
  checkout.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

INPUTS_DIR = Path(__file__).with_name("inputs")
PAGES_DIR = INPUTS_DIR / "pages"
SEED_FILE = INPUTS_DIR / "seed-article.txt"
REAL_TRUTH_FILE = INPUTS_DIR / "real-truth.json"


@dataclass(frozen=True, slots=True)
class SourcePage:
    name: str  # the saved file's name, e.g. ``article_20250712205905640_phap-luat.html``
    data: bytes  # the page as served

    @property
    def text(self) -> str:
        """Decoded with universal newlines (CRLF -> LF), as the shells were always cut."""
        return self.data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


@cache
def _pages() -> tuple[SourcePage, ...]:
    files = sorted(PAGES_DIR.glob("*.html.gz"))
    if not files:
        raise FileNotFoundError(f"the mirror's input pages are missing from {PAGES_DIR}")
    return tuple(SourcePage(f.name.removesuffix(".gz"), gzip.decompress(f.read_bytes()))
                 for f in files)


def article_pages() -> tuple[SourcePage, ...]:
    """The real article pages, sorted by file name."""
    return tuple(p for p in _pages() if p.name.startswith("article_"))


def page(name: str) -> SourcePage:
    """One real page by its file name (the shells are cut from these)."""
    for p in _pages():
        if p.name == name:
            return p
    raise FileNotFoundError(f"no input page {name} in {PAGES_DIR}")


def listing_page() -> SourcePage:
    """The real category listing page (the listing shell)."""
    return next(p for p in _pages() if p.name.startswith("listing_"))


def seed_text() -> str:
    return SEED_FILE.read_text(encoding="utf-8")


def input_files() -> list[Path]:
    """Every input file, in a stable order (for build fingerprints)."""
    return sorted(PAGES_DIR.glob("*.html.gz")) + [SEED_FILE, REAL_TRUTH_FILE]


def inputs_digest() -> str:
    h = hashlib.sha256()
    for path in input_files():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()
