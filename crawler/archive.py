"""WARC archive of fetched article pages: write a run's segments, read pages back.

One gzip member per record (standard ``.warc.gz``). Each article is a ``response``
record: the HTTP status line, headers and body as fetched, ``WARC-Target-URI`` = the
canonical ``https://baotintuc.vn/...`` URL, ``WARC-X-Fetch-URI`` = the URL really
requested, ``WARC-Date`` = fetch time (UTC, microseconds, WARC/1.1), and block and payload
digests (sha1), which the reader verifies.

The body is stored decoded (Scrapy has already undone ``Content-Encoding`` and chunking),
so those two headers are dropped and ``Content-Length`` is set to the stored length; the
original values are kept as ``X-Original-Content-Encoding`` / ``X-Original-Content-Length``.

A crawl writes **segments** (:class:`SegmentWriter`): ``<prefix>-00001.warc.gz``,
``-00002``, … each closed after ``max_records`` pages or ``max_seconds``. A segment is
written as ``<name>.part`` and renamed on close, so a file under its final name is
complete, and the flow can load it while the crawl goes on. Every record is flushed, so a
killed crawl's ``.part`` stays readable up to its last complete record.
"""

from __future__ import annotations

import logging
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

try:
    from isal import isal_zlib
except ImportError:  # no ISA-L wheel for this platform
    isal_zlib = None

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import iso_date_to_datetime
from warcio.warcwriter import WARCWriter as _WARCWriter

from crawler.items import RawPage

logger = logging.getLogger(__name__)

FETCH_URI_HEADER = "WARC-X-Fetch-URI"
PART_SUFFIX = ".part"
SEGMENT_SUFFIX = ".warc.gz"
# The archive is gzipped by ISA-L (python-isal), which writes standard gzip members 7x
# faster than zlib for the same size: on 275 KB pages, ISA-L level 2 takes 0.43 CPU-ms a
# page against 3.2 for zlib level 3 and 7.3 for warcio's level 9, with 4 % more bytes than
# level 9 (bench/pipeline.py measures it). zlib is the fallback where ISA-L has no wheel.
DEFAULT_LEVEL = 2
_DROPPED = {"content-encoding", "transfer-encoding", "content-length"}
_SEGMENT_RE = re.compile(r"^(?P<prefix>.+)-(?P<n>\d{5})\.warc\.gz$")


