"""The run's accounting (discovered = stored + skipped + failed), and what it costs a
long run in memory."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta

from baotintuc.model import Failure
from crawler.compact import IdLabels, IdSet
from flows.accounting import Accounting

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _id(i: int) -> str:
    return f"{NOW + timedelta(seconds=61 * i):%Y%m%d%H%M%S}{i % 1000:03d}"


def _failure(aid: str, stage: str = "article") -> Failure:
    return Failure(url=f"https://baotintuc.vn/a-{aid}.htm", stage=stage, reason="http_500",
                   detail="", at=NOW, article_id=aid)


def test_every_discovered_id_ends_in_exactly_one_outcome() -> None:
    ids = [_id(i) for i in range(8)]
    acc = Accounting()
    acc.add_discoveries([
        {"article_id": ids[0], "url": "u0", "outcome": "request", "via": "rss:tin-moi"},
        {"article_id": ids[1], "url": "u1", "outcome": "request", "via": "listing:x"},
        {"article_id": ids[1], "url": "u1b", "outcome": "known", "via": "listing:x"},  # 1st wins
        {"article_id": ids[2], "url": "u2", "outcome": "known", "via": "sitemap"},
        {"article_id": ids[3], "url": "u3", "outcome": "old", "via": "listing:x"},
        {"article_id": ids[4], "url": "u4", "outcome": "request", "via": "listing:x"},
        {"article_id": ids[5], "url": "u5", "outcome": "alias", "via": "listing:x"},  # no say
        {"article_id": ids[6], "url": "u6", "outcome": "print_only", "via": "listing:x"},
        {"article_id": ids[7], "url": "u7", "outcome": "request", "via": "listing:x"},
        {"article_id": "", "url": "u8", "outcome": "request", "via": "listing:x"},
    ])
    acc.stored.update([ids[0], ids[1]])
    acc.add_failures([_failure(ids[4])])
    assert [f.article_id for f in acc.print_only_failures()] == [ids[6]]
    acc.add_failures([_failure(ids[6], "listing")])

    assert acc.outcome(ids[0]) == "stored"
    assert acc.outcome(ids[1]) == "stored"
    assert acc.outcome(ids[2]) == "skipped_known"
    assert acc.outcome(ids[3]) == "skipped_old"
    assert acc.outcome(ids[4]) == "failed"
    assert acc.outcome(ids[6]) == "failed"
    assert acc.outcome(ids[7]) == "lost"
    assert ids[5] not in acc.decided
    assert acc.check() == {"discovered": 7, "stored": 2, "skipped": 2, "skipped_known": 1,
                           "skipped_old": 1, "deferred": 0, "failed": 2, "lost": 1}
    lost = acc.lost([{"article_id": ids[7], "url": "u7"}, {"article_id": ids[7], "url": "x"}])
    assert [(f.url, f.reason) for f in lost] == [("u7", "lost")]
    assert acc.via == {"rss": 1, "listing": 5, "sitemap": 1}


def test_fetch_failures_count_only_requested_articles_not_stored_anyway() -> None:
    ids = [_id(i) for i in range(5)]
    acc = Accounting()
    acc.add_discoveries([{"article_id": a, "url": a, "outcome": o, "via": "listing:x"}
                         for a, o in zip(ids, ["request", "request", "request", "known",
                                               "request"], strict=True)])
    acc.stored.add(ids[1])  # failed once, then stored by a retry
    failures = [_failure(ids[0]), _failure(ids[0]), _failure(ids[1]), _failure(ids[3]),
                _failure(ids[2], "parse")]
    assert acc.fetch_failures(failures) == (1, 4)


def test_id_set_and_labels_keep_any_string() -> None:
    s = IdSet(["20261207000000001", "x-1", "0123", "20261207000000001"])
    assert len(s) == 3
    assert "20261207000000001" in s and "x-1" in s and "0123" in s
    assert "123" not in s and "20261207000000002" not in s and 5 not in s
    assert sorted(s) == sorted(["20261207000000001", "x-1", "0123"])
    labels = IdLabels()
    labels["20261207000000001"] = "request"
    labels["x"] = "known"
    labels["20261207000000001"] = "old"  # set again: replaced
    assert labels.get("20261207000000001") == "old" and labels.get("x") == "known"
    assert labels.get("20261207000000002") is None and len(labels) == 2
    assert dict(labels.items()) == {"20261207000000001": "old", "x": "known"}


def test_a_long_runs_accounting_costs_a_few_bytes_an_article() -> None:
    """Every article of a backfill is decided and stored: as Python strings that was
    ~210 bytes an article for the whole run (~200 MB for the site's ~1M articles)."""
    n = 50_000
    # Each ID a new string, as read from discovered.jsonl and from each loaded article.
    rows = ({"article_id": _id(i), "url": "u", "outcome": "request", "via": "listing:x"}
            for i in range(n))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        acc = Accounting()
        acc.add_discoveries(rows)
        for i in range(0, n, 200):
            acc.stored.update(_id(j) for j in range(i, i + 200))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert acc.check()["stored"] == n
    assert grown / n < 48, f"{grown / n:.0f} bytes an article"
