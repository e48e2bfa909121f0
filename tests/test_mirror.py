"""The offline mirror: the HTTP server with its faults, and the site generator."""

from __future__ import annotations

import http.client
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # until pytest has pythonpath=.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mirror.server import Fault, MirrorServer, parse_fault

PAGE = "<!DOCTYPE html><html lang='vi'><head><title>Tin</title></head><body><p>Buôn lậu</p>" \
    "</body></html>"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET",
          timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) without following redirects; HTTP errors are returned."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("small") / "site"
    (site / "phap-luat").mkdir(parents=True)
    (site / "tags").mkdir()
    (site / "index.html").write_text(PAGE, encoding="utf-8")
    (site / "phap-luat" / "a-20250712205905640.htm").write_text(PAGE, encoding="utf-8")
    (site / "tags" / "buôn+lậu.htm").write_text(PAGE, encoding="utf-8")
    (site / "phap-luat.rss").write_text("<?xml version='1.0'?><rss version='2.0'/>")
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /Comment.aspx\n")
    return site


@pytest.fixture()
def srv(small_site: Path):
    with MirrorServer(small_site) as server:
        yield server


ART = "/phap-luat/a-20250712205905640.htm"


# --- server basics -----------------------------------------------------------------------
def test_serves_files_with_types(srv: MirrorServer) -> None:
    assert srv.base_url.startswith("http://127.0.0.1:")
    status, headers, body = fetch(srv.url(ART))
    assert status == 200 and body.decode("utf-8") == PAGE
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert fetch(srv.url("/phap-luat.rss"))[1]["Content-Type"].startswith("application/rss+xml")
    assert fetch(srv.url("/robots.txt"))[1]["Content-Type"].startswith("text/plain")
    assert fetch(srv.url("/"))[0] == 200
    assert fetch(srv.url("/nope.htm"))[0] == 404
    assert fetch(srv.url("/../../etc/passwd"))[0] == 404


