"""The Prefect server the CLI uses: security (CSRF, CORS, auth string, imposters), the
background server's life cycle, CLI runs against it, and abandoned runs marked Crashed.

Real servers only: the session's ``prefect_server``, one more started by ``baotintuc
server start --require-auth`` for the life-cycle test, and a fake HTTP server on loopback
that answers ``/api/health`` like Prefect without being Prefect.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from config import PROJECT_ROOT
from flows.prefect_server import (
    LocalServer,
    ServerUnavailable,
    ensure_api,
    free_port,
    pid_alive,
    prefect_version,
    probe,
)
from tests.support import BAOTINTUC, PrefectTestServer, cli_env, prefect_cli_env
from tests.test_serve import api, client, wait_for

EVIL = "http://evil.example"


def call(
    method: str, url: str, headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


# --- CSRF and CORS on the server the CLI starts -------------------------------------------------


def test_cross_origin_requests_get_no_cors_grant(prefect_server: PrefectTestServer) -> None:
    url = f"{prefect_server.api_url}/flow_runs/filter"
    preflight = {"Origin": EVIL, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,prefect-csrf-token"}  # fmt: skip
    status, headers, _ = call("OPTIONS", url, preflight)
    assert status >= 400 and "access-control-allow-origin" not in headers
    _, headers, _ = call("GET", f"{prefect_server.api_url}/health", {"Origin": EVIL})
    assert "access-control-allow-origin" not in headers
    # The UI's own origin is granted.
    status, headers, _ = call("OPTIONS", url, preflight | {"Origin": prefect_server.ui_url})
    assert status == 200 and headers["access-control-allow-origin"] == prefect_server.ui_url


def test_state_changing_requests_need_a_csrf_token(prefect_server: PrefectTestServer) -> None:
    base = prefect_server.api_url
    status, _, body = call("POST", f"{base}/flows/", body={"name": "csrf-probe"})
    assert status == 403 and b"CSRF" in body
    status, _, _ = call("POST", f"{base}/flows/", {"Prefect-Csrf-Token": "guess",
                                                   "Prefect-Csrf-Client": "me"},
                        body={"name": "csrf-probe"})  # fmt: skip
    assert status == 403
    # A client that fetched its token (as Prefect's client and UI do) gets through.
    status, _, body = call("GET", f"{base}/csrf-token?client=test-client")
    assert status == 200
    token = json.loads(body)["token"]
    headers = {"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": "test-client"}
    status, _, body = call("POST", f"{base}/flows/", headers, body={"name": "csrf-probe"})
    assert status in (200, 201), body
    with api(prefect_server), client() as c:  # Prefect's own client fetches tokens itself
        assert c.read_flow_by_name("csrf-probe").name == "csrf-probe"


# --- imposters: something answers /api/health but is not our Prefect ---------------------------


class _FakeHandler(http.server.BaseHTTPRequestHandler):
    version_body = b'"not-json'

    def do_GET(self) -> None:  # noqa: N802
        body = b"true" if self.path == "/api/health" else self.version_body
        if self.path not in ("/api/health", "/api/admin/version"):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=["not-prefect", "other-version"])
def imposter(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A loopback HTTP server answering /api/health 200 ``true``: not Prefect at all, or
    a Prefect of another version."""
    handler = type("H", (_FakeHandler,), {})
    if request.param == "other-version":
        handler.version_body = b'"2.20.0"'
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield request.param, srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def test_an_imposter_named_by_prefect_api_url_is_refused(
    imposter: tuple[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind, port = imposter
    url = f"http://127.0.0.1:{port}/api"
    found = probe(url)
    assert found.healthy and not found.ok
    expected = "not a Prefect server" if kind == "not-prefect" else "runs Prefect 2.20.0"
    assert expected in found.why
    # The CLI: one line, exit 2, before any work.
    env = cli_env(tmp_path) | {"PREFECT_API_URL": url}
    proc = subprocess.run(
        [str(BAOTINTUC), "reextract", "--db", str(tmp_path / "x.duckdb")], cwd=PROJECT_ROOT,
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("baotintuc: ")
    assert f"PREFECT_API_URL={url}" in proc.stderr and expected in proc.stderr


def test_an_imposter_on_the_local_port_is_never_adopted(
    imposter: tuple[str, int], tmp_path: Path
) -> None:
    _, port = imposter
    local = LocalServer(home=tmp_path / "prefect", port=port, startup_timeout=5)
    with pytest.raises(ServerUnavailable, match="BTT_PREFECT_SERVER__PORT"):
        local.start()
    assert local.pid() is None and not (tmp_path / "prefect" / "server.pid").exists()


def test_another_prefect_server_on_our_port_is_not_adopted(
    prefect_server: PrefectTestServer, tmp_path: Path
) -> None:
    """Someone else's server (another PREFECT_HOME) on our port: say so, do not use it."""
    port = int(prefect_server.api_url.rsplit(":", 1)[1].split("/")[0])
    local = LocalServer(home=tmp_path / "prefect", port=port)
    with pytest.raises(ServerUnavailable, match=f"another Prefect server .*{prefect_version()}"):
        local.start()


def test_prefect_api_url_that_does_not_answer_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    from config import load_settings

    with pytest.raises(ServerUnavailable, match="does not answer") as err:
        ensure_api(load_settings(root=tmp_path))
    assert "\n" not in str(err.value)


# --- the background server's life cycle, with an auth string -------------------------------------


def _btt(root: Path, port: int, *args: str, extra: dict[str, str] | None = None) -> Any:
    env = cli_env(root, temporary_server=True) | {"BTT_PREFECT_SERVER__BACKGROUND": "true",
                           "BTT_PREFECT_SERVER__PORT": str(port)}  # fmt: skip
    env.pop("PREFECT_HOME")  # the CLI puts it under BTT_ROOT/data/prefect
    env.pop("PREFECT_API_AUTH_STRING", None)
    return subprocess.run(
        [str(BAOTINTUC), *args], cwd=PROJECT_ROOT, env=env | (extra or {}),
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_background_server_lifecycle_with_auth_string(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "data" / "prefect"
    assert _btt(tmp_path, port, "server", "status").returncode == 1

    # Two run commands at once: one starts the server on first need, saying so in one line
    # (with the log); the other waits for it; it keeps running after both exit.
    missing = tmp_path / "missing.duckdb"
    args = ("reextract", "--db", str(missing))
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: _btt(tmp_path, port, *args), range(2)))
    try:
        for run in both:
            assert run.returncode == 2 and "no database at" in run.stderr.splitlines()[-1]
        starting = [r.stderr.splitlines()[0] for r in both if len(r.stderr.splitlines()) == 2]
        assert len(starting) == 1, [r.stderr for r in both]
        assert "starting the Prefect server" in starting[0]
        assert str(home / "server.log") in starting[0]
        assert _btt(tmp_path, port, "server", "status").returncode == 0
    finally:
        assert _btt(tmp_path, port, "server", "stop").returncode == 0

    started = _btt(tmp_path, port, "server", "start", "--require-auth")
    assert started.returncode == 0, started.stderr
    try:
        assert started.stderr.count("\n") == 1 and "starting the Prefect server" in started.stderr
        auth_file = home / "auth-string"
        assert auth_file.stat().st_mode & 0o777 == 0o600
        pid = int((home / "server.pid").read_text())
        assert (home / "server.pid").stat().st_mode & 0o777 == 0o600
        os.kill(pid, 0)
        assert (home / "prefect.db").stat().st_mode & 0o077 == 0, "the server's files are private"

        api_url = f"http://127.0.0.1:{port}/api"
        assert probe(api_url).why.startswith("refuses no auth string")
        status, _, _ = call("GET", f"{api_url}/csrf-token?client=intruder")
        assert status == 401, "no CSRF token (so no write) without the auth string"
        auth = auth_file.read_text().strip()
        assert probe(api_url, auth).ok

        # A second start adopts it; status reports it.
        again = _btt(tmp_path, port, "server", "start")
        assert again.returncode == 0 and "already running" in again.stdout
        assert again.stderr == ""
        st = _btt(tmp_path, port, "server", "status")
        assert st.returncode == 0 and f"pid {pid}" in st.stdout and "auth string on" in st.stdout

        # A wrong auth string in the environment: one line, exit 2.
        wrong = _btt(tmp_path, port, "reextract", extra={"PREFECT_API_AUTH_STRING": "x:y"})
        assert wrong.returncode == 2 and "refuses a wrong auth string" in wrong.stderr
    finally:
        stopped = _btt(tmp_path, port, "server", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not (home / "server.pid").exists()
    assert not pid_alive(pid)
    assert not probe(f"http://127.0.0.1:{port}/api", timeout=1).reachable
    assert "no Prefect server" in _btt(tmp_path, port, "server", "stop").stdout


def test_prefect_server_stop_stops_our_server_too(tmp_path: Path) -> None:
    """Our PID file is Prefect's: ``prefect server stop`` with our PREFECT_HOME stops it."""
    local = LocalServer(home=tmp_path / "prefect", port=free_port(), startup_timeout=120)
    assert local.start()
    pid = local.pid()
    assert pid is not None
    try:
        env = dict(os.environ) | {"PREFECT_HOME": str(local.home)}
        proc = subprocess.run(
            [str(BAOTINTUC.with_name("prefect")), "server", "stop"], env=env,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        wait_for("the server to exit", lambda: local.pid() is None, 30)
    finally:
        local.stop()


def _processes_in(folder: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(os.readlink(proc / "cwd")).is_relative_to(folder):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_the_test_session_stops_its_prefect_server(tmp_path: Path) -> None:
    """A pytest session that used the shared server (through ``tests.support.cli_env``)
    leaves no server process and no server folder behind: CI machines run many sessions."""
    if not Path("/proc/self/cwd").exists():
        pytest.skip("needs Linux /proc to see the processes a session leaves")
    env = dict(os.environ) | {"TMPDIR": str(tmp_path)}
    env.pop("PREFECT_API_URL", None)
    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_cli_offline.py::test_bad_configuration_fails_at_start_naming_the_setting",
         f"--basetemp={tmp_path / 'inner'}"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    started = False  # the inner session did start a server (its folder appeared)
    while inner.poll() is None:
        started = started or any(tmp_path.glob("btt-prefect-*/server.pid"))
        time.sleep(0.1)
    output = inner.stdout.read() if inner.stdout else ""
    assert inner.returncode == 0, output[-3000:]
    assert started, "the inner session never started its Prefect server: nothing was tested"
    homes = list(tmp_path.glob("btt-prefect-*"))
    deadline = time.monotonic() + 10
    while _processes_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_in(tmp_path) == [], "the session's Prefect server outlived the session"
    assert homes == [], f"the session's server folder was left behind: {homes}"


# --- CLI runs against the server; abandoned runs ------------------------------------------------


def _runs_tagged(server: PrefectTestServer, tag_prefix: str, db: Path) -> list[Any]:
    with api(server), client() as c:
        runs = c.read_flow_runs(limit=200)
    return [
        r for r in runs
        if r.parameters.get("db_path") == str(db)
        and any(t.startswith(tag_prefix) for t in r.tags)
    ]  # fmt: skip


def test_a_killed_run_is_marked_crashed_by_the_next_cli_start(
    prefect_server: PrefectTestServer, mirror_server: Any, tmp_path: Path
) -> None:
    slow = {"BTT_CRAWL__LOOPBACK_POLITE": "true", "BTT_CRAWL__DOWNLOAD_DELAY": "0.5"}
    env = prefect_cli_env(tmp_path, prefect_server) | slow
    db = tmp_path / "killed.duckdb"
    proc = subprocess.Popen(
        [str(BAOTINTUC), "crawl", "--base-url", mirror_server.base_url, "--db", str(db),
         "--mode", "listings", "--max-pages", "3"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        [run] = wait_for(
            "the crawl's flow run to be Running",
            lambda: [r for r in _runs_tagged(prefect_server, "owner:", db)
                     if r.state_type.value == "RUNNING"],
            90,
        )  # fmt: skip
        assert f":{proc.pid}:" in next(t for t in run.tags if t.startswith("owner:"))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its Scrapy subprocess
        proc.wait(10)
    with api(prefect_server), client() as c:
        assert c.read_flow_run(run.id).state_type.value == "RUNNING", "still a phantom"

    # The next CLI start (any run command) marks it Crashed, then runs normally.
    other = tmp_path / "other.duckdb"
    nxt = subprocess.run(
        [str(BAOTINTUC), "crawl", "--base-url", mirror_server.base_url, "--db", str(other),
         "--mode", "rss"],
        cwd=PROJECT_ROOT, env=prefect_cli_env(tmp_path, prefect_server), capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert nxt.returncode == 0, nxt.stderr
    assert "Traceback" not in nxt.stderr and "prefect" not in nxt.stderr.lower()
    with api(prefect_server), client() as c:
        state = c.read_flow_run(run.id).state
    assert state.type.value == "CRASHED" and "abandoned" in state.message
    assert str(proc.pid) in state.message
    [done] = _runs_tagged(prefect_server, "owner:", other)
    assert done.state_type.value == "COMPLETED"


ZOMBIE_FLOW = """
import sys, time
from prefect import flow, tags

@flow(name="heartbeat-probe")
def heartbeat_probe() -> None:
    time.sleep(300)

with tags(sys.argv[1]):
    heartbeat_probe()
"""


def test_a_silent_flow_run_is_crashed_by_the_heartbeat_automation(
    prefect_server: PrefectTestServer, tmp_path: Path
) -> None:
    """No CLI start needed: the server crashes a run whose heartbeats stopped. The test's
    automation is the production one with a 12 s silence and limited to a tag of its own."""
    import sys
    import uuid

    from flows.abandoned import ensure_heartbeat_automation

    tag = f"heartbeat-test-{uuid.uuid4().hex[:8]}"
    with api(prefect_server), client() as c:
        assert ensure_heartbeat_automation(12, c, name=f"test {tag}", tag=tag)
        assert not ensure_heartbeat_automation(12, c, name=f"test {tag}", tag=tag)  # idempotent
    env = prefect_cli_env(tmp_path, prefect_server) | {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-c", ZOMBIE_FLOW, tag], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def tagged_runs() -> list[Any]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

        with api(prefect_server), client() as c:
            return list(c.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]))))  # fmt: skip

    try:
        [run] = wait_for("the probe to run", lambda: [
            r for r in tagged_runs() if r.state_type.value == "RUNNING"], 60)  # fmt: skip
        time.sleep(1)  # its first heartbeat leaves at once; let it land
    finally:
        proc.kill()
        proc.wait(10)
    try:
        [crashed] = wait_for("the automation to crash the run", lambda: [
            r for r in tagged_runs() if r.state_type.value == "CRASHED"], 120, every=2)  # fmt: skip
        assert "no heartbeat for 12 s" in crashed.state.message
    finally:
        with api(prefect_server), client() as c:
            for a in c.read_automations_by_name(f"test {tag}"):
                c.delete_automation(a.id)
