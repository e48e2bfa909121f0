"""What every ``baotintuc`` command shares: exit codes, one-line failures, argument types."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from config import Settings, load_settings

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_START, EXIT_INTERRUPTED = 0, 1, 2, 130


def fail(msg: str, code: int = EXIT_CANNOT_START) -> int:
    """Print one ``baotintuc: <msg>`` line on stderr and return ``code``."""
    print(f"baotintuc: {msg}", file=sys.stderr)
    return code


def probe_origin(base_url: str, timeout: float) -> str | None:
    """None if a TCP connection to the origin opens within ``timeout``, else why not."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as exc:
            outcome.append(exc.strerror or exc.__class__.__name__)

    t = threading.Thread(target=attempt, daemon=True)  # getaddrinfo has no timeout of its own
    t.start()
    t.join(timeout + 1)
    return outcome[0] if outcome else f"no answer within {timeout:.0f} s"


def parse_since(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since wants YYYY-MM-DD, got {value!r}") from None


def positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return n


def settings_for_flows() -> Settings:
    """Settings, with Prefect's environment prepared (Prefect reads it at import time).

    [server branch] Also points Prefect at its server: ``PREFECT_API_URL`` if set (it must
    answer as Prefect of our version), else the local background server, started on first
    need (one line on stderr). Runs left "Running" by a killed CLI process of this host
    are marked Crashed, and every flow run this process starts is tagged with its owner
    and sends heartbeats (a server automation crashes runs that fall silent).
    Exits 2 with one line when no server can be used.
    """
    settings = load_settings()
    from flows.runtime import prepare_prefect_env

    prepare_prefect_env(settings.paths.prefect_home, settings.prefect_server.heartbeat_seconds)
    if settings.prefect_server.background or os.environ.get("PREFECT_API_URL"):
        from flows.abandoned import ensure_heartbeat_automation, mark_abandoned_runs
        from flows.prefect_server import ServerUnavailable, ensure_api, use_api

        try:
            use_api(ensure_api(settings, announce=lambda line: fail(line, EXIT_OK)))
        except ServerUnavailable as exc:
            raise SystemExit(fail(str(exc))) from None
        try:
            mark_abandoned_runs()
            ensure_heartbeat_automation(settings.prefect_server.crash_silent_runs_after_seconds)
        except Exception as exc:  # housekeeping must never block a run
            logging.getLogger(__name__).warning("could not check for abandoned runs: %s", exc)
    else:  # Prefect's temporary in-process server, one per run: nothing outlives the run
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from flows.runtime import claim_flow_runs

    claim_flow_runs()
    return settings


def check_writable(settings: Settings, db: Path) -> str | None:
    """Every directory a run writes to must be writable: say which one is not."""
    p = settings.paths
    for name, folder in (
        ("--db / paths.db_path", db.parent),
        ("paths.data_dir", p.data_dir),
        ("paths.raw_dir", p.raw_dir),
        ("paths.runs_dir", p.runs_dir),
    ):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            return f"setting {name}: directory {folder} is not writable ({exc.strerror})"
    return None
