"""What every ``baotintuc`` command shares: exit codes, one-line failures, argument types."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

from config import Settings, get_settings

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_START, EXIT_INTERRUPTED = 0, 1, 2, 130


def fail(msg: str, code: int = EXIT_CANNOT_START) -> int:
    """Print one ``baotintuc: <msg>`` line on stderr and return ``code``."""
    print(f"baotintuc: {msg}", file=sys.stderr)
    return code


def parse_since(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since wants YYYY-MM-DD, got {value!r}") from None


def non_negative(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be ≥ 0")
    return n


def positive(value: str) -> int:
    n = non_negative(value)
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
    settings = get_settings()
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
    """Every directory a run writes to must be writable: say which one is not.

    The probe is a file of a unique name (``tempfile``): with one fixed name, two runs
    starting together (an hourly crawl during a backfill) removed each other's probe and
    one of them failed as "not writable (No such file or directory)".
    """
    p = settings.paths
    for name, folder in (
        ("--db / paths.db_path", db.parent),
        ("paths.data_dir", p.data_dir),
        ("paths.raw_dir", p.raw_dir),
        ("paths.runs_dir", p.runs_dir),
    ):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder, prefix=".write-probe-") as probe:
                probe.write(b"ok")
        except OSError as exc:
            return f"setting {name}: directory {folder} is not writable ({exc.strerror})"
    return None
