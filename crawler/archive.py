"""WARC archive of fetched article pages: write one run's file, read pages back.

One gzip member per record (standard ``.warc.gz``). Each article is a ``response``
record: the HTTP status line, headers and body as fetched, ``WARC-Target-URI`` = the
canonical ``https://baotintuc.vn/...`` URL, ``WARC-X-Fetch-URI`` = the URL really
requested, ``WARC-Date`` = fetch time (UTC, microseconds, WARC/1.1).

The body is stored decoded (Scrapy has already undone ``Content-Encoding`` and chunking),
so those two headers are dropped and ``Content-Length`` is set to the stored length; the
original values are kept as ``X-Original-Content-Encoding`` / ``X-Original-Content-Length``.

:class:`WarcWriter` writes ``<path>.part`` and renames it to ``<path>`` on
:meth:`WarcWriter.close`, so a killed crawl never leaves a half-written file under the
final name; every record is flushed, so the ``.part`` file stays readable up to the last
complete record.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import IO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import iso_date_to_datetime
from warcio.warcwriter import WARCWriter as _WARCWriter

from crawler.items import RawPage

logger = logging.getLogger(__name__)

FETCH_URI_HEADER = "WARC-X-Fetch-URI"
PART_SUFFIX = ".part"
_DROPPED = {"content-encoding", "transfer-encoding", "content-length"}


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


class WarcWriter:
    """Append article pages to ``path`` (``.warc.gz``); atomically published on close."""

    def __init__(self, path: str | os.PathLike[str], *, info: Mapping[str, str] | None = None):
        self.path = Path(path)
        self.part_path = self.path.with_name(self.path.name + PART_SUFFIX)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] | None = open(self.part_path, "wb")  # noqa: SIM115
        self._writer = _WARCWriter(self._fh, gzip=True, warc_version="1.1")
        self.records = 0
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
            length=None,
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


def iter_pages(path: str | os.PathLike[str]) -> Iterator[RawPage]:
    """Yield the ``response`` records of a WARC as :class:`RawPage`, in file order.

    A truncated or corrupt tail (a killed crawl's ``.part`` file) ends the iteration
    with a warning instead of an exception; every complete record before it is yielded.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        records = ArchiveIterator(fh, arc2warc=False)
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


def _to_page(record: object) -> RawPage | None:
    rec_headers = record.rec_headers  # type: ignore[attr-defined]
    http = record.http_headers  # type: ignore[attr-defined]
    stream = record.raw_stream  # type: ignore[attr-defined]
    chunks = []
    while chunk := stream.read(65536):
        chunks.append(chunk)
    body = b"".join(chunks)
    if getattr(stream, "limit", 0) > 0:  # fewer bytes than the record's Content-Length
        return None
    declared = http.get_header("Content-Length") if http else None
    if declared is not None and declared.isdigit() and len(body) < int(declared):
        return None
    headers: dict[str, str] = {}
    for name, value in http.headers if http else []:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    status = int(http.get_statuscode() or 0) if http else 0
    date = iso_date_to_datetime(rec_headers.get_header("WARC-Date"), tz_aware=True)
    url = rec_headers.get_header("WARC-Target-URI")
    fetch_url = rec_headers.get_header(FETCH_URI_HEADER) or url
    return RawPage(url, fetch_url, status, headers, body, date)


__all__ = ["FETCH_URI_HEADER", "WarcWriter", "iter_pages"]
