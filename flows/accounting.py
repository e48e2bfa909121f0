"""The run's accounting: every discovered article ends stored, skipped or failed.

The invariant, per article ID: ``discovered = stored + skipped + failed``. The spider
says what it decided for each ID it found (``discovered.jsonl``); the flow adds what the
archive gave (stored, filtered by ``since``) and every failure row that names the ID. An
ID with none of these was lost track of: that is a bug, so it is counted, shown in the
run's artifact and recorded as an ``accounting`` failure (so it still ends in
``fetch_failures``, under its own URL).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from baotintuc.model import Failure

SKIPPED = {"known": "skipped_known", "old": "skipped_old", "deferred": "deferred"}


@dataclass(slots=True)
class Accounting:
    """Outcomes per article ID for one run."""

    decided: dict[str, str] = field(default_factory=dict)  # id -> spider's first outcome
    stored: set[str] = field(default_factory=set)
    filtered_old: set[str] = field(default_factory=set)  # published before --since
    failed: set[str] = field(default_factory=set)
    via: Counter[str] = field(default_factory=Counter)  # discovery source -> IDs

    def add_discoveries(self, rows: Iterable[dict[str, Any]]) -> None:
        """The spider's ``discovered.jsonl`` rows (memory: one short entry per ID)."""
        for row in rows:
            aid = str(row.get("article_id") or "")
            if not aid or not row.get("url"):
                continue
            if aid not in self.decided and row.get("outcome") != "alias":
                self.decided[aid] = sys.intern(str(row.get("outcome")))
                via = str(row.get("via") or "")
                self.via[via.split(":", 1)[0] or "?"] += 1

    def add_failures(self, failures: Iterable[Failure]) -> None:
        self.failed.update(f.article_id for f in failures if f.article_id)

    @property
    def discovered(self) -> int:
        return len(self.decided)

    def outcome(self, aid: str) -> str:
        """``stored``, ``skipped_known``/``skipped_old``/``deferred``, ``failed`` or ``lost``."""
        if aid in self.stored:
            return "stored"
        decided = self.decided.get(aid)
        if decided in SKIPPED:
            return SKIPPED[decided]
        if aid in self.filtered_old:
            return "skipped_old"
        if aid in self.failed:
            return "failed"
        return "lost"

    def tally(self) -> Counter[str]:
        return Counter(self.outcome(aid) for aid in self.decided)

    def lost(self, discoveries: Iterable[dict[str, Any]]) -> list[Failure]:
        """An ``accounting`` failure for every discovered ID with no outcome, under the
        first URL it was discovered with (``discoveries``: the same rows again)."""
        lost = {aid for aid in self.decided if self.outcome(aid) == "lost"}
        now = datetime.now(UTC)
        out: list[Failure] = []
        for row in discoveries:
            aid = str(row.get("article_id") or "")
            if aid in lost:
                lost.discard(aid)
                out.append(Failure(url=str(row.get("url")), stage="accounting", reason="lost",
                                   detail="discovered, then neither stored, skipped nor failed",
                                   at=now, article_id=aid))
        return out

    def check(self) -> dict[str, int]:
        """The invariant's figures: discovered, stored, skipped, failed, lost."""
        t = self.tally()
        skipped = t["skipped_known"] + t["skipped_old"] + t["deferred"]
        figures = {
            "discovered": self.discovered,
            "stored": t["stored"],
            "skipped": skipped,
            "skipped_known": t["skipped_known"],
            "skipped_old": t["skipped_old"],
            "deferred": t["deferred"],
            "failed": t["failed"],
            "lost": t["lost"],
        }
        assert figures["discovered"] == figures["stored"] + skipped + t["failed"] + t["lost"]
        return figures


__all__ = ["Accounting"]