def test_utf8_tag_path_and_head(srv: MirrorServer) -> None:
    assert fetch(srv.url(quote("/tags/buôn+lậu.htm")))[0] == 200
    status, headers, body = fetch(srv.url(ART), method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(PAGE.encode())


def test_raw_utf8_request_line(srv: MirrorServer) -> None:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall("GET /tags/buôn+lậu.htm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                  .encode())
        assert s.recv(64).startswith(b"HTTP/1.1 200")


def test_conditional_requests(srv: MirrorServer) -> None:
    _, headers, _ = fetch(srv.url(ART))
    etag, last_modified = headers["ETag"], headers["Last-Modified"]
    assert fetch(srv.url(ART), {"If-None-Match": etag})[0] == 304
    assert fetch(srv.url(ART), {"If-None-Match": '"other"'})[0] == 200
    assert fetch(srv.url(ART), {"If-Modified-Since": last_modified})[0] == 304
    assert fetch(srv.url(ART), {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 200


def test_request_log(srv: MirrorServer) -> None:
    fetch(srv.url(ART), {"User-Agent": "baotintuc-test/1"})
    fetch(srv.url(ART), method="HEAD")
    assert srv.hits(ART) == 2 and srv.hits(ART, "HEAD") == 1
    first = srv.requests[0]
    method, path, headers, status = first
    assert (method, path, status) == ("GET", ART, 200)
    assert headers["User-Agent"] == "baotintuc-test/1"


# --- faults ------------------------------------------------------------------------------
def test_status_fault_for_first_n_requests(srv: MirrorServer) -> None:
    srv.set_fault(ART, Fault("status", status=503, times=2))
    assert [fetch(srv.url(ART))[0] for _ in range(3)] == [503, 503, 200]
    srv.set_fault(ART, Fault("status", status=404))
    assert [fetch(srv.url(ART))[0] for _ in range(2)] == [404, 404]
    srv.clear_faults()
    assert fetch(srv.url(ART))[0] == 200


def test_429_retry_after(srv: MirrorServer) -> None:
    srv.set_fault(ART, Fault("429", retry_after=7, times=1))
    status, headers, _ = fetch(srv.url(ART))
    assert status == 429 and headers["Retry-After"] == "7"
    assert fetch(srv.url(ART))[0] == 200


def test_timeout_fault(srv: MirrorServer) -> None:
    srv.set_fault(ART, Fault("timeout", seconds=2.0))
    start = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        fetch(srv.url(ART), timeout=0.5)
    assert time.monotonic() - start < 1.5
    # after the given seconds the server closes without answering
    start = time.monotonic()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        fetch(srv.url(ART), timeout=5)
    assert 1.8 < time.monotonic() - start < 4


def test_reset_fault(srv: MirrorServer) -> None:
    srv.set_fault(ART, Fault("reset"))
    with pytest.raises((ConnectionResetError, urllib.error.URLError)) as info:
        fetch(srv.url(ART))
    err = info.value
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    assert isinstance(reason, ConnectionResetError)
    assert srv.requests[-1].status == 0


def test_truncated_fault(srv: MirrorServer) -> None:
    srv.set_fault(ART, Fault("truncated"))
    with pytest.raises(http.client.IncompleteRead):
        fetch(srv.url(ART))


def test_content_type_fault(srv: MirrorServer) -> None:
    srv.set_fault(ART, Fault("content_type"))
    status, headers, body = fetch(srv.url(ART))
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert body == PAGE.encode()


def test_huge_fault(srv: MirrorServer) -> None:
    srv.set_fault(ART, Fault("huge", size=20 * 1024 * 1024))
    start = time.monotonic()
    status, headers, body = fetch(srv.url(ART), timeout=20)
    assert status == 200 and len(body) == int(headers["Content-Length"]) == 20 * 1024 * 1024
    assert time.monotonic() - start < 10
    # a client may give up early; the server must not hang on it
    req = urllib.request.urlopen(srv.url(ART), timeout=5)
    assert len(req.read(1024)) == 1024
    req.close()


def test_invalid_utf8_fault(srv: MirrorServer) -> None:
    srv.set_fault(ART, Fault("invalid_utf8"))
    _, _, body = fetch(srv.url(ART))
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert b"<p>Bu\xc3\xb4n" in body


def test_redirect_faults(srv: MirrorServer) -> None:
    srv.set_fault(ART, Fault("redirect_loop"))
    status, headers, _ = fetch(srv.url(ART))
    assert status == 302 and headers["Location"] == ART + "?loop=b"
    status, headers, _ = fetch(srv.url(ART + "?loop=b"))
    assert status == 302 and headers["Location"] == ART
    with pytest.raises(urllib.error.HTTPError, match="redirect"):
        urllib.request.urlopen(srv.url(ART), timeout=5)  # follows until the loop is caught
    srv.set_fault(ART, Fault("redirect_offsite"))
    status, headers, _ = fetch(srv.url(ART))
    assert status == 302 and headers["Location"] == "http://example.invalid" + ART


def test_empty_fault_and_prefix_pattern(srv: MirrorServer) -> None:
    srv.set_fault("/phap-luat/*", Fault("empty"))
    status, headers, body = fetch(srv.url(ART))
    assert status == 200 and body == b"" and headers["Content-Length"] == "0"
    assert fetch(srv.url("/robots.txt"))[0] == 200


def test_parse_fault_spec() -> None:
    assert parse_fault("status:status=503,times=2") == Fault("status", status=503, times=2)
    assert parse_fault("429:retry_after=3") == Fault("429", retry_after=3)
    with pytest.raises(ValueError):
        parse_fault("nonsense")


def test_shutdown_with_hung_handler(small_site: Path) -> None:
    server = MirrorServer(small_site, faults={ART: Fault("timeout", seconds=60)}).start()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(f"GET {ART} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)  # keep-alive, idle
    time.sleep(0.2)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 3
    assert sock.recv(10) == b""
    sock.close()
    idle.close()
