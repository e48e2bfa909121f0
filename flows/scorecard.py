"""A run's quality scorecard and the layout-drift gate.

When baotintuc.vn changes its markup, the first sign is a field that stops filling (or
pages falling through to the generic parser). The gate turns that into a Failed run
whose message names the field and shows example URLs.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SCORED_FIELDS: tuple[str, ...] = (
    "title",
    "sapo",
    "body_text",
    "published_at",
    "byline",
    "authors",
    "source",
    "category",
    "category_id",
    "tags",
    "images",
)
GENERIC_PREFIX = "generic"


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
        rows: list[dict[str, Any]] = [
            {
                "metric": f"fill: {f.field}",
                "value": round(f.fill_rate, 4),
                "threshold": f.threshold,
                "ok": f.passed,
            }
            for f in self.fields.values()
        ]
        rows += [
            {"metric": f"body chars: {k}", "value": v, "threshold": None, "ok": None}
            for k, v in self.body_chars.items()
        ]
        rows += [
            {"metric": f"parser: {k}", "value": v, "threshold": None, "ok": None}
            for k, v in self.parser_versions.items()
        ]
        rows.append(
            {
                "metric": "date disagreements",
                "value": self.date_disagreements,
                "threshold": None,
                "ok": None,
            }
        )
        rows.append(
            {
                "metric": "generic parser share",
                "value": round(self.generic_share, 4),
                "threshold": None,
                "ok": None,
            }
        )
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


def is_filled(value: Any) -> bool:
    """The scorecard's notion of a filled field: non-blank text, non-empty list, any value."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | dict):
        return bool(value)
    return True


def score(
    rows: Sequence[Mapping[str, Any]],
    thresholds: Mapping[str, float],
    *,
    max_generic_share: float = 0.0,
    min_pages: int = 5,
) -> Scorecard:
    """Score the rows a run parsed; ``alarms`` is empty when the gate passes.

    The gate only judges runs with at least ``min_pages`` pages: two odd pages are news,
    not a redesign.
    """
    total = len(rows)
    fields: dict[str, FieldScore] = {}
    for name in dict.fromkeys([*SCORED_FIELDS, *thresholds]):
        missing = [r.get("url", "?") for r in rows if not is_filled(r.get(name))]
        fields[name] = FieldScore(
            name, total - len(missing), total, thresholds.get(name), missing[:3]
        )
    versions = Counter(str(r.get("parser_version")) for r in rows)
    generic = [
        r.get("url", "?")
        for r in rows
        if str(r.get("parser_version", "")).startswith(GENERIC_PREFIX)
    ]
    lengths = sorted(len(r.get("body_text") or "") for r in rows)
    body = (
        {
            "min": lengths[0],
            "median": statistics.median(lengths),
            "max": lengths[-1],
            "p10": lengths[len(lengths) // 10],
        }
        if lengths
        else {}
    )
    card = Scorecard(
        pages=total,
        fields=fields,
        parser_versions=dict(versions.most_common()),
        generic_share=len(generic) / total if total else 0.0,
        generic_examples=generic[:3],
        date_disagreements=sum(1 for r in rows if r.get("date_disagreement")),
        body_chars=body,
        alarms=[],
    )
    if total >= min_pages:
        for f in fields.values():
            if f.passed is False:
                card.alarms.append(
                    f"{f.field} filled in {f.fill_rate:.1%} of {total} pages "
                    f"(threshold {f.threshold:.0%}), e.g. {', '.join(f.examples)}"
                )
        if card.generic_share > max_generic_share:
            card.alarms.append(
                f"{card.generic_share:.1%} of pages fell to the generic parser "
                f"(allowed {max_generic_share:.0%}), e.g. {', '.join(generic[:3])}"
            )
    return card
