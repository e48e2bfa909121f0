"""HTTP server for the offline mirror, with per-path fault injection.

Serves the files of a site directory on 127.0.0.1 (ThreadingHTTPServer in a daemon thread)
and, for a big build, the pages it renders on request from the build's plan
(``<out>/plan.sqlite`` beside ``<out>/site``; see :mod:`mirror.ondemand`); a file always
wins over the plan, so tests can still edit or replace any page. ETag / Last-Modified and
304 answers, a request log for tests (bounded on request), and it can make any
path misbehave (status codes, 429, hangs, resets, truncation, wrong type, huge pages,
bad UTF-8, redirect loops, off-site redirects, empty bodies, redirects to any location,
slow answers). Every fault is bounded in time, and leaving the context manager stops
the server even while handlers hang.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import re
import socket
import struct
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, NamedTuple
from urllib.parse import quote, unquote, urlsplit

from mirror.plan import PLAN_FILE
from mirror.sitemaps import is_sitemap_path

if TYPE_CHECKING:
    from mirror.ondemand import OnDemandPages

FaultKind = Literal[
    "status",  # answer ``status`` (500/503/404 ...) with a small HTML body
    "429",  # 429 Too Many Requests with ``Retry-After: retry_after``
    "timeout",  # accept, send nothing for ``seconds``, then close
    "reset",  # close the connection with RST (SO_LINGER 0), no response
    "truncated",  # Content-Length larger than the bytes sent, then close
    "content_type",  # the real bytes served as ``content_type`` (application/pdf)
    "huge",  # a 200 text/html page of ``size`` bytes, streamed
    "invalid_utf8",  # the real page with invalid UTF-8 bytes injected
    "redirect_loop",  # 302 path -> path?loop=b -> path -> ...
    "redirect_offsite",  # 302 to http://example.invalid/<path>
    "redirect",  # ``status`` (301/302/303/307/308) to ``location`` (a path or a URL)
    "slow",  # wait ``seconds``, then serve the path as usual
    "empty",  # 200 text/html with an empty body
]

FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]
OFFSITE_ORIGIN = "http://example.invalid"
ETAG_CACHE = 4096  # file ETags kept (by path, mtime, size)
_SITEMAP_LINE = re.compile(rb"^Sitemap:[^\n]*\n?", re.M | re.I)
INVALID_UTF8 = b"\xff\xfe\xc3\x28\xa0\xa1"
REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Fault:
    """One way a path misbehaves. ``times`` = only the first N requests (None = always)."""

    kind: FaultKind
    status: int = 500
    times: int | None = None
    retry_after: int = 1
    seconds: float = 3.0
    size: int = 20 * 1024 * 1024
    content_type: str = "application/pdf"
    location: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")
        if self.kind == "redirect" and (not self.location or self.status not in REDIRECTS):
            raise ValueError("a redirect fault needs a location and a 3xx status")


class RequestRecord(NamedTuple):
    method: str
    path: str  # percent-decoded path, plus ``?query`` when there was one
    headers: dict[str, str]  # header names in Title-Case
    status: int  # 0 = no HTTP response (timeout, reset)


def parse_fault(spec: str) -> Fault:
    """``kind[:key=value,...]`` → Fault, e.g. ``status:status=503,times=2`` or ``429``."""
    kind, _, rest = spec.partition(":")
    kwargs: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        key = key.strip()
        if key in ("status", "times", "retry_after", "size"):
            kwargs[key] = int(value)
        elif key == "seconds":
            kwargs[key] = float(value)
        elif key in ("content_type", "location"):
            kwargs[key] = value
        else:
            raise ValueError(f"unknown fault parameter {key!r} in {spec!r}")
    return Fault(kind.strip(), **kwargs)  # type: ignore[arg-type]


def content_type_for(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".htm", ".html")):
        return "text/html; charset=utf-8"
    if name.endswith((".rss", ".xml")):
        return "application/rss+xml; charset=utf-8"
    if name.endswith(".txt"):
        return "text/plain; charset=utf-8"
    if name.endswith(".json"):
        return "application/json"
    if name.endswith(".jsonl"):
        return "application/x-ndjson"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _decode_path(raw: str) -> tuple[str, str]:
    """(decoded path, query). Accepts percent-encoding and raw UTF-8 in the request line."""
    parts = urlsplit(raw)
    path = parts.path or "/"
    with contextlib.suppress(UnicodeError):  # http.server decodes the line as latin-1
        path = path.encode("latin-1").decode("utf-8")
    return unquote(path, encoding="utf-8", errors="replace"), parts.query


class _FaultState:
    """Faults by path and how often each has fired; guarded by one lock."""

    def __init__(self, faults: dict[str, Fault] | None) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._used: dict[str, int] = {}
        for path, fault in (faults or {}).items():
            self.set(path, fault)

    def set(self, path: str, fault: Fault) -> None:
        with self._lock:
            self._faults[path] = fault
            self._used[path] = 0

    def clear(self, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._faults.clear()
                self._used.clear()
            else:
                self._faults.pop(path, None)
                self._used.pop(path, None)

    def take(self, path: str) -> Fault | None:
        """The fault to apply to this request, counting it against ``times``."""
        with self._lock:
            key = path if path in self._faults else None
            if key is None:  # prefix patterns: "/phap-luat/*"
                for pattern in self._faults:
                    if pattern.endswith("*") and path.startswith(pattern[:-1]):
                        key = pattern
                        break
            if key is None:
                return None
            fault = self._faults[key]
            if fault.times is not None and self._used[key] >= fault.times:
                return None
            self._used[key] += 1
            return fault


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    mirror: MirrorServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "BaotintucMirror/1.0"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are dropped after this
    _aborted = False  # set by the reset fault

    # --- plumbing -------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.server.mirror._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.mirror._track(self.connection, add=False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if self.server.mirror.verbose:
            super().log_message(format, *args)

    def _log(self, path: str, status: int) -> None:
        headers = {k.title(): v for k, v in self.headers.items()}
        self.server.mirror._log(RequestRecord(self.command, path, headers, status))

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/html; charset=utf-8",
        extra: dict[str, str] | None = None,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # --- entry points ---------------------------------------------------------------
    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except ValueError:  # http.server's final flush on a stream the reset fault closed
            if not self._aborted:
                raise

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _handle(self) -> None:
        path, query = _decode_path(self.path)
        logged = path + (f"?{query}" if query else "")
        fault = self.server.mirror._faults.take(path)
        try:
            if fault is not None:
                self._fault(fault, path, query, logged)
            else:
                self._serve(path, logged)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    # --- normal files ---------------------------------------------------------------
    def _serve(self, path: str, logged: str) -> None:
        found = self.server.mirror.lookup(path)
        if found is None:
            self._log(logged, 404)
            self._send(404, b"<html><body><h1>404 Not Found</h1></body></html>")
            return
        body, content_type, etag, mtime = found
        last_modified = formatdate(mtime, usegmt=True)
        if self._not_modified(etag, mtime):
            self._log(logged, 304)
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
            self.end_headers()
            return
        self._log(logged, 200)
        self._send(200, body, content_type, {"ETag": etag, "Last-Modified": last_modified})

    def _not_modified(self, etag: str, mtime: float) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return etag in tags or "*" in tags
        ims = self.headers.get("If-Modified-Since")
        if ims:
            try:
                return int(mtime) <= int(parsedate_to_datetime(ims).timestamp())
            except (TypeError, ValueError):
                return False
        return False

    # --- faults ---------------------------------------------------------------------
    def _page_bytes(self, path: str) -> bytes:
        found = self.server.mirror.lookup(path)
        if found is not None:
            return found[0]
        return (
            b'<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>x</title>'
            b"</head><body><p>Trang th\xe1\xbb\xad nghi\xe1\xbb\x87m.</p></body></html>"
        )

    def _fault(self, fault: Fault, path: str, query: str, logged: str) -> None:
        kind = fault.kind
        stop = self.server.mirror._stop
        if kind == "status":
            self._log(logged, fault.status)
            body = f"<html><body><h1>{fault.status}</h1></body></html>".encode()
            self._send(fault.status, body)
        elif kind == "429":
            self._log(logged, 429)
            self._send(
                429,
                b"<html><body>Too Many Requests</body></html>",
                extra={"Retry-After": str(fault.retry_after)},
            )
        elif kind == "timeout":
            self._log(logged, 0)
            stop.wait(fault.seconds)
            self.close_connection = True
        elif kind == "reset":
            self._log(logged, 0)
            self._reset()
        elif kind == "truncated":
            body = self._page_bytes(path)
            self._log(logged, 200)
            self._send(200, body[: len(body) // 2], length=len(body))
            self.close_connection = True
        elif kind == "content_type":
            self._log(logged, 200)
            self._send(200, self._page_bytes(path), fault.content_type)
        elif kind == "huge":
            self._log(logged, 200)
            self._stream_huge(fault.size)
        elif kind == "invalid_utf8":
            body = self._page_bytes(path)
            cut = body.find(b"<body")
            cut = len(body) // 2 if cut < 0 else body.find(b">", cut) + 1
            self._log(logged, 200)
            self._send(200, body[:cut] + INVALID_UTF8 + body[cut:])
        elif kind == "redirect_loop":
            target = self._quote(path) + ("" if query == "loop=b" else "?loop=b")
            self._log(logged, 302)
            self._send(302, b"", extra={"Location": target})
        elif kind == "redirect_offsite":
            self._log(logged, 302)
            self._send(302, b"", extra={"Location": OFFSITE_ORIGIN + self._quote(path)})
        elif kind == "empty":
            self._log(logged, 200)
            self._send(200, b"")
        elif kind == "redirect":
            self._log(logged, fault.status)
            self._send(fault.status, b"", extra={"Location": fault.location})
        elif kind == "slow" and not stop.wait(fault.seconds):  # (stopping: no answer)
            self._serve(path, logged)

    @staticmethod
    def _quote(path: str) -> str:
        return quote(path, safe="/-._~+!$&'()*,;=:@")

    def _reset(self) -> None:
        """Abort the TCP connection: SO_LINGER 0 then close sends RST instead of FIN."""
        self.close_connection = True
        self._aborted = True
        conn = self.connection
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for f in (self.rfile, self.wfile):
            with contextlib.suppress(OSError):
                f.close()
        conn.close()

    def _stream_huge(self, size: int) -> None:
        head = (
            b'<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
            b"<title>huge</title></head><body>\n"
        )
        tail = b"</body></html>\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        chunk = b"<p>" + b"x" * 1017 + b"</p>\n"  # 1 KiB
        self.wfile.write(head)
        left = size - len(head) - len(tail)
        stop = self.server.mirror._stop
        while left > 0 and not stop.is_set():
            block = (chunk * 64)[: min(left, 64 * 1024)]
            self.wfile.write(block)
            left -= len(block)
        if left <= 0:
            self.wfile.write(tail)
        self.close_connection = True


def etag_of(body: bytes) -> str:
    """A strong ETag from the content hash."""
    return '"' + hashlib.sha1(body).hexdigest()[:20] + '"'


class MirrorServer:
    """Serve ``site_dir`` over HTTP on ``host:port`` (0 = any free port) in a thread.

    >>> with MirrorServer(Path("data/mirror/site")) as srv:  # doctest: +SKIP
    ...     urllib.request.urlopen(srv.base_url + "/robots.txt")
    """

    def __init__(
        self,
        site_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: dict[str, Fault] | None = None,
        verbose: bool = False,
        *,
        plan: Path | None = None,
        sitemaps: bool = True,
        log_limit: int | None = None,
    ) -> None:
        """``plan``: the build plan to render missing pages from (default: ``plan.sqlite``
        beside ``site_dir`` when there is one). ``sitemaps=False`` serves the mirror as if
        the site had none (404, no ``Sitemap:`` line in robots.txt). ``log_limit`` keeps
        only the newest N request records (None: all; long-running servers bound it)."""
        self.site_dir = Path(site_dir).resolve()
        default_plan = self.site_dir.parent / PLAN_FILE
        self.plan_file = plan if plan is not None else (
            default_plan if default_plan.is_file() else None)
        self.sitemaps = sitemaps
        self._pages: OnDemandPages | None = None
        self.host = host
        self.port = port
        self.verbose = verbose
        self._faults = _FaultState(faults)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._requests: deque[RequestRecord] = deque(maxlen=log_limit)
        self._conns: set[socket.socket] = set()
        self._etags: OrderedDict[tuple[Path, int, int], str] = OrderedDict()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------
    def start(self) -> MirrorServer:
        if not self.site_dir.is_dir():
            raise FileNotFoundError(f"mirror site directory not found: {self.site_dir}")
        if self.plan_file is not None and self._pages is None:
            from mirror.ondemand import OnDemandPages  # imports the page shells

            self._pages = OnDemandPages(self.plan_file)
        self._stop.clear()
        httpd = _Server((self.host, self.port), _Handler)
        httpd.mirror = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"mirror-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake hung handlers, drop open connections, join the thread."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()
        httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pages is not None:
            self._pages.close()
            self._pages = None

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # --- faults ---------------------------------------------------------------------
    def set_fault(self, path: str, fault: Fault) -> None:
        """Make ``path`` (decoded; a trailing ``*`` matches a prefix) misbehave."""
        self._faults.set(path, fault)

    def clear_faults(self, path: str | None = None) -> None:
        self._faults.clear(path)

    # --- request log ----------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def hits(self, path: str, method: str | None = None) -> int:
        return sum(
            1 for r in self.requests if r.path == path and (method is None or r.method == method)
        )

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # --- content --------------------------------------------------------------------
    def lookup(self, path: str) -> tuple[bytes, str, str, float] | None:
        """(body, content type, ETag, mtime) for a decoded URL path, or None (404).

        A file of the site first, else a page rendered from the plan."""
        if not self.sitemaps and is_sitemap_path(path):
            return None
        file = self.resolve(path)
        if file is not None:
            body = file.read_bytes()
            if not self.sitemaps and file.name == "robots.txt" and file.parent == self.site_dir:
                body = _SITEMAP_LINE.sub(b"", body)
                return body, content_type_for(file), etag_of(body), file.stat().st_mtime
            etag, mtime = self.validators(file, body)
            return body, content_type_for(file), etag, mtime
        if self._pages is not None:
            page = self._pages.page(path)
            if page is not None:
                return page[0], "text/html; charset=utf-8", page[1], self._pages.mtime
        return None

    def resolve(self, path: str) -> Path | None:
        """The file for a decoded URL path (``/`` and directories → index.html), or None."""
        rel = path.lstrip("/")
        candidate = (self.site_dir / rel).resolve() if rel else self.site_dir
        if candidate != self.site_dir and self.site_dir not in candidate.parents:
            return None
        if candidate.is_dir():
            candidate = candidate / "index.html"
        return candidate if candidate.is_file() else None

    def validators(self, file: Path, body: bytes | None = None) -> tuple[str, float]:
        """(ETag from the content hash, mtime); hashes cached by (path, mtime, size)."""
        st = file.stat()
        key = (file, st.st_mtime_ns, st.st_size)
        with self._lock:
            etag = self._etags.get(key)
        if etag is None:
            etag = etag_of(file.read_bytes() if body is None else body)
            with self._lock:
                self._etags[key] = etag
                while len(self._etags) > ETAG_CACHE:
                    self._etags.popitem(last=False)
        return etag, st.st_mtime

    def iter_files(self) -> Iterator[Path]:
        return (p for p in sorted(self.site_dir.rglob("*")) if p.is_file())
