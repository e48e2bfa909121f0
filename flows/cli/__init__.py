"""``baotintuc``: the command line of the pipeline.

Exit codes: 0 the run completed (some pages may have failed: they are counted and
stored); 1 the run itself failed; 2 it could not start (offline, bad configuration,
database locked).
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from pathlib import Path

from config import ConfigError, get_settings
from flows.cli import analysis, demo, mirror, runs, server
from flows.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, fail


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="baotintuc",
        description="Scrape baotintuc.vn into DuckDB: Scrapy, trafilatura, Prefect.",
        epilog="Exit codes: 0 completed, 1 the run failed, 2 could not start, 130 interrupted.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for group in (runs, demo, analysis, server, mirror):
        group.register(sub)
    return p


def _log_to_file() -> Path | None:
    """Full logs, tracebacks included, go to ``<data>/logs/baotintuc.log``; the terminal
    gets warnings without tracebacks (and the one line of :func:`fail`)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call otherwise
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(_OneLine("%(levelname)s %(name)s: %(message)s"))
    console.addFilter(_ours)
    root.addHandler(console)
    try:
        path = get_settings().paths.data_dir / "logs" / "baotintuc.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=10 * 1024 * 1024, backupCount=3, encoding="utf-8"
        )
    except (ConfigError, OSError):
        return None  # the command reports a bad configuration itself
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path


def _ours(record: logging.LogRecord) -> bool:
    """The terminal shows our warnings only. Prefect's flow and task loggers report to the
    API (the UI) and the log file; their copy would repeat the line :func:`fail` prints."""
    return not record.name.startswith("prefect") and not getattr(record, "file_only", False)


class _OneLine(logging.Formatter):
    """A record without its traceback (which the log file keeps: the record is shared by
    every handler, so it is not changed, only formatted without it)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_path = _log_to_file()
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return fail(f"bad configuration: {exc}")
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # a bug: one line here, the traceback in the log
        logging.getLogger("baotintuc").error("unexpected error in %s", args.command,
                                             exc_info=True, extra={"file_only": True})
        where = f"; the traceback is in {log_path}" if log_path else ""
        text = " ".join(str(exc).split())[:300]
        return fail(f"unexpected error: {type(exc).__name__}: {text}{where}", EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
