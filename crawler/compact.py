"""A map of article IDs to one 64-bit number each, in ~16 bytes an entry.

A backfill of the whole site meets every article of the archive, and the spider must
remember each one it is done with for the rest of the run (to skip it when another page
links it again, and to tell a new URL of it from one seen before). As Python objects (a
dict of the ID's string to a tuple of URL hashes) that was ~0.3 KB an article: the
spider grew 112 → 146 MB over a 100,000-article backfill, and would grow by ~300 MB over
the site's ~1M. Here entries live in two sorted ``array('q')`` (8 bytes each) and a small
dict of the latest ones (~100 bytes each), merged into the arrays every ``merge_every``
entries.

Why not a library: ``sortedcontainers`` keeps Python ints (~100 bytes an entry), numpy is
not a dependency of the crawler's process, and a disk store (SQLite, LMDB) would put a
write on every link the spider follows. The structure needs only lookups and inserts.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator


class IdMap:
    """``int -> int``, for up to millions of entries (lookups are a bisect)."""

    def __init__(self, merge_every: int = 16_384) -> None:
        self._keys = array("q")
        self._values = array("q")
        self._recent: dict[int, int] = {}
        self._merge_every = merge_every

    @classmethod
    def of_keys(cls, keys: Iterable[int]) -> IdMap:
        """A map of ``keys`` (each to 0), built at once: a set of numbers in 16 bytes each
        (the stored IDs a backfill skips: a Python set of 1M of them is ~75 MB)."""
        out = cls()
        ordered = sorted(keys)
        out._keys = array("q", (k for i, k in enumerate(ordered) if not i or k != ordered[i - 1]))
        out._values = array("q", bytes(8 * len(out._keys)))
        return out

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def __contains__(self, key: int) -> bool:
        return self.get(key) is not None

    def get(self, key: int) -> int | None:
        value = self._recent.get(key)
        if value is not None:
            return value
        i = bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            return self._values[i]
        return None

    def __setitem__(self, key: int, value: int) -> None:
        i = bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            self._values[i] = value
            return
        self._recent[key] = value
        if len(self._recent) >= self._merge_every:
            self._merge()

    def items(self) -> Iterator[tuple[int, int]]:
        """Every entry, by key."""
        return heapq.merge(zip(self._keys, self._values, strict=True),
                           sorted(self._recent.items()))

    def _merge(self) -> None:
        keys, values = array("q"), array("q")
        for key, value in self.items():
            keys.append(key)
            values.append(value)
        self._keys, self._values, self._recent = keys, values, {}


__all__ = ["IdMap"]
