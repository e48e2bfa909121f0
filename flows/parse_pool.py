"""Parse closed archive segments in worker processes while the flow loads the previous ones.

Parsing is nearly all of the flow's work per page (measured on 4,000 mirror articles:
8.7 ms of CPU to parse a page, 0.8 ms to load it), and it is Python holding the GIL, so a
thread would not help: with the spider fetching in its own process, a worker process is
what puts the second core to work. ``run.parse_workers`` sets how many (0 parses in the
flow's process, as before); they start only once the flow has fallen behind.

Segments come back in the order they were given, so loading order (and the accounting of
a run cut short) does not change. Workers are started with ``spawn`` (the flow's process
has threads; forking it is unsafe) when :data:`BACKLOG` segments wait, so a run that
fetches little or slowly starts none. Their log records are relayed to this process's
loggers, so a reject logged while parsing lands in the same log file as before. A worker
that dies (killed, out of memory) is logged, and the segments it had are parsed here
instead: nothing is lost.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from pathlib import Path
from typing import Any

from crawler.memory import release_free_memory
from flows.transform import Parsed, parse_archive

log = logging.getLogger(__name__)

# Workers start when this many closed segments wait: a polite crawl of the live site
# closes a segment every ``archive.segment_seconds`` and the flow parses it in a second or
# two, so it never pays for a worker; a fast backfill (a mirror, a cache) soon does.
BACKLOG = 2


def _init_worker(queue: Any, level: int) -> None:
    """Worker start: send every log record to the flow's process; leave Ctrl-C to it
    (it stops the run and then the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(level)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker whose flow process was killed (SIGKILL, OOM) leaves too, instead of
    waiting for work forever."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def stop_parse_workers() -> None:
    """Terminate this process's parse workers now (the CLI's SIGTERM/Ctrl-C handler, which
    leaves with ``os._exit``): the segments they were parsing are loaded by the next run."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:  # reap them here: an orphaned zombie may never be reaped
        child.join(2.0)
        if child.is_alive():
            child.kill()
            child.join(1.0)


def _parse(path: str, since: date | None) -> Parsed:
    parsed = parse_archive(path, since)
    release_free_memory()
    return parsed


class _Relay(logging.Handler):
    """Hands a worker's record to the logger of the same name here."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


class SegmentParser:
    """Parses segments ahead of the loader, in order; a context manager.

    :meth:`add` queues a segment; :meth:`ready` yields ``(segment, parsed)`` for the
    segments at the head of the queue whose parse is done (without waiting);
    :meth:`drain` yields the rest, waiting. At most ``workers + 2`` segments are being
    parsed or waiting to be loaded at a time, so memory does not grow with a backlog.
    """

    def __init__(self, workers: int, since: date | None) -> None:
        self.workers = workers
        self.since = since
        self._queued: deque[Path] = deque()
        # Being parsed (a worker's future) or parsed here and waiting for its turn.
        self._running: deque[tuple[Path, Future[Parsed] | Parsed]] = deque()
        self._pool: ProcessPoolExecutor | None = None
        self._listener: logging.handlers.QueueListener | None = None
        self._help = False  # whether this process parses too (see ready)

    def __enter__(self) -> SegmentParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (a parse under way is abandoned: its segment stays unloaded,
        and the next run loads it)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def add(self, segment: Path) -> None:
        self._queued.append(segment)
        self._feed()

    def ready(self) -> Iterator[tuple[Path, Parsed]]:
        """The parsed segments at the head of the queue, in order, without waiting for the
        workers. After :meth:`drain` was called (the crawl is over), when the workers are
        all busy and more segments wait, this process parses the next one meanwhile (it
        would sit idle otherwise; a second worker for the backlog would cost more memory,
        and during the crawl the spider needs the core)."""
        while True:
            if self._running and self._is_done(self._running[0][1]):
                yield self._take()
            elif self._queued and self._pool is None and not self._running:
                segment = self._queued.popleft()  # no workers: parse here, now
                yield segment, _parse(str(segment), self.since)
            elif self._queued and self._pool is not None and self._help and (
                    len(self._running) <= self.workers + 1):
                segment = self._queued.popleft()
                self._running.append((segment, _parse(str(segment), self.since)))
            else:
                return

    def drain(self) -> Iterator[tuple[Path, Parsed]]:
        """Every queued segment, parsed, in order (waits for the workers)."""
        self._help = True
        while self._running or self._queued:
            yield from self.ready()
            if self._running:
                yield self._take()

    @staticmethod
    def _is_done(item: Future[Parsed] | Parsed) -> bool:
        return isinstance(item, Parsed) or item.done()

    def _take(self) -> tuple[Path, Parsed]:
        segment, item = self._running.popleft()
        if isinstance(item, Parsed):
            parsed = item
        else:
            try:
                parsed = item.result()
            except (BrokenProcessPool, CancelledError):  # (cancelled: by _broken's close)
                self._broken()
                parsed = _parse(str(segment), self.since)
        self._feed()
        return segment, parsed

    def _feed(self) -> None:
        """Hand queued segments to the workers, up to the in-flight bound."""
        if self.workers <= 0 or (self._pool is None and len(self._queued) < BACKLOG):
            return
        while self._queued and len(self._running) < self.workers + 1:
            pool = self._start()
            segment = self._queued[0]
            try:
                future = pool.submit(_parse, str(segment), self.since)
            except BrokenProcessPool:
                self._broken()
                return
            self._queued.popleft()
            self._running.append((segment, future))

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            self._listener = logging.handlers.QueueListener(queue, _Relay())
            self._listener.start()
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_init_worker,
                initargs=(queue, logging.getLogger().getEffectiveLevel()))
        return self._pool

    def _broken(self) -> None:
        """A worker died: parse the rest here. Every future of the broken pool raises
        ``BrokenProcessPool``, so :meth:`_take` parses those segments here in their turn,
        and the results already parsed here keep theirs."""
        if self.workers:
            log.warning("a parse worker died; parsing the rest of this run in the flow's "
                        "process")
            self.workers = 0
            self.close()


__all__ = ["SegmentParser", "stop_parse_workers"]
