"""The Prefect UI shows an ingest run: headless Chromium (Playwright) against a real server.

A real ``baotintuc crawl`` (the offline mirror over HTTP into a tmp DuckDB file) reports to
the session's Prefect server (``prefect_server``: CSRF protection on, CORS limited to the
UI's origin, as the CLI starts it), so the UI is checked under those settings.
Chromium then opens the flow-run page (state Completed) and the ``ingest-summary``
artifact page (the summary table). Screenshots go to ``test-artifacts/``; with
``BTT_UPDATE_README_IMG=1`` the flow-run one also replaces ``docs/img/`` for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import PROJECT_ROOT
from tests.support import BAOTINTUC, PrefectTestServer, prefect_cli_env

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
README_IMG = PROJECT_ROOT / "docs" / "img" / "prefect-ui-flow-run.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 30_000

if not CHROMIUM.exists():
    pytest.skip(
        "needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium; "
        ".ci/run installs it)",
        allow_module_level=True,
    )
playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

RUN_LINE = re.compile(r"^run (?P<run_id>[0-9a-f-]{36}) from .*?: (?P<new>\d+) new", re.M)


@pytest.fixture(scope="module")
def ingest_run(
    prefect_server: PrefectTestServer, mirror_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One real ``baotintuc crawl`` against the mirror, reported to ``prefect_server``."""
    root = tmp_path_factory.mktemp("ui-run")
    proc = subprocess.run(
        [str(BAOTINTUC), "crawl", "--base-url", mirror_server.base_url,
         "--db", str(root / "ui.duckdb"), "--max-pages", "1"],
        cwd=PROJECT_ROOT, env=prefect_cli_env(root, prefect_server), capture_output=True,
        text=True, timeout=150, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    m = RUN_LINE.search(proc.stdout)
    assert m, proc.stdout
    result = {"run_id": m["run_id"], "new": int(m["new"])}
    assert result["new"] > 0, result
    return result


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with (
        tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile,
        playwright_sync.sync_playwright() as pw,
    ):
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
            timeout=UI_TIMEOUT_MS,
        )
        try:
            p = ctx.pages[0] if ctx.pages else ctx.new_page()
            p.set_default_timeout(UI_TIMEOUT_MS)
            yield p
        finally:
            ctx.close()


def _artifact_id(server: PrefectTestServer, flow_run_id: str) -> str:
    """The id of the run's ``ingest-summary`` artifact, read with Prefect's client (which
    fetches a CSRF token: a bare POST is refused)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: server.api_url}),
        get_client(sync_client=True) as client,
    ):
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["ingest-summary"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    assert len(arts) == 1 and arts[0].type == "table", arts
    return str(arts[0].id)


def test_flow_run_page_shows_completed_run(
    prefect_server: PrefectTestServer, ingest_run: dict[str, Any], page: Any
) -> None:
    expect = playwright_sync.expect
    page.goto(f"{prefect_server.ui_url}/runs/flow-run/{ingest_run['run_id']}")
    expect(page.get_by_text("ingest-baotintuc").first).to_be_visible()
    # The state badge (exact text), not the "Finished in state Completed()" log lines.
    expect(page.get_by_text("Completed", exact=True).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "prefect-ui-flow-run.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    if os.environ.get("BTT_UPDATE_README_IMG") == "1":  # refresh the README's picture
        README_IMG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_IMG)


def test_artifact_page_shows_summary_table(
    prefect_server: PrefectTestServer, ingest_run: dict[str, Any], page: Any
) -> None:
    expect = playwright_sync.expect
    artifact_id = _artifact_id(prefect_server, ingest_run["run_id"])
    page.goto(f"{prefect_server.ui_url}/artifacts/artifact/{artifact_id}")
    expect(page.get_by_text("ingest-summary").first).to_be_visible()
    table = page.locator("table").first
    expect(table).to_be_visible()
    expect(table.get_by_text("discovered", exact=True)).to_be_visible()
    expect(table.get_by_text("new", exact=True)).to_be_visible()
    expect(table.get_by_text(str(ingest_run["new"]), exact=True).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "prefect-ui-artifact.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