def _warc_date(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _archived_headers(headers: Iterable[tuple[str, str]], body_len: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in headers:
        low = name.lower()
        if low in _DROPPED:
            if low != "transfer-encoding":
                out.append((f"X-Original-{name}", value))
            continue
        out.append((name, value))
    out.append(("Content-Length", str(body_len)))
    return out


def _isal_gunzip() -> Any:
    return isal_zlib.decompressobj(isal_zlib.MAX_WBITS + 16)


if isal_zlib is not None:
    # warcio gunzips each record through the decompressor registered here (zlib by
    # default; warcio itself registers brotli this way). ISA-L's has zlib's interface and
    # is several times faster: measured over the 10,000-article mirror's archive, reading
    # every page (as a re-extraction or a parse worker does) took 14.4 s with zlib and
    # 8.6 s with ISA-L, with the same records and the same handling of a cut archive.
    BufferedReader.DECOMPRESSORS["gzip"] = _isal_gunzip


def _compressor(level: int) -> Any:
    """A gzip compressor: ISA-L level 0–3 when installed, else zlib at a similar cost."""
    if isal_zlib is not None:
        return isal_zlib.compressobj(min(level, 3), isal_zlib.DEFLATED, isal_zlib.MAX_WBITS + 16)
    return zlib.compressobj(1 + 2 * min(level, 3), zlib.DEFLATED, zlib.MAX_WBITS + 16)


class _Gzip:
    """One gzip member per record, at our compression level (warcio's is fixed at 9)."""

    def __init__(self, out: IO[bytes], level: int) -> None:
        self.out = out
        self.compressor = _compressor(level)

    def write(self, data: bytes) -> None:
        self.out.write(self.compressor.compress(data))

    def flush(self) -> None:
        self.out.write(self.compressor.flush())
        self.out.flush()


class _LevelWriter(_WARCWriter):  # type: ignore[misc]
    def __init__(self, out: IO[bytes], level: int) -> None:
        super().__init__(out, gzip=False, warc_version="1.1")
        self.level = level

    def write_record(self, record: Any, params: Any = None) -> None:
        self._write_warc_record(_Gzip(self.out, self.level), record)


class WarcWriter:
    """Append article pages to ``path`` (``.warc.gz``); atomically published on close."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        info: Mapping[str, str] | None = None,
        level: int = DEFAULT_LEVEL,
    ):
        self.path = Path(path)
        self.part_path = self.path.with_name(self.path.name + PART_SUFFIX)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] | None = open(self.part_path, "wb")  # noqa: SIM115
        self._writer = _LevelWriter(self._fh, level)
        self.records = 0
        self.opened = time.monotonic()
        if info is not None:
            record = self._writer.create_warcinfo_record(self.path.name, dict(info))
            self._writer.write_record(record)
            self._fh.flush()

    def write(
        self,
        *,
        url: str,
        fetch_url: str,
        status: int,
        headers: Iterable[tuple[str, str]] | Mapping[str, str],
        body: bytes,
        fetched_at: datetime,
    ) -> None:
        """Write one ``response`` record and flush it to disk."""
        if self._fh is None:
            raise ValueError(f"WARC {self.path} is closed")
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        http_headers = StatusAndHeaders(
            _status_line(status), _archived_headers(pairs, len(body)), protocol="HTTP/1.1"
        )
        record = self._writer.create_warc_record(
            url,
            "response",
            payload=BytesIO(body),
            length=len(body),  # known: warcio digests the bytes in place, no spooling
            http_headers=http_headers,
            warc_headers_dict={
                "WARC-Date": _warc_date(fetched_at),
                FETCH_URI_HEADER: fetch_url,
            },
        )
        self._writer.write_record(record)
        self._fh.flush()
        self.records += 1

    def write_page(self, page: RawPage) -> None:
        self.write(
            url=page.url,
            fetch_url=page.fetch_url,
            status=page.status,
            headers=page.headers,
            body=page.body,
            fetched_at=page.fetched_at,
        )

    def close(self) -> Path:
        """Sync and rename ``<path>.part`` to ``<path>``; returns the final path."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
            os.replace(self.part_path, self.path)
        return self.path

    def abort(self) -> None:
        """Close without publishing: the ``.part`` file stays for inspection."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> WarcWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def segment_path(directory: Path, prefix: str, number: int) -> Path:
    return directory / f"{prefix}-{number:05d}{SEGMENT_SUFFIX}"


class SegmentWriter:
    """A crawl's archive as numbered segments, each published when it is closed.

    A segment is closed (renamed from ``.part``) after ``max_records`` pages, or by
    :meth:`rotate_if_idle` once it is ``max_seconds`` old, so that pages fetched slowly
    still reach the warehouse while the crawl goes on.
    """

    def __init__(
        self,
        directory: Path,
        prefix: str,
        *,
        max_records: int = 200,
        max_seconds: float = 30.0,
        info: Mapping[str, str] | None = None,
        level: int = DEFAULT_LEVEL,
    ) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.max_records = max_records
        self.max_seconds = max_seconds
        self.info = dict(info or {})
        self.level = level
        self.number = 0
        self.records = 0  # over all segments
        self.closed: list[Path] = []
        self._current: WarcWriter | None = None

    def write_page(self, page: RawPage) -> None:
        if self._current is None:
            self.number += 1
            path = segment_path(self.directory, self.prefix, self.number)
            self._current = WarcWriter(path, info=self.info, level=self.level)
        self._current.write_page(page)
        self.records += 1
        if self._current.records >= self.max_records:
            self.rotate()

    def rotate(self) -> Path | None:
        """Publish the current segment (if it holds a page); the next page opens a new one."""
        current, self._current = self._current, None
        if current is None:
            return None
        if current.records == 0:
            current.abort()
            current.part_path.unlink(missing_ok=True)
            return None
        path = current.close()
        self.closed.append(path)
        return path

    def rotate_if_idle(self) -> Path | None:
        current = self._current
        if current is not None and time.monotonic() - current.opened >= self.max_seconds:
            return self.rotate()
        return None

    def close(self) -> list[Path]:
        self.rotate()
        return list(self.closed)


def list_segments(directory: Path, prefix: str) -> list[Path]:
    """The published segments ``<prefix>-NNNNN.warc.gz`` of ``directory``, in order."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob(f"{prefix}-*{SEGMENT_SUFFIX}"):
        m = _SEGMENT_RE.match(path.name)
        if m and m["prefix"] == prefix:
            found.append((int(m["n"]), path))
    return [p for _, p in sorted(found)]


def publish_partial(part: Path) -> Path | None:
    """Rewrite a killed crawl's ``.part`` segment with its complete records and publish it.

    A torn tail is dropped. Returns the published path, or None when nothing was complete.
    """
    final = part.with_name(part.name.removesuffix(PART_SUFFIX))
    salvage = final.with_name("salvage-" + final.name)
    count = 0
    with WarcWriter(salvage) as out:
        for page in iter_pages(part):
            out.write_page(page)
            count += 1
    if count:
        os.replace(salvage, final)
    else:
        salvage.unlink(missing_ok=True)
    part.unlink()
    return final if count else None


def iter_pages(path: str | os.PathLike[str]) -> Iterator[RawPage]:
    """Yield the ``response`` records of a WARC as :class:`RawPage`, in file order.

    Only whole records are yielded: each record's block digest is verified, so a record
    cut anywhere (in its WARC headers, its HTTP headers or its body) ends the iteration
    with a warning instead of yielding a page that never was. Every complete record before
    it is yielded.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        records = ArchiveIterator(fh, arc2warc=False, check_digests=True)
        while True:
            try:
                record = next(records)
                if record.rec_type != "response":
                    continue
                page = _to_page(record)
            except StopIteration:
                return
            except (ArchiveLoadFailed, EOFError, zlib.error, OSError, ValueError) as err:
                logger.warning("WARC %s: stopped at a truncated or corrupt record: %s", path, err)
                return
            except Exception as err:  # warcio fails in odd ways on a cut header block
                logger.warning("WARC %s: stopped at an unreadable record: %r", path, err)
                return
            if page is None:
                logger.warning("WARC %s: stopped at a truncated record", path)
                return
            yield page


def _to_page(record: Any) -> RawPage | None:
    """The page of a complete, digest-verified response record, else None."""
    rec_headers = record.rec_headers
    http = record.http_headers
    stream = record.raw_stream
    chunks = []
    while chunk := stream.read(65536):
        chunks.append(chunk)
    body = b"".join(chunks)
    if getattr(stream, "limit", 0) > 0:  # fewer bytes than the record's Content-Length
        return None
    if record.digest_checker.passed is not True:  # no digest, or a digest that fails
        return None
    if http is None:
        return None
    declared = http.get_header("Content-Length")
    if declared is not None and declared.isdigit() and len(body) != int(declared):
        return None
    url = rec_headers.get_header("WARC-Target-URI") or ""
    status = int(http.get_statuscode() or 0)
    if not urlsplit(url).netloc or not 100 <= status <= 599:
        return None
    headers: dict[str, str] = {}
    for name, value in http.headers:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    date = iso_date_to_datetime(rec_headers.get_header("WARC-Date"), tz_aware=True)
    fetch_url = rec_headers.get_header(FETCH_URI_HEADER) or url
    return RawPage(url, fetch_url, status, headers, body, date)


__all__ = [
    "DEFAULT_LEVEL",
    "FETCH_URI_HEADER",
    "PART_SUFFIX",
    "SegmentWriter",
    "WarcWriter",
    "iter_pages",
    "list_segments",
    "publish_partial",
    "segment_path",
]
