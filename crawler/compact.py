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

:class:`IdSet` and :class:`IdLabels` put the same arrays under the flow's run accounting
(the articles a run stored, and what the spider decided for each ID it found), which
lives in the CLI's process for the whole crawl.
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


def id_number(article_id: str) -> int | None:
    """The ID as a number, if it is one that turns back into the same string (every
    article ID is 17 digits); None for anything else."""
    if (article_id.isascii() and article_id.isdigit() and len(article_id) <= 18
            and (article_id[0] != "0" or article_id == "0")):
        return int(article_id)
    return None


class IdSet:
    """A set of article IDs in ~16 bytes each (an :class:`IdMap`'s keys), where a Python
    set of the strings is ~100. A string that is not a plain number (no article ID is
    one) goes in an ordinary set, so any string can be added."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._numbers = IdMap()
        self._other: set[str] = set()
        self.update(ids)

    def add(self, article_id: str) -> None:
        n = id_number(article_id)
        if n is None:
            self._other.add(article_id)
        else:
            self._numbers[n] = 0

    def update(self, ids: Iterable[str]) -> None:
        for article_id in ids:
            self.add(article_id)

    def __contains__(self, article_id: object) -> bool:
        if not isinstance(article_id, str):
            return False
        n = id_number(article_id)
        return article_id in self._other if n is None else n in self._numbers

    def __len__(self) -> int:
        return len(self._numbers) + len(self._other)

    def __iter__(self) -> Iterator[str]:
        for n, _ in self._numbers.items():
            yield str(n)
        yield from self._other


class IdLabels:
    """``article ID -> label`` for a few distinct labels (an outcome, say), in ~16 bytes
    an ID: the label's number in an :class:`IdMap`."""

    def __init__(self) -> None:
        self._numbers = IdMap()
        self._other: dict[str, int] = {}
        self._labels: list[str] = []
        self._codes: dict[str, int] = {}

    def __setitem__(self, article_id: str, label: str) -> None:
        code = self._codes.get(label)
        if code is None:
            code = self._codes[label] = len(self._labels)
            self._labels.append(label)
        n = id_number(article_id)
        if n is None:
            self._other[article_id] = code
        else:
            self._numbers[n] = code

    def get(self, article_id: str) -> str | None:
        n = id_number(article_id)
        code = self._other.get(article_id) if n is None else self._numbers.get(n)
        return None if code is None else self._labels[code]

    def __contains__(self, article_id: object) -> bool:
        return isinstance(article_id, str) and self.get(article_id) is not None

    def __len__(self) -> int:
        return len(self._numbers) + len(self._other)

    def items(self) -> Iterator[tuple[str, str]]:
        """Every ``(article ID, label)``; the numeric IDs in order."""
        for n, code in self._numbers.items():
            yield str(n), self._labels[code]
        for article_id, code in self._other.items():
            yield article_id, self._labels[code]

    def __iter__(self) -> Iterator[str]:
        return (article_id for article_id, _ in self.items())


__all__ = ["IdLabels", "IdMap", "IdSet", "id_number"]
