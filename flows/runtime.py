"""Process-wide setup that must happen before Prefect is imported, and run ownership.

Prefect reads its settings at import time, so the CLI calls :func:`prepare_prefect_env`
first: state goes under the project's ``data/prefect`` (never the home directory),
telemetry that would try to reach the internet is switched off (shared/NOTES.md), and
Prefect's records go to the API and ``<PREFECT_HOME>/prefect.log`` instead of the terminal
(``flows/prefect_logging.yml``).

:func:`claim_flow_runs` tags every flow run this process starts with its owner
(``owner:<host>:<pid>:<process start time>``) so that a run left behind by a killed
process can be found and marked Crashed later (:mod:`flows.abandoned`).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

LOGGING_CONFIG = Path(__file__).with_name("prefect_logging.yml")
OWNER_TAG_PREFIX = "owner:"


def prepare_prefect_env(prefect_home: Path, heartbeat_seconds: int | None = 30) -> None:
    prefect_home.mkdir(parents=True, exist_ok=True)
    if heartbeat_seconds:  # flow runs started here, and by a worker started here
        os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(heartbeat_seconds))
    os.environ.setdefault("PREFECT_HOME", str(prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", str(LOGGING_CONFIG))
    os.environ.setdefault("PREFECT_UI_ENABLED", "true")


def process_start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, Linux): tells a PID reused later apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner_tag(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{OWNER_TAG_PREFIX}{socket.gethostname()}:{pid}:{process_start_ticks(pid) or 0}"


def claim_flow_runs() -> None:
    """Tag every flow run started by this process (for the rest of its life) with its owner.

    Enters Prefect's tags context and never leaves it: flow calls made afterwards in this
    thread carry the tag. Call once, after :func:`prepare_prefect_env`.
    """
    from prefect.context import TagsContext

    current = TagsContext.get().current_tags
    if any(t.startswith(OWNER_TAG_PREFIX) for t in current):
        return
    TagsContext(current_tags=current | {owner_tag()}).__enter__()
