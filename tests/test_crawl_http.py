"""The real spider, as the flow runs it (a ``scrapy crawl`` subprocess), over real HTTP.

The site is small and built here: the real 2025 listing of Pháp luật (24 article links),
a feed and ``/rss.htm``, robots.txt, and small article pages under their canonical paths.
It is served by ``mirror.server.MirrorServer`` on 127.0.0.1 with injected faults.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from parsel import Selector

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from baotintuc.urls import article_id  # noqa: E402
from config import load_settings  # noqa: E402
from crawler.archive import iter_pages, list_segments  # noqa: E402
from crawler.request import REQUEST_ENV, CrawlRequest  # noqa: E402
from mirror.server import Fault, MirrorServer  # noqa: E402

LISTING = REPO / "tests/resources/listing/listing_phap-luat-475ct0_2025-07-13T2047.html.gz"
PYTHON = Path(sys.executable)

MISSING_ID = "20250712143006367"  # linked from the listing, no page: 404
RETRY_ID = "20250713103406962"  # 503 once, then served
SKIP_ID = "20250711113840250"  # in skip_ids: never requested
ROBOTS_ID = "20250711215257577"  # under /xa-hoi/, disallowed by robots.txt
OFFSITE_ID = "20250711140623717"  # redirected to http://example.invalid
FEED_ONLY_ID = "20250713230000123"  # only in the feed (absolute https://baotintuc.vn URL)
ARTICLE_PAGE = (
    '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>{id} | baotintuc.vn'
    '</title><meta property="og:url" content="https://baotintuc.vn{path}"></head>'
    '<body><h1 class="detail-title">Bài {id}</h1><p>Nội dung tiếng Việt.</p></body></html>'
)


def build_site(site: Path, other_origin: str) -> dict[str, str]:
    """Write the test site; returns ``{article id: path}`` of every article linked."""
    listing = gzip.decompress(LISTING.read_bytes())
    site.mkdir(parents=True)
    (site / "phap-luat-475ct0.htm").write_bytes(listing)
    sel = Selector(text=listing.decode("utf-8"))
    hrefs = sel.css(
        "div.lcb-left ul.list-newsest > li.item a.title::attr(href), div.lc-top a.title::attr(href)"
    ).getall()
    linked = {article_id(h): h for h in hrefs}
    linked = {k: v for k, v in linked.items() if k}
    feed_only = f"/phap-luat/chi-co-trong-rss-{FEED_ONLY_ID}.htm"
    linked[FEED_ONLY_ID] = feed_only
    for aid, path in linked.items():
        if aid in (MISSING_ID,):
            continue
        file = site / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(ARTICLE_PAGE.format(id=aid, path=path), encoding="utf-8")
    some = sorted(linked.values())[:3]
    items = [
        f"https://baotintuc.vn{feed_only}",
        f"https://baotintuc.vn{some[0]}?utm_source=rss",  # dupes of listing items
        f"http://baotintuc.vn{some[1]}",
        f"https://baotintuc.vn/in-bai-{article_id(some[2])}".replace("-2025", "-n2025") + ".htm",
        f"{other_origin}/phap-luat/ngoai-trang-20250713120000000.htm",  # another origin
        "https://example.com/phap-luat/ngoai-trang-20250713120000001.htm",
    ]
    rss = "".join(
        f"<item><title>t{i}</title><link>{u}</link><guid>{u}</guid></item>"
        for i, u in enumerate(items)
    )
    (site / "tin-moi-nhat.rss").write_text(
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Tin mới nhất</title>{rss}</channel></rss>",
        encoding="utf-8",
    )
    (site / "rss.htm").write_text(
        '<html><body><a href="/tin-moi-nhat.rss">Tin mới</a>'
        '<a href="/rss/phap-luat.rss">old form</a></body></html>',
        encoding="utf-8",
    )
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /xa-hoi/\n", encoding="utf-8")
    return linked


def crawl(
    srv: MirrorServer,
    tmp: Path,
    name: str,
    *,
    mode: str = "all",
    discover_feed_index: bool = True,
    **politeness: Any,
) -> tuple[subprocess.CompletedProcess[str], Path, list[Path]]:
    """``python -m scrapy crawl baotintuc`` exactly as the flow runs it: one request file."""
    run_dir = tmp / "runs" / name
    run_dir.mkdir(parents=True)
    (run_dir / "skip_ids.txt").write_text(f"{SKIP_ID}\n", encoding="utf-8")
    req = CrawlRequest.resolve(
        load_settings(),
        run_id=name,
        mode=mode,
        base_url=srv.base_url,
        max_pages=1,
        categories=["phap-luat"],
        max_articles=0,
        run_dir=run_dir,
        archive_dir=tmp / "raw" / "2025-07-14",
        skip_ids_file=run_dir / "skip_ids.txt",
    )
    req = req.model_copy(
        update={
            "feeds": ("tin-moi-nhat",),
            "discover_feed_index": discover_feed_index,
            "httpcache_dir": tmp / "httpcache",
            "politeness": req.politeness.model_copy(
                update={"retry_backoff_base": 0.2, **politeness}
            ),
        }
    )
    env = {
        **os.environ,
        REQUEST_ENV: str(req.write()),
        "SCRAPY_SETTINGS_MODULE": "crawler.settings",
    }
    proc = subprocess.run(
        [str(PYTHON), "-m", "scrapy", "crawl", "baotintuc"],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    segments = list_segments(req.archive_dir, req.archive_prefix)
    return proc, run_dir, segments


def pages_of(segments: list[Path]) -> list[Any]:
    return [page for seg in segments for page in iter_pages(seg)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("crawl")
    other_site = tmp / "other"
    other_site.mkdir()
    with MirrorServer(other_site) as other:
        site = tmp / "site"
        placeholder = "http://127.0.0.1:1"
        linked = build_site(site, placeholder)
        feed = site / "tin-moi-nhat.rss"
        feed.write_text(feed.read_text(encoding="utf-8").replace(placeholder, other.base_url))
        with MirrorServer(site) as srv:
            srv.set_fault(linked[RETRY_ID], Fault("status", status=503, times=1))
            srv.set_fault(linked[OFFSITE_ID], Fault("redirect_offsite"))
            base = srv.base_url
            proc, run_dir, warc = crawl(srv, tmp, "run1")
            requests_1 = srv.requests
            srv.clear_requests()
            proc2, run_dir2, warc2 = crawl(srv, tmp, "run2", mode="rss")
            requests_2 = srv.requests
        other_requests = other.requests
    return {
        "proc": proc, "run_dir": run_dir, "warc": warc, "requests": requests_1, "base_url": base,
        "linked": linked, "other_requests": other_requests,
        "proc2": proc2, "run_dir2": run_dir2, "warc2": warc2, "requests2": requests_2,
    }  # fmt: skip


def test_crawl_finishes_cleanly_despite_failures(first_run: dict[str, Any]) -> None:
    proc = first_run["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((first_run["run_dir"] / "stats.json").read_text())
    assert {
        "requests", "responses", "bytes", "discovered", "fetched", "skipped_known", "failed",
        "retries", "not_modified", "finish_reason", "started_at", "finished_at", "pages_ok",
        "pages_failed", "article_requests", "segments",
    } <= set(stats)  # fmt: skip
    assert stats["finish_reason"] == "finished"
    assert stats["skipped_known"] == 1
    assert stats["retries"] >= 1
    assert stats["requests"] == len(first_run["requests"])


def test_every_article_requested_once_and_archived(first_run: dict[str, Any]) -> None:
    linked: dict[str, str] = first_run["linked"]
    article_hits = Counter(article_id(r.path) for r in first_run["requests"] if article_id(r.path))
    expected = set(linked) - {SKIP_ID, ROBOTS_ID}
    assert set(article_hits) == expected
    assert article_hits[RETRY_ID] == 2  # 503, then 200
    assert all(n == 1 for aid, n in article_hits.items() if aid != RETRY_ID)

    pages = pages_of(first_run["warc"])
    ids = [article_id(p.url) for p in pages]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected - {MISSING_ID, OFFSITE_ID}
    for page in pages:
        assert page.url.startswith("https://baotintuc.vn/")
        assert page.fetch_url.startswith(first_run["base_url"] + "/")
        assert page.status == 200
        assert f"https://baotintuc.vn{linked[article_id(page.url)]}".encode() in page.body
    assert first_run["warc"] and not list(first_run["warc"][0].parent.glob("*.part"))

    discovered = [d for d in read_jsonl(first_run["run_dir"] / "discovered.jsonl")
                  if d["outcome"] != "print_only"]  # print views: reported, never fetched
    assert len(discovered) == len({d["article_id"] for d in discovered}) == len(linked)
    assert {d["outcome"] for d in discovered if d["article_id"] == SKIP_ID} == {"known"}
    vias = {d["article_id"]: d["via"] for d in discovered}
    assert vias[FEED_ONLY_ID] == "rss:tin-moi-nhat"
    assert vias[MISSING_ID] == "listing:phap-luat-475ct0:1"


def test_failures_recorded_with_reasons(first_run: dict[str, Any]) -> None:
    failures = read_jsonl(first_run["run_dir"] / "failures.jsonl")
    by_id = {article_id(f["url"]): f for f in failures if f["stage"] == "article"}
    assert by_id[MISSING_ID]["reason"] == "http_404"
    assert by_id[MISSING_ID]["status"] == 404
    assert by_id[MISSING_ID]["url"].startswith("https://baotintuc.vn/")
    assert by_id[ROBOTS_ID]["reason"] == "robots_forbidden"
    assert by_id[OFFSITE_ID]["reason"] == "redirect_offsite"
    assert RETRY_ID not in by_id
    assert set(failures[0]) == {"url", "stage", "reason", "status", "detail", "at", "article_id"}
    assert by_id[MISSING_ID]["article_id"] == MISSING_ID


def test_polite_and_on_origin_only(first_run: dict[str, Any]) -> None:
    requests = first_run["requests"]
    assert requests[0].path == "/robots.txt"
    agent = load_settings().crawl.full_user_agent
    assert {r.headers.get("User-Agent") for r in requests} == {agent}
    assert all("Cookie" not in r.headers for r in requests)
    assert first_run["other_requests"] == []  # a link to another origin is never followed
    assert not any(r.path.startswith("/rss/") for r in requests)
    assert SKIP_ID not in " ".join(r.path for r in requests)
    log = (first_run["run_dir"] / "scrapy.log").read_text(encoding="utf-8")
    assert "example.invalid" in log  # the blocked redirect is logged ...
    assert "DNS lookup failed" not in log  # ... and never attempted


def test_second_run_revalidates_feeds(first_run: dict[str, Any]) -> None:
    proc = first_run["proc2"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    feed = [r for r in first_run["requests2"] if r.path == "/tin-moi-nhat.rss"]
    assert len(feed) == 1
    assert "If-None-Match" in feed[0].headers
    assert feed[0].status == 304
    assert not any(r.path == "/phap-luat-475ct0.htm" for r in first_run["requests2"])  # rss only
    stats = json.loads((first_run["run_dir2"] / "stats.json").read_text())
    assert stats["not_modified"] >= 1
    # The 304 feed is still read from the cache: its articles are fetched again.
    ids = {article_id(p.url) for p in pages_of(first_run["warc2"])}
    assert FEED_ONLY_ID in ids


FAULTS: dict[str, tuple[Fault, str | None]] = {
    # slug: (fault, expected failure reason; None = archived after all)
    "cham": (Fault("timeout", seconds=4), "timeout"),
    "ngat": (Fault("reset"), "connection_error"),
    "cut": (Fault("truncated"), "truncated"),
    "pdf": (Fault("content_type", content_type="application/pdf"), "non_html"),
    "lon": (Fault("huge", size=3 * 1024 * 1024), "too_large"),
    "utf8": (Fault("invalid_utf8"), None),
    "vong": (Fault("redirect_loop"), "redirect_loop"),
    "rong": (Fault("empty"), "empty_body"),
    "dong": (Fault("429", retry_after=1, times=1), None),
    "loi": (Fault("status", status=500), "http_500"),
}


def test_faults_become_failure_rows(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "phap-luat").mkdir(parents=True)
    (site / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    paths = {slug: f"/phap-luat/{slug}-2025071312000{i:04d}.htm" for i, slug in enumerate(FAULTS)}
    for path in paths.values():
        (site / path.lstrip("/")).write_text(
            ARTICLE_PAGE.format(id=article_id(path), path=path), encoding="utf-8"
        )
    items = "".join(f"<item><link>https://baotintuc.vn{p}</link></item>" for p in paths.values())
    (site / "tin-moi-nhat.rss").write_text(f"<rss version='2.0'><channel>{items}</channel></rss>")
    with MirrorServer(site) as srv:
        for slug, (fault, _) in FAULTS.items():
            srv.set_fault(paths[slug], fault)
        proc, run_dir, warc = crawl(
            srv,
            tmp_path,
            "faults",
            mode="rss",
            discover_feed_index=False,
            download_timeout=1,
            retry_times=1,
            max_page_bytes=1048576,
        )
        hits = Counter(r.path.split("?")[0] for r in srv.requests)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = {
        f["url"].rsplit("/", 1)[1].split("-")[0]: f
        for f in read_jsonl(run_dir / "failures.jsonl")
        if f["stage"] == "article"
    }
    expected = {slug: reason for slug, (_, reason) in FAULTS.items() if reason}
    assert {slug: f["reason"] for slug, f in failures.items()} == expected
    archived = {p.url.rsplit("/", 1)[1].split("-")[0]: p for p in pages_of(warc)}
    assert set(archived) == {s for s, (_, reason) in FAULTS.items() if reason is None}
    assert b"\xff\xfe" in archived["utf8"].body  # kept as fetched; the parser replaces it
    assert hits[paths["dong"]] == 2  # 429, then served after Retry-After
    assert hits[paths["loi"]] == 2  # 500, retried once (RETRY_TIMES=1), given up
    assert hits[paths["pdf"]] == 1 and hits[paths["rong"]] == 1  # not retried
    stats = json.loads((run_dir / "stats.json").read_text())
    assert stats["failed"] == len(expected) and stats["fetched"] == 2
    assert stats["finish_reason"] == "finished"
