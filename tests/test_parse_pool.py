"""Segments parsed in worker processes give what the flow's own parse gives, in order,
with the workers' log records in this process, and a dead worker loses nothing."""

from __future__ import annotations

import gzip
import json
import logging
import multiprocessing
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crawler.archive import WarcWriter
from crawler.items import RawPage
from flows.parse_pool import SegmentParser
from flows.transform import Parsed, parse_archive

RESOURCES = Path(__file__).parent / "resources" / "baotintuc"
EXPECTED: dict[str, dict[str, Any]] = json.loads((RESOURCES / "expected.json").read_text())
REAL = sorted(k for k, v in EXPECTED.items() if not v.get("synthetic"))
FETCHED = datetime(2025, 7, 14, 1, 0, tzinfo=UTC)


def _page(url: str, body: bytes) -> RawPage:
    return RawPage(url=url, fetch_url=url, status=200,
                   headers={"Content-Type": "text/html; charset=utf-8"}, body=body,
                   fetched_at=FETCHED)


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four segments of real article pages; each also holds one page no parser reads."""
    folder = tmp_path_factory.mktemp("segments")
    out = []
    for n in range(4):
        path = folder / f"run-{n + 1:05d}.warc.gz"
        with WarcWriter(path) as warc:
            for name in REAL[n * 5:(n + 1) * 5]:
                warc.write_page(_page(EXPECTED[name]["url"],
                                      gzip.decompress((RESOURCES / f"{name}.html.gz")
                                                      .read_bytes())))
            warc.write_page(_page(f"https://baotintuc.vn/xa-hoi/hong-2025071300000000{n}.htm",
                                  b"<html><body>not an article</body></html>"))
        out.append(path)
    return out


def _summary(parsed: Parsed) -> tuple[Any, ...]:
    return (parsed.pages, [a.to_row() for a in parsed.articles],
            [(f.url, f.reason) for f in parsed.rejects], dict(parsed.parser_versions))


def _in_process(segments: list[Path]) -> list[tuple[Any, ...]]:
    return [_summary(parse_archive(str(s))) for s in segments]


def _rejects(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("reject ")]


def test_workers_parse_as_the_flow_does_in_order_and_relay_their_logs(
    segments: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    got: list[tuple[Path, Parsed]] = []
    with SegmentParser(1, None) as parser:
        for seg in segments:
            parser.add(seg)
        deadline = time.monotonic() + 60
        while len(got) < len(segments) and time.monotonic() < deadline:
            got += parser.ready()  # never waits, never parses here (the crawl goes on)
            time.sleep(0.05)
    rejects = _rejects(caplog)
    assert len(rejects) == len(segments)  # the worker's records, relayed here
    assert len({r.process for r in rejects}) == 1 and rejects[0].process != os.getpid()
    assert [seg for seg, _ in got] == segments
    assert [_summary(p) for _, p in got] == _in_process(segments)
    assert all(len(p.articles) == 5 and len(p.rejects) == 1 for _, p in got)


def test_after_the_crawl_this_process_parses_too(
    segments: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with SegmentParser(1, None) as parser:
        for seg in segments:
            parser.add(seg)
        got = list(parser.drain())  # the worker is still starting: this process helps
    processes = {r.process for r in _rejects(caplog)}
    assert len(processes) == 2 and os.getpid() in processes
    assert [seg for seg, _ in got] == segments
    assert [_summary(p) for _, p in got] == _in_process(segments)


def test_no_workers_parses_here(segments: list[Path]) -> None:
    with SegmentParser(0, None) as parser:
        for seg in segments:
            parser.add(seg)
        got = list(parser.ready())
    assert [seg for seg, _ in got] == segments
    assert [_summary(p) for _, p in got] == _in_process(segments)


def test_a_dead_worker_loses_no_segment(segments: list[Path],
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with SegmentParser(1, None) as parser:
        parser.add(segments[0])
        parser.add(segments[1])  # a backlog: the worker starts
        workers = multiprocessing.active_children()
        assert len(workers) == 1, workers
        workers[0].kill()
        for seg in segments[2:]:
            parser.add(seg)
        got = list(parser.drain())
    assert [seg for seg, _ in got] == segments
    assert [_summary(p) for _, p in got] == _in_process(segments)
    assert any("a parse worker died" in r.getMessage() for r in caplog.records)


def test_no_backlog_no_worker(segments: list[Path]) -> None:
    """A flow that keeps up (a polite crawl: a segment now and then) parses them itself."""
    with SegmentParser(1, None) as parser:
        got = []
        for seg in segments:
            parser.add(seg)
            got += parser.ready()
            assert not multiprocessing.active_children()
    assert [seg for seg, _ in got] == segments
    assert [_summary(p) for _, p in got] == _in_process(segments)
