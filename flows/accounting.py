"""The run's accounting: every discovered article ends stored, skipped or failed.

The invariant, per article ID: ``discovered = stored + skipped + failed``. The spider
says what it decided for each ID it found (``discovered.jsonl``); the flow adds what the
archive gave (stored, filtered by ``since``) and every failure row that names the ID. An
ID with none of these was lost track of: that is a bug, so it is counted, shown in the
run's artifact and recorded as an ``accounting`` failure (so it still ends in
``fetch_failures``, under its own URL).

An ID the spider found only as a print view (``-n<ID17>``, outcome ``print_only``) was
discovered and not fetched: it is recorded as a ``print_view_only`` failure under that
URL (:meth:`Accounting.print_only_failures`), unless another URL of it was found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from baotintuc.model import Failure
from crawler.compact import IdLabels, IdSet

SKIPPED = {"known": "skipped_known", "old": "skipped_old", "deferred": "deferred"}
NOT_DECIDING = ("alias", "print_only")  # outcomes that leave the ID's decision open
STAGE_OF_VIA = {"rss": "feed", "listing": "listing", "sitemap": "sitemap"}


@dataclass(slots=True)
class Accounting:
    """Outcomes per article ID for one run.

    The IDs are kept in ~16 bytes each (:mod:`crawler.compact`), not as Python strings
    (~100): a backfill of the whole site (~1M articles) would otherwise carry ~200 MB of
    them in the flow's process to the end of the run.
    """

    decided: IdLabels = field(default_factory=IdLabels)  # id -> spider's first outcome
    stored: IdSet = field(default_factory=IdSet)
    filtered_old: IdSet = field(default_factory=IdSet)  # published before --since
    failed: IdSet = field(default_factory=IdSet)
    via: Counter[str] = field(default_factory=Counter)  # discovery source -> IDs
    print_only: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (url, via)

    def add_discoveries(self, rows: Iterable[dict[str, Any]]) -> None:
        """The spider's ``discovered.jsonl`` rows (memory: one short entry per ID)."""
        for row in rows:
            aid = str(row.get("article_id") or "")
            if not aid or not row.get("url"):
                continue
            outcome = str(row.get("outcome"))
            via = str(row.get("via") or "")
            if outcome == "print_only":
                self.print_only.setdefault(aid, (str(row.get("url")), via))
            elif aid not in self.decided and outcome not in NOT_DECIDING:
                self.decided[aid] = outcome
                self.via[via.split(":", 1)[0] or "?"] += 1

    def print_only_failures(self) -> list[Failure]:
        """A ``print_view_only`` failure for every ID found only as a print view; from
        then on the ID counts as discovered (and failed)."""
        now = datetime.now(UTC)
        out = []
        for aid, (url, via) in self.print_only.items():
            if aid in self.decided:
                continue
            self.decided[aid] = "print_only"
            self.via[via.split(":", 1)[0] or "?"] += 1
            out.append(Failure(url=url, stage=STAGE_OF_VIA.get(via.split(":", 1)[0], "listing"),
                               reason="print_view_only",
                               detail="linked only as a print view; not fetched", at=now,
                               article_id=aid))
        return out

    def add_failures(self, failures: Iterable[Failure]) -> None:
        self.failed.update(f.article_id for f in failures if f.article_id)

    @property
    def discovered(self) -> int:
        return len(self.decided)

    def outcome(self, aid: str) -> str:
        """``stored``, ``skipped_known``/``skipped_old``/``deferred``, ``failed`` or ``lost``."""
        return self._outcome(aid, self.decided.get(aid))

    def _outcome(self, aid: str, decided: str | None) -> str:
        if aid in self.stored:
            return "stored"
        if decided in SKIPPED:
            return SKIPPED[decided]
        if aid in self.filtered_old:
            return "skipped_old"
        if aid in self.failed:
            return "failed"
        return "lost"

    def tally(self) -> Counter[str]:
        return Counter(self._outcome(aid, decided) for aid, decided in self.decided.items())

    def fetch_failures(self, failures: Iterable[Failure]) -> tuple[int, int]:
        """``(failed, tried)``: of the articles the spider requested, how many ended in a
        failure of the article fetch and were not stored anyway."""
        tried = sum(1 for _, decided in self.decided.items() if decided == "request")
        failed = {f.article_id for f in failures
                  if f.stage == "article" and f.article_id
                  and self.decided.get(f.article_id) == "request"
                  and f.article_id not in self.stored}
        return len(failed), tried

    def lost(self, discoveries: Iterable[dict[str, Any]]) -> list[Failure]:
        """An ``accounting`` failure for every discovered ID with no outcome, under the
        first URL it was discovered with (``discoveries``: the same rows again)."""
        lost = {aid for aid, decided in self.decided.items()
                if self._outcome(aid, decided) == "lost"}
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
