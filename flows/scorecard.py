"""A run's quality scorecard and the layout-drift gate.

When baotintuc.vn changes its markup, the first sign is a field that stops filling (or
pages falling through to the generic parser). The gate turns that into a Failed run
whose message names the field and shows example URLs. The fields on the card are those
marked ``scored`` in :mod:`baotintuc.model`; "filled" is :func:`baotintuc.model.is_filled`.

Runs are loaded in batches, so the card accumulates (:class:`ScoreAccumulator`) and each
batch is judged on its own rows, or on the run so far when it is too small to judge.
"""

from __future__ import annotations

import statistics
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from baotintuc.model import SCORED_FIELDS, Article, is_filled

GENERIC_PREFIX = "generic"
MAX_EXAMPLES = 3


class LayoutDriftAlarm(RuntimeError):
    """Fill rates fell below their thresholds: the site's markup probably changed."""


@dataclass(slots=True)
class FieldScore:
    field: str
    filled: int
    total: int
    threshold: float | None
    examples: list[str] = field(default_factory=list)  # URLs of rows missing the field

    @property
    def fill_rate(self) -> float:
        return self.filled / self.total if self.total else 0.0

    @property
    def passed(self) -> bool | None:
        if self.threshold is None or not self.total:
            return None
        return self.fill_rate >= self.threshold


@dataclass(slots=True)
class Scorecard:
    pages: int
    fields: dict[str, FieldScore]
    parser_versions: dict[str, int]
    generic_share: float
    generic_examples: list[str]
    date_disagreements: int
    body_chars: dict[str, float]
    alarms: list[str]

    def as_table(self) -> list[dict[str, Any]]:
        def metric(name: str, value: Any, threshold: Any = None, ok: Any = None) -> dict[str, Any]:
            return {"metric": name, "value": value, "threshold": threshold, "ok": ok}

        rows = [
            metric(f"fill: {f.field}", round(f.fill_rate, 4), f.threshold, f.passed)
            for f in self.fields.values()
        ]
        rows += [metric(f"body chars: {k}", v) for k, v in self.body_chars.items()]
        rows += [metric(f"parser: {k}", v) for k, v in self.parser_versions.items()]
        rows.append(metric("date disagreements", self.date_disagreements))
        rows.append(metric("generic parser share", round(self.generic_share, 4)))
        return rows

    def for_warehouse(self) -> dict[str, Any]:
        """``run_quality`` rows: one per field, plus the run-level metrics."""
        out: dict[str, Any] = {
            f.field: {
                "fill_rate": f.fill_rate,
                "filled": f.filled,
                "total": f.total,
                "threshold": f.threshold,
                "passed": f.passed,
                "examples": f.examples,
            }
            for f in self.fields.values()
        }
        out["_body_chars"] = {"fill_rate": None, "total": self.pages, **self.body_chars}
        out["_parser_versions"] = {"fill_rate": None, "total": self.pages, **self.parser_versions}
        out["_date_disagreements"] = {
            "fill_rate": None,
            "filled": self.date_disagreements,
            "total": self.pages,
        }
        out["_generic_share"] = {"fill_rate": self.generic_share, "total": self.pages}
        return out


def _value(row: Article | Mapping[str, Any], name: str) -> Any:
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def is_generic(row: Article | Mapping[str, Any]) -> bool:
    return str(_value(row, "parser_version") or "").startswith(GENERIC_PREFIX)


@dataclass(slots=True)
class ScoreAccumulator:
    """Fill counts of every scored field, added batch by batch."""

    thresholds: Mapping[str, float]
    max_generic_share: float = 0.0
    min_pages: int = 5
    pages: int = 0
    filled: Counter[str] = field(default_factory=Counter)
    missing_examples: dict[str, list[str]] = field(default_factory=dict)
    versions: Counter[str] = field(default_factory=Counter)
    generic: int = 0
    generic_examples: list[str] = field(default_factory=list)
    disagreements: int = 0
    # 8 bytes an article (a list of ints is ~36): the run's card lives to its end.
    body_lengths: array[int] = field(default_factory=lambda: array("q"))

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys([*SCORED_FIELDS, *self.thresholds]))

    def add(self, rows: Iterable[Article | Mapping[str, Any]]) -> ScoreAccumulator:
        for row in rows:
            self.pages += 1
            url = str(_value(row, "url") or "?")
            for name in self.names:
                if is_filled(_value(row, name)):
                    self.filled[name] += 1
                else:
                    examples = self.missing_examples.setdefault(name, [])
                    if len(examples) < MAX_EXAMPLES:
                        examples.append(url)
            self.versions[str(_value(row, "parser_version"))] += 1
            if is_generic(row):
                self.generic += 1
                if len(self.generic_examples) < MAX_EXAMPLES:
                    self.generic_examples.append(url)
            if _value(row, "date_disagreement"):
                self.disagreements += 1
            self.body_lengths.append(len(_value(row, "body_text") or ""))
        return self

    def card(self) -> Scorecard:
        total = self.pages
        fields = {
            name: FieldScore(name, self.filled[name], total, self.thresholds.get(name),
                             list(self.missing_examples.get(name, [])))
            for name in self.names
        }
        lengths = sorted(self.body_lengths)
        body = (
            {"min": lengths[0], "median": statistics.median(lengths), "max": lengths[-1],
             "p10": lengths[len(lengths) // 10]}
            if lengths
            else {}
        )
        card = Scorecard(
            pages=total,
            fields=fields,
            parser_versions=dict(self.versions.most_common()),
            generic_share=self.generic / total if total else 0.0,
            generic_examples=list(self.generic_examples),
            date_disagreements=self.disagreements,
            body_chars=body,
            alarms=[],
        )
        if total >= self.min_pages:
            for f in fields.values():
                if f.passed is False:
                    assert f.threshold is not None
                    card.alarms.append(
                        f"{f.field} filled in {f.fill_rate:.1%} of {total} pages "
                        f"(threshold {f.threshold:.0%}), e.g. {', '.join(f.examples)}"
                    )
            if card.generic_share > self.max_generic_share:
                card.alarms.append(
                    f"{card.generic_share:.1%} of pages fell to the generic parser "
                    f"(allowed {self.max_generic_share:.0%}), "
                    f"e.g. {', '.join(self.generic_examples)}"
                )
        return card


def score(
    rows: Sequence[Article | Mapping[str, Any]],
    thresholds: Mapping[str, float],
    *,
    max_generic_share: float = 0.0,
    min_pages: int = 5,
) -> Scorecard:
    """Score rows at once; ``alarms`` is empty when the gate passes.

    The gate only judges at least ``min_pages`` pages: two odd pages are news, not a
    redesign.
    """
    acc = ScoreAccumulator(thresholds, max_generic_share, min_pages)
    return acc.add(rows).card()
