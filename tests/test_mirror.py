"""The offline mirror: the HTTP server with its faults, and the site generator."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from baotintuc.model import TRUTH_FIELDS
from mirror.server import Fault, MirrorServer, parse_fault

PAGE = (
    "<!DOCTYPE html><html lang='vi'><head><title>Tin</title></head><body><p>Buôn lậu</p>"
    "</body></html>"
)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(
    url: str, headers: dict[str, str] | None = None, method: str = "GET", timeout: float = 5
) -> tuple[int, dict[str, str], bytes]:
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
        s.sendall(
            "GET /tags/buôn+lậu.htm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
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


# --- generator ---------------------------------------------------------------------------
TRUTH_KEYS = {*TRUTH_FIELDS, "listed_in"}  # the model's ground-truth fields


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    from mirror.build import build_site

    return build_site(tmp_path_factory.mktemp("mirror"))


@pytest.fixture(scope="module")
def truth(built) -> list[dict]:
    import json

    return [json.loads(line) for line in built.ground_truth.read_text("utf-8").splitlines()]


def _tree(built, path: str):
    import lxml.html

    return lxml.html.fromstring((built.site_dir / path.lstrip("/")).read_bytes())


def _digest(root: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_build_is_deterministic(built, tmp_path: Path) -> None:
    from mirror.build import build_site

    again = build_site(tmp_path / "again")
    assert _digest(again.out_dir) == _digest(built.out_dir)


def test_counts_categories_and_span(built) -> None:
    import json

    m = json.loads(built.manifest.read_text("utf-8"))
    assert built.synthetic >= 300 and built.real == 20
    assert m["counts"]["categories"] >= 10
    assert any(c.split("ct")[1] != "0" for c in m["categories"])  # sub-categories too
    assert m["synthetic_date_span"]["days"] >= 60
    assert m["seed_article"]["reconstructed"]


def test_real_pages_unchanged(built) -> None:
    from mirror.real import read_real_pages

    reals = read_real_pages()
    assert len(reals) == 20
    for real in reals:
        assert (built.site_dir / real.article.path.lstrip("/")).read_bytes() == real.data


def test_truth_rows_complete_and_match_pages(built, truth) -> None:
    from datetime import datetime, timedelta

    assert len(truth) == built.articles
    forms = set()
    for row in truth:
        assert set(row) == TRUTH_KEYS, row["article_id"]
        path = row["url"].removeprefix("https://baotintuc.vn")
        tree = _tree(built, path)
        assert " ".join(tree.xpath("string(//h1[@class='detail-title'])").split()) == row["title"]
        pub = datetime.fromisoformat(row["published_at"])
        meta = tree.xpath("//meta[@property='article:published_time']/@content")[0]
        assert datetime.fromisoformat(meta) == pub
        visible = " ".join(
            tree.xpath("string(//div[@class='action-link']//span[@class='txt'])").split()
        )
        assert visible.endswith(pub.strftime("%d/%m/%Y %H:%M"))
        created = datetime.strptime(row["article_id"][:14], "%Y%m%d%H%M%S").replace(
            tzinfo=pub.tzinfo
        )
        assert timedelta(minutes=-1) <= pub - created <= timedelta(minutes=36)
        assert tree.xpath("//meta[@property='article:section']/@content")[0] == row["category"]
        assert row["body_text"] and "\n\n\n" not in row["body_text"]
        for img in row["images"]:
            assert img["url"].startswith("https://cdnmedia.baotintuc.vn/")
            assert img["credit"] is None or img["caption"].endswith(img["credit"])
        forms.add(row["byline"].split(":")[0] if ":" in (row["byline"] or "") else "plain")
    bylines = {r["byline"] for r in truth}
    assert "TTXVN/Báo Tin tức và Dân tộc" in bylines
    assert any("–" in b for b in bylines if b) and {"Tin, ảnh", "Chùm ảnh, clip"} <= forms
    credits = {i["credit"] for r in truth for i in r["images"]}
    assert {"TTXVN phát", "TTXVN", None} <= credits
    assert any(c and "/TTXVN" in c for c in credits)


def test_seed_article(built, truth) -> None:
    seed = next(r for r in truth if r["article_id"] == "20200729141113660")
    assert seed["category_id"] == 321 and seed["parent_category_id"] == 472
    assert seed["published_at"].startswith("2020-07-29T")
    assert seed["byline"] == "Hải Yến (TTXVN)" and seed["authors"] == ["Hải Yến"]
    assert [i["credit"] for i in seed["images"]] == ["Thùy Dung/TTXVN"] * 2
    assert "Ảnh:" not in seed["body_text"]
    page = (built.site_dir / seed["url"].split("baotintuc.vn/")[1]).read_text("utf-8")
    assert "reconstructed" in page and 'href="/chinh-tri-321ct472.htm"' in page


def test_listings_paginate_and_items_exist(built, truth) -> None:
    import json

    listings = json.loads(built.manifest.read_text("utf-8"))["listings"]
    assert "phap-luat-475ct0" in listings and listings["phap-luat-475ct0"] >= 3
    members: dict[str, set[str]] = {}
    for row in truth:
        for key in row["listed_in"]:
            members.setdefault(key, set()).add(row["url"].removeprefix("https://baotintuc.vn"))
    for key, n_pages in listings.items():
        seen: list[str] = []
        for n in range(1, n_pages + 1):
            path = f"/{key}.htm" if n == 1 else f"/{key}/trang-{n}.htm"
            tree = _tree(built, path)
            items = tree.xpath(
                "//div[@class='lcb-left']//ul[@class='list-newsest']/li[@class='item']"
                "/a[@class='thumb']/@href"
            )
            listed = members.get(key, set())  # top-level categories may be empty
            assert len(items) == (20 if n < n_pages else len(listed) - 20 * (n_pages - 1))
            seen += items
            active = tree.xpath("//ul[@class='list-pagination']//a[@class='active']")
            assert active[0].get("href") == "javascript:void(0)" and active[0].text == str(n)
            nxt = tree.xpath("//ul[@class='list-pagination']//a[text()='Tiếp']/@href")
            assert nxt == ([f"/{key}/trang-{n + 1}.htm"] if n < n_pages else [])
            for href in tree.xpath("//div[@class='lc-top']//a[@class='thumb']/@href"):
                assert (built.site_dir / href.lstrip("/")).is_file()
        assert set(seen) == members.get(key, set()) and len(seen) == len(set(seen))
        ids = [h.rsplit("-", 1)[1][:17] for h in seen]
        assert ids == sorted(ids, reverse=True)


def test_feeds_are_rss2_with_absolute_links(built) -> None:
    import email.utils
    import xml.etree.ElementTree as ET

    import lxml.html

    index = lxml.html.fromstring((built.site_dir / "rss.htm").read_bytes())
    feeds = index.xpath("//a/@href")
    assert "/tin-moi-nhat.rss" in feeds and "/phap-luat.rss" in feeds and len(feeds) >= 11
    nonempty = 0
    for feed in feeds:
        root = ET.fromstring((built.site_dir / feed.lstrip("/")).read_bytes())
        assert root.tag == "rss" and root.get("version") == "2.0"
        items = root.findall("./channel/item")
        assert len(items) <= 50
        nonempty += bool(items)
        for item in items:
            link = item.findtext("link") or ""
            assert link.startswith("https://baotintuc.vn/")
            assert (built.site_dir / link.removeprefix("https://baotintuc.vn/")).is_file()
            assert email.utils.parsedate_to_datetime(item.findtext("pubDate") or "").tzinfo
            assert "<img" in (item.findtext("description") or "")
    assert nonempty >= 11  # every category with articles has a non-empty feed
    robots = (built.site_dir / "robots.txt").read_text()
    assert "Disallow: /Comment.aspx" in robots
    assert robots.endswith("Sitemap: https://baotintuc.vn/sitemap.xml\n")


def test_built_site_over_http(built) -> None:
    with MirrorServer(built.site_dir) as server:
        assert fetch(server.url("/"))[0] == 200
        assert fetch(server.url(quote("/tags/buôn+lậu.htm")))[0] == 200
        status, headers, body = fetch(server.url("/phap-luat-475ct0/trang-2.htm"))
        assert status == 200 and "Tiếp" in body.decode("utf-8")
        assert fetch(server.url("/tin-moi-nhat.rss"))[1]["Content-Type"].startswith(
            "application/rss+xml"
        )


# --- inputs shipped in the package ---------------------------------------------------------
def test_inputs_are_the_real_pages_and_their_frozen_truth() -> None:
    import gzip
    import json

    from mirror import sources

    fixtures = Path(__file__).parent / "resources" / "baotintuc"
    pages = sources.article_pages()
    assert len(pages) == 20
    for page in pages:  # same bytes as the parser fixtures of the same real pages
        name = page.name.removeprefix("article_").removesuffix(".html")
        assert gzip.decompress((fixtures / f"V2023_{name}.html.gz").read_bytes()) == page.data
    copy = json.loads(sources.REAL_TRUTH_FILE.read_text(encoding="utf-8"))
    frozen = json.loads((fixtures / "expected.json").read_text(encoding="utf-8"))
    assert len(copy) == 20 and copy == {k: frozen[k] for k in copy}
    assert sources.INPUTS_DIR.resolve().is_relative_to(Path(__file__).resolve().parents[1])


# --- sitemaps ------------------------------------------------------------------------------
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"


def _sitemap_urls(site: Path) -> tuple[dict[str, list], list]:
    """({sitemap path: [(loc, lastmod)]}, news rows) read from the files of a build."""
    import xml.etree.ElementTree as ET

    index = ET.fromstring((site / "sitemap.xml").read_bytes())
    assert index.tag == f"{SM}sitemapindex"
    maps: dict[str, list] = {}
    news: list = []
    for entry in index.findall(f"{SM}sitemap"):
        loc = entry.findtext(f"{SM}loc") or ""
        assert loc.startswith("https://baotintuc.vn/sitemaps/") and entry.findtext(f"{SM}lastmod")
        root = ET.fromstring((site / loc.removeprefix("https://baotintuc.vn/")).read_bytes())
        assert root.tag == f"{SM}urlset"
        urls = root.findall(f"{SM}url")
        assert len(urls) <= 50_000
        if loc.endswith("/news.xml"):
            news = [(u.findtext(f"{SM}loc"), u.findtext(f"{NEWS}news/{NEWS}publication_date"),
                     u.findtext(f"{NEWS}news/{NEWS}title"),
                     u.findtext(f"{NEWS}news/{NEWS}publication/{NEWS}language")) for u in urls]
        else:
            maps[loc] = [(u.findtext(f"{SM}loc"), u.findtext(f"{SM}lastmod")) for u in urls]
    return maps, news


def _check_sitemaps(out: Path, truth: list[dict]) -> None:
    import json
    from datetime import datetime, timedelta

    from mirror.text import collapse

    maps, news = _sitemap_urls(out / "site")
    by_url = {r["url"]: r for r in truth}
    listed = [u for rows in maps.values() for u in rows]
    assert len(listed) == len(by_url) and {u for u, _ in listed} == set(by_url)
    for loc, rows in maps.items():
        month = loc.rsplit("articles-", 1)[1][:7]
        for url, lastmod in rows:
            assert lastmod == by_url[url]["published_at"] and lastmod.startswith(month)
    last = max(datetime.fromisoformat(r["published_at"]) for r in truth)
    recent = {r["url"] for r in truth
              if datetime.fromisoformat(r["published_at"]) > last - timedelta(days=2)}
    assert {n[0] for n in news} == recent and news
    for url, date, title, lang in news:
        assert date == by_url[url]["published_at"] and collapse(title) == by_url[url]["title"]
        assert lang == "vi"
    m = json.loads((out / "manifest.json").read_text("utf-8"))
    assert m["sitemaps"]["article_urls"] == len(by_url) == m["counts"]["sitemap_urls"]
    assert m["sitemaps"]["news_urls"] == len(news)
    assert any("sitemaps" in g and "never seen" in g for g in m["guesses"])


def test_sitemaps_list_every_article_once(built, truth) -> None:
    _check_sitemaps(built.out_dir, truth)


def test_build_without_sitemaps(tmp_path: Path) -> None:
    import json

    from mirror.build import build_site

    res = build_site(tmp_path / "m", sitemaps=False)
    assert not (res.site_dir / "sitemap.xml").exists()
    assert not (res.site_dir / "sitemaps").exists()
    assert "Sitemap" not in (res.site_dir / "robots.txt").read_text()
    assert json.loads(res.manifest.read_text("utf-8"))["sitemaps"] is None


def test_serve_without_sitemaps(built) -> None:
    with MirrorServer(built.site_dir, sitemaps=False) as server:
        assert fetch(server.url("/sitemap.xml"))[0] == 404
        assert fetch(server.url("/sitemaps/news.xml"))[0] == 404
        status, headers, body = fetch(server.url("/robots.txt"))
        assert status == 200 and b"Sitemap" not in body and b"Disallow: /Comment.aspx" in body
        assert fetch(server.url("/robots.txt"), {"If-None-Match": headers["ETag"]})[0] == 304
    with MirrorServer(built.site_dir) as server:
        assert b"Sitemap: https://baotintuc.vn/sitemap.xml" in fetch(server.url("/robots.txt"))[2]
        assert fetch(server.url("/sitemap.xml"))[1]["Content-Type"].startswith("application/")


# --- pages rendered on request --------------------------------------------------------------
@pytest.fixture(scope="module")
def on_demand(tmp_path_factory: pytest.TempPathFactory):
    """The default mirror again, its article and listing pages rendered by the server."""
    from mirror.build import build_site

    return build_site(tmp_path_factory.mktemp("on-demand"), pages="on-demand")


def test_on_demand_pages_equal_the_files_build(built, on_demand) -> None:
    files = [p for p in sorted(built.site_dir.rglob("*")) if p.is_file()]
    stored = {p.relative_to(on_demand.site_dir) for p in on_demand.site_dir.rglob("*")
              if p.is_file()}
    # synthetic article pages and category listings are not files; the rest is
    import json

    listings = json.loads(on_demand.manifest.read_text("utf-8"))["listings"]
    assert not any(str(p).split("/")[0].removesuffix(".htm") in listings for p in stored)
    assert len(stored) == len(files) - on_demand.synthetic - sum(listings.values())
    assert _digest(built.out_dir)["ground_truth.jsonl"] == \
        _digest(on_demand.out_dir)["ground_truth.jsonl"]
    with MirrorServer(on_demand.site_dir) as server:
        assert server.plan_file == on_demand.out_dir / "plan.sqlite"
        for file in files:
            rel = file.relative_to(built.site_dir)
            path = "/" if str(rel) == "index.html" else f"/{rel}"
            status, headers, body = fetch(server.url(quote(path)))
            assert status == 200 and body == file.read_bytes(), path
        # a file in the site wins over the plan (tests edit pages in place)
        art = next(p for p in files if p.parent.name == "phap-luat" and p.name.endswith(".htm")
                   and (on_demand.site_dir / p.relative_to(built.site_dir)).exists() is False)
        path = "/" + str(art.relative_to(built.site_dir))
        _, headers, _ = fetch(server.url(quote(path)))
        assert fetch(server.url(quote(path)), {"If-None-Match": headers["ETag"]})[0] == 304
        edited = on_demand.site_dir / path.lstrip("/")
        edited.write_bytes(b"<html>edited</html>")
        try:
            assert fetch(server.url(quote(path)))[2] == b"<html>edited</html>"
        finally:
            edited.unlink()
        assert fetch(server.url("/phap-luat-475ct0/trang-1.htm"))[0] == 404
        assert fetch(server.url("/phap-luat-475ct0/trang-999.htm"))[0] == 404
        assert fetch(server.url("/phap-luat/khong-co-20250101000000000.htm"))[0] == 404


def test_faults_on_rendered_pages(on_demand, truth) -> None:
    row = next(r for r in truth if r["listed_in"][0].startswith("an-ninh"))
    path = row["url"].removeprefix("https://baotintuc.vn")
    with MirrorServer(on_demand.site_dir, log_limit=3) as server:
        whole = fetch(server.url(quote(path)))[2]
        server.set_fault(path, Fault("invalid_utf8", times=1))
        body = fetch(server.url(quote(path)))[2]
        assert len(body) == len(whole) + 6 and row["title"].encode() in body
        server.set_fault(path, Fault("truncated", times=1))
        with pytest.raises(http.client.IncompleteRead):
            fetch(server.url(quote(path)))
        server.set_fault("/phap-luat-475ct0/*", Fault("status", status=503, times=1))
        assert fetch(server.url("/phap-luat-475ct0/trang-2.htm"))[0] == 503
        assert fetch(server.url("/phap-luat-475ct0/trang-2.htm"))[0] == 200
        assert len(server.requests) == 3  # the log keeps the newest 3


# --- a medium mirror: more than a year, deep listings ---------------------------------------
MEDIUM = 2_000


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory):
    from mirror.build import build_site

    return build_site(tmp_path_factory.mktemp("medium"), MEDIUM, pages="on-demand")


def test_medium_build_counts_span_and_pagination(medium) -> None:
    import json
    from datetime import datetime

    m = json.loads(medium.manifest.read_text("utf-8"))
    assert medium.articles == m["counts"]["articles"] == m["counts"]["ground_truth_rows"] == MEDIUM
    assert medium.synthetic == MEDIUM - 21 and medium.pages == "on-demand"
    first = datetime.fromisoformat(m["synthetic_date_span"]["first"])
    last = datetime.fromisoformat(m["synthetic_date_span"]["last"])
    assert (last - first).days > 365 and last.date().isoformat() == "2025-07-13"
    assert set(m["articles_by_year"]) >= {"2024", "2025"}
    assert sum(m["articles_by_year"].values()) == MEDIUM
    assert m["listings"]["phap-luat-475ct0"] >= 30 and m["listing_pages_max"] >= 30
    assert m["counts"]["listing_pages"] == sum(m["listings"].values())
    assert m["storage"]["bytes"] < MEDIUM * 40_000  # pages are not files (~280 KB each)


def test_medium_build_is_deterministic(medium, tmp_path: Path) -> None:
    from mirror.build import build_site

    again = build_site(tmp_path / "again", MEDIUM, pages="on-demand")
    assert _digest(again.out_dir) == _digest(medium.out_dir)


def test_medium_sitemaps(medium) -> None:
    import json

    rows = [json.loads(x) for x in medium.ground_truth.read_text("utf-8").splitlines()]
    _check_sitemaps(medium.out_dir, rows)
    maps, _ = _sitemap_urls(medium.site_dir)
    assert len(maps) >= 13  # one sitemap per month of more than a year


def test_medium_truth_matches_served_pages(medium) -> None:
    import json
    import random
    from datetime import datetime

    import lxml.html

    rows = [json.loads(x) for x in medium.ground_truth.read_text("utf-8").splitlines()]
    sample = random.Random(3).sample(rows, 40)
    with MirrorServer(medium.site_dir) as server:
        for row in sample:
            status, _, body = fetch(server.url(quote(row["url"].removeprefix(
                "https://baotintuc.vn"))))
            assert status == 200
            tree = lxml.html.fromstring(body)
            h1 = " ".join(tree.xpath("string(//h1[@class='detail-title'])").split())
            assert h1 == row["title"]
            meta = tree.xpath("//meta[@property='article:published_time']/@content")[0]
            assert datetime.fromisoformat(meta) == datetime.fromisoformat(row["published_at"])
            assert tree.xpath("//meta[@property='article:section']/@content")[0] == \
                row["category"]
            if row["body_text"] and row["images"]:
                srcs = tree.xpath("//div[@class='contents']//img/@src")
                assert [i["url"] for i in row["images"]] == srcs[: len(row["images"])]


def test_medium_deep_listing_over_http(medium) -> None:
    import json

    import lxml.html

    m = json.loads(medium.manifest.read_text("utf-8"))
    key, n_pages = "phap-luat-475ct0", m["listings"]["phap-luat-475ct0"]
    rows = [json.loads(x) for x in medium.ground_truth.read_text("utf-8").splitlines()]
    members = sorted((r["article_id"] for r in rows if key in r["listed_in"]), reverse=True)
    with MirrorServer(medium.site_dir) as server:
        for n in (1, 2, n_pages // 2, n_pages):
            path = f"/{key}.htm" if n == 1 else f"/{key}/trang-{n}.htm"
            status, _, body = fetch(server.url(path))
            assert status == 200, path
            tree = lxml.html.fromstring(body)
            hrefs = tree.xpath("//div[@class='lcb-left']//ul[@class='list-newsest']"
                               "/li[@class='item']/a[@class='thumb']/@href")
            ids = [h.rsplit("-", 1)[1][:17] for h in hrefs]
            assert ids == members[(n - 1) * 20 : n * 20], path
            nxt = tree.xpath("//ul[@class='list-pagination']//a[text()='Tiếp']/@href")
            assert nxt == ([f"/{key}/trang-{n + 1}.htm"] if n < n_pages else [])
        assert fetch(server.url(f"/{key}/trang-{n_pages + 1}.htm"))[0] == 404


# --- the command line -------------------------------------------------------------------------
def test_cli_mirror_build_and_serve(tmp_path: Path) -> None:
    import signal
    import subprocess

    from tests.support import BAOTINTUC, REPO, cli_env

    env = cli_env(tmp_path)
    bad = subprocess.run([str(BAOTINTUC), "mirror", "build", "--articles", "5", "--out",
                          str(tmp_path / "m")], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "at least 21" in bad.stderr
    built = subprocess.run([str(BAOTINTUC), "mirror", "build", "--articles", "60",
                            "--no-sitemaps", "--out", str(tmp_path / "m")], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert "60 articles" in built.stdout and "0 sitemap URLs" in built.stdout
    missing = subprocess.run([str(BAOTINTUC), "mirror", "serve", "--site",
                              str(tmp_path / "nope")], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("baotintuc: no mirror at")
    proc = subprocess.Popen([str(BAOTINTUC), "mirror", "serve", "--site", str(tmp_path / "m"),
                             "--port", "0", "--fault", "/robots.txt=status:status=503,times=1"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        base = line.rsplit(" at ", 1)[1].split()[0]
        assert fetch(base + "/robots.txt")[0] == 503
        assert fetch(base + "/robots.txt")[0] == 200
        assert fetch(base + "/sitemap.xml")[0] == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
