"""Process-wide setup that must happen before Prefect is imported.

Prefect reads its settings at import time, so the CLI calls :func:`prepare_prefect_env`
first: state goes under the project's ``data/prefect`` (never the home directory), and
telemetry that would try to reach the internet is switched off (shared/NOTES.md).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path


def prepare_prefect_env(prefect_home: Path) -> None:
    prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_UI_ENABLED", "true")
    # A quiet ephemeral server; its default start-up timeout is generous but bounded.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


class _ConsoleQuiet(logging.Filter):
    """Keep Prefect's tracebacks out of the terminal; the CLI prints one clear line.

    Flow- and task-run loggers send every record to the Prefect API first (their own
    handler), so the UI keeps the full traceback; only the copy that propagates to the
    terminal is dropped (failures) or stripped of its traceback (anything else).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name.startswith(("prefect.flow_runs", "prefect.task_runs")):
            return False
        record.exc_info = None
        record.exc_text = None
        return True


def quiet_console_tracebacks() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _ConsoleQuiet) for f in handler.filters):
            handler.addFilter(_ConsoleQuiet())
