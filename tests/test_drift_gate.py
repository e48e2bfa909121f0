"""The layout-drift gate: a site redesign fails the run loudly and stores nothing worse."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from baotintuc.clock import VN_TZ
from baotintuc.model import Article
from config import QualitySettings
from flows.scorecard import score
from flows.transform import Gate
from mirror.server import MirrorServer
from tests.support import run_cli

THRESHOLDS = {"title": 0.99, "body_text": 0.99, "sapo": 0.95}
QUALITY = QualitySettings(min_fill_rate=THRESHOLDS, max_generic_parser_share=0.0,
                          min_pages_for_gate=5)


def _article(i: int, **over: Any) -> Article:
    base = Article(
        article_id=f"2025071200000000{i}", url=f"https://baotintuc.vn/x/a-2025071200000000{i}.htm",
        title="T", sapo="S", body_text="B" * 300, body_markdown="B" * 300, byline=None,
        authors=[], source=None, published_at=datetime(2025, 7, 12, tzinfo=VN_TZ),
        modified_at=None, date_source="meta", date_disagreement=False, category="C",
        category_id=475, parent_category_id=0, tags=[], related_article_ids=[], word_count=1,
        kind="article", video_urls=[], images=[], parser_version="baotintuc-V2023-1",
        extractor_version="x",
    )
    return replace(base, **over)


def test_gate_names_the_field_and_shows_example_urls() -> None:
    rows = [_article(i) for i in range(8)] + [_article(8, sapo=""), _article(9, sapo=None)]
    card = score(rows, THRESHOLDS, min_pages=5)
    assert len(card.alarms) == 1
    alarm = card.alarms[0]
    assert alarm.startswith("sapo filled in 80.0% of 10 pages (threshold 95%)")
    assert rows[8].url in alarm and rows[9].url in alarm
    assert card.fields["sapo"].passed is False and card.fields["title"].passed is True


def test_gate_ignores_tiny_runs_and_holds_back_generic_pages() -> None:
    assert score([_article(0, sapo="")], THRESHOLDS, min_pages=5).alarms == []
    rows = [_article(i) for i in range(5)] + [_article(5, parser_version="generic-1")]
    gate = Gate(QUALITY)
    kept, held = gate.apply(rows)
    assert any("generic parser" in a and rows[5].url in a for a in gate.alarms)
    assert [(h.reason, h.article_id, h.stage) for h in held] == [
        ("quality_gate:generic_parser", rows[5].article_id, "quality")
    ]
    assert kept == rows[:5]


def test_small_batches_are_judged_on_the_run_so_far() -> None:
    gate = Gate(QUALITY)
    # Too few pages to judge at all (alone or with the run): loaded as they are.
    kept, held = gate.apply([_article(0), _article(1, title="")])
    assert len(kept) == 2 and not held and not gate.alarms
    kept, held = gate.apply([_article(i) for i in range(2, 8)])  # a healthy batch of 6
    assert len(kept) == 6 and not held and not gate.alarms  # judged alone: all titles
    # One more page without a title: too small alone; the run so far (7 of 9) alarms.
    kept, held = gate.apply([_article(8, title="")])
    assert gate.card().pages == 9 and gate.alarms and "title" in gate.alarms[0]
    assert not kept and [h.reason for h in held] == ["quality_gate:title"]


@pytest.fixture()
def drifted_site(tmp_path: Path, mirror_out: Path) -> Iterator[Path]:
    """A copy of the mirror whose article pages renamed the title's class (a redesign)."""
    site = tmp_path / "site"
    shutil.copytree(mirror_out / "site", site)
    changed = 0
    for page in site.rglob("*.htm"):
        text = page.read_text(encoding="utf-8")
        if 'class="detail-title"' in text:
            page.write_text(text.replace('class="detail-title"', 'class="headline-2026"'),
                            encoding="utf-8")
            changed += 1
    assert changed > 300
    yield site


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_drift_fails_the_run_and_keeps_stored_rows(
    tmp_path: Path, mirror_server: Any, drifted_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "drift.duckdb"
    first = run_cli(tmp_path, "crawl", "--base-url", mirror_server.base_url, "--db", str(db),
                    "--mode", "rss")
    assert first.returncode == 0, first.stderr[-2000:]
    query = "select article_id, content_hash, parser_version, title from articles order by 1"
    with duckdb.connect(str(db), read_only=True) as con:
        before = con.sql(query).fetchall()
    assert before and all(r[2].startswith("baotintuc-V2023") for r in before)

    # Every stored article is due for a re-check, and the site has been redesigned.
    monkeypatch.setenv("BTT_CRAWL__RECHECK_MAX_AGE_HOURS", "10000000")
    monkeypatch.setenv("BTT_CRAWL__RECHECK_INTERVAL_HOURS", "0.000001")
    with MirrorServer(drifted_site) as drifted:
        second = run_cli(tmp_path, "crawl", "--base-url", drifted.base_url, "--db", str(db),
                         "--mode", "rss")
    assert second.returncode == 1, second.stdout[-2000:] + second.stderr[-2000:]
    message = [ln for ln in second.stderr.splitlines() if ln.startswith("baotintuc:")]
    assert len(message) == 1 and "Traceback" not in second.stderr
    assert "layout drift" in message[0] and "generic parser" in message[0]
    assert "https://baotintuc.vn/" in message[0]

    with duckdb.connect(str(db), read_only=True) as con:
        after = con.sql(query).fetchall()
        status, run_message = con.execute(
            "select status, message from crawl_runs order by started_at desc limit 1"
        ).fetchone()
        held = con.execute(
            "select count(*) from fetch_failures where reason = 'quality_gate:generic_parser'"
        ).fetchone()[0]
        versions = con.execute("select count(*) from article_versions").fetchone()[0]
    assert after == before, "stored rows must not be overwritten by a drifted parse"
    assert versions == 0
    assert status == "drift_alarm" and "generic parser" in run_message
    assert 0 < held <= len(before)  # every re-checked article was held back


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_drift_alarm_is_a_failed_prefect_state(
    tmp_path: Path, drifted_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from flows.ingest import ingest

    monkeypatch.setenv("BTT_ROOT", str(tmp_path))
    with prefect_test_harness(), MirrorServer(drifted_site) as drifted:
        state = ingest(base_url=drifted.base_url, db_path=str(tmp_path / "p.duckdb"),
                       mode="rss", return_state=True)
    assert state.is_failed()
    assert "layout drift" in (state.message or "") and "generic parser" in (state.message or "")
