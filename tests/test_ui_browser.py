"""The Prefect UI shows an ingest run: headless Chromium (Playwright) against a real server.

A real ``ingest`` flow run (the offline mirror over HTTP into a tmp DuckDB file) reports to
a Prefect server started by ``ensure_server``; the flow runs in a subprocess whose
environment carries ``PREFECT_API_URL``, so this process's Prefect settings stay untouched.
Chromium then opens the flow-run page (state Completed) and the ``ingest-summary``
artifact page (the summary table). Screenshots go to ``test-artifacts/``; with
``BTT_UPDATE_README_IMG=1`` the flow-run one also replaces ``docs/img/`` for the README.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import PROJECT_ROOT, load_settings
from flows.prefect_server import ServerHandle, ensure_server, free_port

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

RUN_INGEST = """
import json, sys
from flows.ingest import ingest
s = ingest(base_url=sys.argv[1], db_path=sys.argv[2], max_pages=1, mode="all")
print("RESULT " + json.dumps({"run_id": s.run_id, "new": s.new, "fetched": s.fetched}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    root = tmp_path_factory.mktemp("ui-prefect")
    settings = load_settings(root=root)
    with ensure_server(settings, port=free_port(), reuse_env=False, startup_timeout=90) as h:
        yield h


@pytest.fixture(scope="module")
def ingest_run(
    server: ServerHandle, mirror_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One real ``ingest`` flow run against the mirror, reported to ``server``."""
    root = tmp_path_factory.mktemp("ui-run")
    env = dict(os.environ) | {
        "PREFECT_API_URL": server.api_url,
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "BTT_ROOT": str(root),
    }
    proc = subprocess.run(
        [sys.executable, "-c", RUN_INGEST, mirror_server.base_url, str(root / "ui.duckdb")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
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


def _artifact_id(api_url: str, flow_run_id: str) -> str:
    """The id of the run's ``ingest-summary`` artifact, read over the REST API."""
    import httpx

    body = {
        "artifacts": {
            "key": {"any_": ["ingest-summary"]},
            "flow_run_id": {"any_": [flow_run_id]},
        }
    }
    r = httpx.post(f"{api_url}/artifacts/filter", json=body, timeout=10)
    r.raise_for_status()
    arts = r.json()
    assert len(arts) == 1 and arts[0]["type"] == "table", arts
    return str(arts[0]["id"])


def test_flow_run_page_shows_completed_run(
    server: ServerHandle, ingest_run: dict[str, Any], page: Any
) -> None:
    expect = playwright_sync.expect
    page.goto(f"{server.ui_url}/runs/flow-run/{ingest_run['run_id']}")
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
    server: ServerHandle, ingest_run: dict[str, Any], page: Any
) -> None:
    expect = playwright_sync.expect
    artifact_id = _artifact_id(server.api_url, ingest_run["run_id"])
    page.goto(f"{server.ui_url}/artifacts/artifact/{artifact_id}")
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
