"""How deep a backfill got in each category's listing, so that a restarted one goes on.

A backfill walks thousands of listing pages (politely: one a second on the live site).
After a kill or a reboot, walking them again from page 1 would cost hours of requests
for articles that are stored already. The spider records, per category, the deepest page
it has read (``<warehouse>.backfill.json``, written every few seconds and at the end);
a restarted backfill with the same ``--since`` starts each category one page before
that (items shift down as new articles are published) and skips categories it finished.
The flow deletes the file when a backfill completes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import date
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
SAVE_EVERY_S = 5.0


class Frontier:
    def __init__(self, path: Path | None, since: date | None) -> None:
        self.path = path
        self.since = since.isoformat() if since else None
        self.categories: dict[str, dict[str, Any]] = {}
        self._saved = 0.0
        self._dirty = False
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.warning("unreadable backfill frontier %s: starting from page 1", path)
                return
            if isinstance(data, dict) and data.get("since") == self.since:
                self.categories = dict(data.get("categories") or {})
                log.info("resuming a backfill: %s", self.summary())
            else:
                log.info("backfill frontier %s is for another --since: starting anew", path)

    def start_page(self, key: str) -> int | None:
        """The page to start ``key`` at, or None when the backfill finished it."""
        state = self.categories.get(key) or {}
        if state.get("done"):
            return None
        return max(1, int(state.get("page", 1)) - 1)

    def reached(self, key: str, page: int) -> None:
        state = self.categories.setdefault(key, {"page": 1, "done": False})
        if page > int(state.get("page", 1)):
            state["page"] = page
            self._dirty = True
            self.save()

    def finished(self, key: str, page: int) -> None:
        self.categories[key] = {"page": page, "done": True}
        self._dirty = True
        self.save()

    def save(self, force: bool = False) -> None:
        if self.path is None or not self._dirty:
            return
        if not force and time.monotonic() - self._saved < SAVE_EVERY_S:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"since": self.since, "categories": self.categories},
                                  ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)
        self._saved = time.monotonic()
        self._dirty = False

    def summary(self) -> str:
        done = sum(1 for s in self.categories.values() if s.get("done"))
        deepest = max((int(s.get("page", 1)) for s in self.categories.values()), default=0)
        return f"{done} categories done, deepest page {deepest}"
