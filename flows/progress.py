"""A run's progress: a rich progress bar on a terminal and a Prefect progress artifact.

Both show pages requested, articles fetched and stored, the rate and the ETA. The total is
what the run has discovered so far and wants to fetch (it grows while listings and
sitemaps are read), so the ETA is an estimate that firms up as discovery ends.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

log = logging.getLogger(__name__)
ARTIFACT_EVERY_S = 10.0


@dataclass
class RunProgress:
    """Feed it the spider's counters and the loaded count; it draws and reports."""

    run_id: str
    show_bar: bool = field(default_factory=lambda: sys.stderr.isatty())
    started: float = field(default_factory=time.monotonic)
    _bar: Any = None
    _task: Any = None
    _artifact: UUID | None = None
    _last_artifact: float = 0.0

    def __enter__(self) -> RunProgress:
        if self.show_bar:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("articles", total=None, detail="starting")
        return self

    def update(self, spider: dict[str, Any], stored: int, *, final: bool = False) -> None:
        wanted = int(spider.get("article_requests", 0))
        fetched = int(spider.get("fetched", 0))
        pages = int(spider.get("requests", 0))
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = fetched / elapsed
        left = max(wanted - fetched, 0)
        eta = left / rate if rate > 0 else None
        detail = (
            f"{pages} requests, {fetched} fetched, {stored} stored, "
            f"{int(spider.get('pages_failed', 0)) + int(spider.get('failed', 0))} failures, "
            f"{rate:.1f}/s"
        )
        if self._bar is not None:
            self._bar.update(self._task, completed=fetched, total=max(wanted, fetched) or None,
                             detail=detail)
        now = time.monotonic()
        if final or now - self._last_artifact >= ARTIFACT_EVERY_S:
            self._last_artifact = now
            pct = 100.0 if final else (100.0 * fetched / wanted if wanted else 0.0)
            eta_text = f", ETA {eta / 60:.0f} min" if eta is not None and not final else ""
            self._report(min(pct, 100.0), f"{detail}{eta_text}")

    def _report(self, pct: float, description: str) -> None:
        try:
            from prefect.artifacts import create_progress_artifact, update_progress_artifact

            if self._artifact is None:
                self._artifact = create_progress_artifact(
                    pct, key="ingest-progress", description=description
                )
            else:
                update_progress_artifact(self._artifact, pct, description=description)
        except Exception as err:  # a progress report must never fail the run
            log.debug("progress artifact not updated: %s", err)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
