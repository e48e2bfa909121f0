"""Helpers the tests import: paths, CLI runs, and the session's one Prefect server.

They live here, not in ``conftest.py``: pytest imports ``tests/conftest.py`` as the
module ``conftest``, so a test importing ``tests.conftest`` would get a second copy, with
its own session server that the session's end never stops.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BAOTINTUC = Path(sys.executable).with_name("baotintuc")


class _SessionServer:
    """One real Prefect server for the whole test session, started on first need.

    Started as the CLI starts its local background server
    (:class:`flows.prefect_server.LocalServer`: CSRF on, CORS limited to its UI, telemetry
    off) on a free loopback port with a tmp ``PREFECT_HOME``; stopped at the end of the
    session (``pytest_sessionfinish``). A session that runs no CLI never starts it.
    """

    server: Any = None
    home: Path | None = None

    @classmethod
    def get(cls) -> PrefectTestServer:
        if cls.server is None:
            from flows.prefect_server import LocalServer, free_port

            cls.home = Path(tempfile.mkdtemp(prefix="btt-prefect-"))
            server = LocalServer(home=cls.home, port=free_port(), startup_timeout=120,
                                 log_level="WARNING")
            server.start()
            cls.server = server
        pid = cls.server.pid()
        assert pid is not None and cls.home is not None, (
            f"the session's Prefect server did not stay up; see {cls.home}")
        return PrefectTestServer(cls.server.api_url, cls.server.ui_url, cls.home, pid)

    @classmethod
    def stop(cls) -> None:
        if cls.server is not None:
            cls.server.stop()
            cls.server = None
        if cls.home is not None:
            shutil.rmtree(cls.home, ignore_errors=True)
            cls.home = None


@dataclass(frozen=True)
class PrefectTestServer:
    """The session's Prefect server: what a test needs to talk to it."""

    api_url: str
    ui_url: str
    home: Path
    pid: int


def cli_env(root: Path, *, temporary_server: bool = False) -> dict[str, str]:
    """Environment for a CLI subprocess whose data live under ``root``.

    By default its flow runs report to the session's Prefect server (started once, on
    first need: no start-up per run). ``temporary_server=True`` gives the run Prefect's
    temporary in-process server instead (slow, ~10-20 s a run: only for tests of the
    server handling itself).
    """
    env = dict(os.environ)
    env["BTT_ROOT"] = str(root)
    env["PREFECT_HOME"] = str(root / "prefect")
    env["BTT_PREFECT_SERVER__BACKGROUND"] = "false"  # never start a background server
    env.pop("PREFECT_API_AUTH_STRING", None)
    if temporary_server:
        env.pop("PREFECT_API_URL", None)
    else:
        env["PREFECT_API_URL"] = _SessionServer.get().api_url
    return env


def prefect_cli_env(root: Path, server: PrefectTestServer) -> dict[str, str]:
    """:func:`cli_env` pointing at ``server`` (kept for tests that name the fixture)."""
    env = cli_env(root)
    env["PREFECT_API_URL"] = server.api_url
    return env


def copy_of(ingested: dict[str, Any], tmp_path: Path) -> Path:
    """A writable copy of the session's warehouse (its archive stays shared, read-only:
    ``archive_segments`` names the files by absolute path)."""
    target = tmp_path / "copy.duckdb"
    shutil.copy(ingested["db"], target)
    return target


def run_cli(root: Path, *args: str, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BAOTINTUC), *args], cwd=REPO, env={**cli_env(root), **(env or {})},
        capture_output=True, text=True, timeout=timeout, check=False,
    )
