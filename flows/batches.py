"""Load the archive into the warehouse segment by segment: transform, then one batch each.

Both flows use it: ``ingest`` while the spider is still writing segments, ``reextract``
over the whole archive. Each segment is one :func:`warehouse.load.load_batch`
transaction that also records the segment as loaded, so a run cut short keeps every
segment it finished and the next run loads the rest, never one twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path

from config import Settings
from crawler.memory import release_free_memory
from flows.accounting import Accounting
from flows.transform import Fetch, Gate, Parsed, parse_archive
from warehouse.db import write, writer
from warehouse.load import LoadResult, Manifest, load_batch

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BatchTotals:
    """What the segments of a run gave, added up."""

    segments: int = 0
    pages: int = 0
    loaded: LoadResult = field(default_factory=LoadResult)
    rejected: int = 0  # no parser could read the page
    held: int = 0  # held back by the drift gate
    skipped_old: int = 0  # published before --since
    parser_versions: Counter[str] = field(default_factory=Counter)
    cut: Counter[str] = field(default_factory=Counter)
    future_dated: int = 0


@dataclass
class SegmentLoader:
    """Transforms and loads segments for one run (its gate scores the whole run)."""

    db_path: Path
    settings: Settings
    since: date | None
    flow_run_id: str | None
    accounting: Accounting | None = None
    gate: Gate = field(init=False)
    totals: BatchTotals = field(default_factory=BatchTotals)

    def __post_init__(self) -> None:
        self.gate = Gate(self.settings.quality)

    def load(self, path: Path, run_id: str, parsed: Parsed | None = None) -> LoadResult:
        """Transform one segment (unless ``parsed`` is given) and load it as one batch."""
        if parsed is None:
            parsed = parse_archive(str(path), self.since)
        kept, held = self.gate.apply(parsed.articles)
        failures = [*parsed.rejects, *held]
        manifest = manifest_of(path, parsed.pages, parsed.fetches)
        batch = partial(load_batch, run_id=run_id, articles=kept, failures=failures,
                        flow_run_id=self.flow_run_id, protect_fields=True,
                        segments=[(str(path), parsed.pages)],
                        manifests=[manifest] if manifest else [])
        result = write(self.db_path, self.settings.warehouse, batch, what=f"segment {path.name}")
        del batch
        t = self.totals
        t.segments += 1
        t.pages += parsed.pages
        t.loaded.add(result)
        t.rejected += len(parsed.rejects)
        t.held += len(held)
        t.skipped_old += len(parsed.skipped_old)
        t.parser_versions.update(parsed.parser_versions)
        t.cut.update(parsed.cut)
        t.future_dated += parsed.future_dated
        if self.accounting is not None:
            self.accounting.stored.update(a.article_id for a in kept)
            self.accounting.filtered_old.update(parsed.skipped_old)
            self.accounting.add_failures([*parsed.rejects, *held])
        log.info("segment %s: %d pages, %d stored, %d rejected, %d held back", path.name,
                 parsed.pages, len(kept), len(parsed.rejects), len(held))
        del parsed, kept, held
        release_free_memory()
        return result


def manifest_of(path: Path, pages: int, fetches: list[Fetch] | None) -> Manifest | None:
    """The record of where a whole file's article fetches are, with the file's size now;
    None without the list (a parse of chosen records), or if the file is gone (a
    re-extraction would not find it either)."""
    if fetches is None:
        return None
    try:
        size = path.stat().st_size
    except OSError:
        return None
    return Manifest(str(path), size, pages, fetches)


def refresh_search_index(db_path: Path, settings: Settings) -> str:
    """Bring the search index in line with what a run loaded; a line saying what it did.

    The index is derived data: if updating it fails, the run's rows are safe and the
    line says how to rebuild it (``baotintuc search --rebuild``).
    """
    from warehouse.search import update_search_index

    try:
        # Not warehouse.db.write: its uncapped retry would run the update again under the
        # same search.index_memory_limit, which the update sets itself (a chunk over it is
        # done in halves; a checkpoint over the writer's cap is still redone uncapped).
        with writer(db_path, settings.warehouse, bulk=True) as con:
            done = update_search_index(con, settings=settings.search)
    except Exception as err:  # never lose a run over a derived index
        log.exception("search index not updated")
        first = (str(err).splitlines() or [""])[0]  # DuckDB appends paragraphs of advice
        return (f"search index NOT updated ({type(err).__name__}: {first}); "
                "run `baotintuc search --rebuild`")
    release_free_memory()
    return str(done)


__all__ = ["BatchTotals", "SegmentLoader", "manifest_of", "refresh_search_index"]
