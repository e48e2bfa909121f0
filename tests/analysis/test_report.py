"""``baotintuc report``: a self-contained HTML file, rendered by headless Chromium with
the network cut off, and the nightly quality-report flow that writes the same report."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import PROJECT_ROOT
from tests.analysis.conftest import read_only, writable_copy
from tests.support import run_cli
from warehouse.report.build import collect
from warehouse.report.words import top_phrases

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
README_IMG = PROJECT_ROOT / "docs" / "img" / "report.png"


@pytest.fixture(scope="module")
def report(warehouse: dict[str, Path]) -> Path:
    out = warehouse["root"] / "reports" / "report.html"
    proc = run_cli(warehouse["root"], "report", "--db", str(warehouse["db"]), "--since",
                   "2025-05-01", "--query", "lừa đảo", "--query", '"tham ô"', "--query",
                   "du lịch", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_report_is_one_self_contained_file(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # Nothing to fetch: no script, stylesheet, image or font by URL; links only to stories.
    assert "<script" not in html and "@import" not in html and "url(" not in html
    assert not re.search(r"<(img|link|iframe)[^>]+(src|href)=['\"]https?:", html)
    hrefs = re.findall(r"href='([^']+)'", html)
    assert hrefs and all(h.startswith("https://baotintuc.vn/") or h == "data:," for h in hrefs)
    for chart in ("articles-by-category", "attention", "top-authors", "top-tags", "top-words",
                  "top-phrases", "fill-rates", "parser-versions"):
        assert f'data-chart="{chart}"' in html, chart


def test_top_phrases_skip_stop_words_and_count_articles(warehouse: dict[str, Path]) -> None:
    with read_only(warehouse["db"]) as con:
        phrases = top_phrases(con, n=2, limit=30)
        data = collect(con, db_path="x", since=None, queries=["lừa đảo"])
        titles = [t.lower() for (t,) in con.execute(
            "select title || ' . ' || coalesce(sapo, '') from articles").fetchall()]
    assert phrases and all(p.pmi >= 1 for p in phrases)
    stops = {"và", "của", "các", "được", "trong", "là", "cho", "với"}
    assert not any(set(p.text.split()) & stops for p in phrases)
    top = phrases[0]
    assert top.articles == sum(1 for t in titles if re.search(
        rf"(?<!\w){re.escape(top.text)}(?!\w)", t))
    assert data.period == "month"  # 2020 to 2025: months
    assert sum(sum(v) for v in data.by_category.values()) == data.articles


@pytest.mark.browser
def test_chromium_renders_the_charts_offline(report: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's Chromium at /usr/bin/chromium (.ci/run installs it)")
    sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    from tests.test_ui_browser import CHROMIUM_ARGS

    requested: list[str] = []
    with sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1000, "height": 1100},
                                          offline=True)
            page = context.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.goto(report.as_uri())
            page.wait_for_selector("svg[data-chart='attention']")
            charts = page.eval_on_selector_all(
                "svg[data-chart]",
                "els => els.map(e => { const b = e.getBoundingClientRect(); return {"
                "name: e.dataset.chart, w: b.width, h: b.height, "
                "bars: e.querySelectorAll('rect.bar').length, "
                "lines: e.querySelectorAll('polyline.line').length}; })",
            )
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "report.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    by_name = {c["name"]: c for c in charts}
    assert by_name["articles-by-category"]["bars"] > 50
    assert by_name["attention"]["lines"] == 3
    assert by_name["top-authors"]["bars"] >= 10
    assert all(c["w"] > 100 and c["h"] > 50 for c in charts)
    assert [u for u in requested if not u.startswith("file://")] == []
    if os.environ.get("BTT_UPDATE_README_IMG") == "1":
        shutil.copy(shot, README_IMG)


@pytest.fixture()
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


def test_quality_flow_writes_the_html_report(
    warehouse: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    prefect_harness: Any,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.quality import quality_report

    db = writable_copy(warehouse, tmp_path)
    monkeypatch.setenv("BTT_ROOT", str(tmp_path))
    quality_report(db_path=str(db), hours=24 * 365 * 10)  # every article of the mirror
    written = list((tmp_path / "data" / "reports").glob("quality-*.html"))
    assert len(written) == 1
    assert 'data-chart="fill-rates"' in written[0].read_text(encoding="utf-8")

    async def latest() -> Any:
        async with get_client() as client:
            arts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["quality-report-html"]))
            )
        return max(arts, key=lambda a: a.created)

    import asyncio

    art = asyncio.run(latest())
    assert written[0].name in art.data and "articles published since" in art.data
