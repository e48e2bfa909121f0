"""Give freed memory back to the system, so a long run's resident size stays flat.

CPython and lxml allocate and free many megabytes a second while pages are parsed (a
275 KB page becomes a tree several times its size). glibc keeps freed chunks in its
heap, and fragmentation stops it from shrinking on its own: measured on a 10,000-article
backfill, the spider's resident memory rose from 124 MB to 218 MB while it read listing
pages at the end, although Python held no more objects (tracemalloc). ``malloc_trim(0)``
returns the free pages in the middle of the heap too; calling it every half second (the
spider) and after every batch (the flow) kept both flat. It is a no-op where glibc is
absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Return free heap pages to the system (glibc ``malloc_trim``); cheap, safe."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


__all__ = ["release_free_memory"]
