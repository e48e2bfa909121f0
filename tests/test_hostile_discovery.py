"""Hostile site, class "no silent loss" and "bounded": one stand-in site, two CLI runs.

Every article URL a run discovers must end in ``articles`` or in ``fetch_failures``,
under its own canonical URL, and the run's books must balance
(``discovered = stored + skipped + failed``, ``lost = 0``) in ``crawl_runs``, the CLI
summary and the ``ingest-summary`` artifact. The site (real page shells, served over HTTP
on 127.0.0.1) links its articles in every awkward way we know of at once: redirects and
meta refreshes to other articles, off-site and in chains; one ID under several URLs whose
first is dead; entity references in feed links; unresolvable feed items; duplicates in a
feed and in a listing; the same article under two categories; pagination that loops or
leads to another category; print views only; impossible dates in IDs; URL variants; very
long URLs; a date in 2099, a 2 MB title, thousands of figures.

The second run, after the clock has moved 7 hours (fetch times moved back), shows that a
young article is re-checked and a future-dated one is not, that nothing stored is fetched
again, and that a per-run cap defers the rest and says so.
"""

from __future__ import annotations

import dataclasses
import re
import resource
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from baotintuc.urls import listing_info
from mirror.server import OFFSITE_ORIGIN, Fault, MirrorServer
from tests.hostile.run import artifact, assert_invariant, dicts, hostile_env, rows, run, runs
from tests.hostile.site import (
    AN_NINH,
    PHAP_LUAT,
    THE_THAO,
    StandIn,
    canonical,
    many_figures,
    meta_refresh,
)

pytestmark = pytest.mark.slow
FEED = "hostile"
HUGE_TITLE_CHARS = 2_000_000
FIGURES = 2_000
LONG_URL_CHARS = 3_000


@dataclasses.dataclass
class Site:
    standin: StandIn
    server: MirrorServer
    case: dict[str, Any]  # case name -> mirror Article (or a path / URL)
    extra: dict[str, Any]


def build(root: Path) -> tuple[StandIn, dict[str, Any], dict[str, Fault], dict[str, Any]]:
    s = StandIn(root, articles=60)
    c: dict[str, Any] = {}
    faults: dict[str, Fault] = {}
    extra: dict[str, Any] = {}
    now = datetime.now(UTC)

    def art(name: str, category: Any = PHAP_LUAT, publish: bool = True, **kw: Any) -> Any:
        a = s.take(category, **kw)
        c[name] = a
        if publish:
            s.publish(a)
        return a

    plain = art("plain")
    dup = art("dup")
    amp = s.take(PHAP_LUAT)
    amp = dataclasses.replace(amp, path=amp.path.replace(f"-{amp.article_id}",
                                                         f"-&-ban-an-{amp.article_id}"))
    s.by_id[amp.article_id] = amp
    c["amp"] = amp
    s.publish(amp)
    # Split by an entity, the tail of this link is a real article URL (``shadowed``): the
    # whole link is no article URL, so it must claim nothing.
    shadowed = art("shadowed")
    typo = art("typo_then_good")
    dead_first = art("dead_then_later", category=AN_NINH)
    both_dead = art("both_dead", publish=False)
    redirect_src = art("redirect_other", publish=False)
    redirect_dst = art("redirect_target")
    renamed = art("renamed")
    renamed_old = renamed.path.replace(renamed.slug, renamed.slug[: len(renamed.slug) // 2])
    chain = art("chain")
    chain_1 = chain.path.replace(chain.slug, "buoc-1")
    chain_2 = chain.path.replace(chain.slug, "buoc-2")
    refresh_src = art("refresh_other", publish=False)
    refresh_dst = art("refresh_target")
    refresh_off = art("refresh_offsite", publish=False)
    variants = art("variants")
    long = art("long_url", publish=False)
    long_path = ("/phap-luat/" + "/".join(["x" * 200] * (LONG_URL_CHARS // 201))
                 + f"/{long.slug}-{long.article_id}.htm")
    s.publish(long, long_path)
    extra["long_path"] = long_path
    future = art("future", publish=False,
                 published_at=datetime(2099, 1, 1, 8, 0, tzinfo=plain.published_at.tzinfo))
    s.publish(future)
    title = art("huge_title", publish=False)
    page = s.render(title)
    h1 = re.search(r'<h1 class="detail-title">.*?</h1>', page, re.S)
    assert h1 is not None
    huge = "Tiêu đề rất dài " * (HUGE_TITLE_CHARS // 16)
    s.publish(title, html=page[: h1.start()] + f'<h1 class="detail-title">{huge}</h1>'
              + page[h1.end():])
    figures = many_figures(s.take(PHAP_LUAT), FIGURES)
    s.by_id[figures.article_id] = figures
    c["figures"] = figures
    s.publish(figures)
    young = s.fresh(now - timedelta(hours=2), PHAP_LUAT)
    c["young"] = young
    s.publish(young)
    cross = art("cross")  # in the feed under phap-luat, in the listing under an-ninh
    cross_other = cross.path.replace("/phap-luat/", "/an-ninh-trat-tu/")
    s.publish(cross, cross_other)  # the site answers both
    listed = [art(f"listed_{i}") for i in range(4)]
    print_only = art("print_only", publish=False)
    print_path = f"/{print_only.slug}-n{print_only.article_id}.htm"
    page3 = art("page_3")
    sub2 = art("an_ninh_page_2", category=AN_NINH)
    off_cat = art("the_thao_item", category=THE_THAO)

    # Faults: redirects (HTTP) and the dead URLs.
    faults[redirect_src.path] = Fault("redirect", status=301, location=redirect_dst.path)
    faults[renamed_old] = Fault("redirect", status=301, location=renamed.path)
    faults[chain_1] = Fault("redirect", status=302, location=chain_2)
    faults[chain_2] = Fault("redirect", status=302, location=chain.path)
    s.write(refresh_src.path, meta_refresh(refresh_dst.path))
    s.write(refresh_off.path, meta_refresh(OFFSITE_ORIGIN + refresh_off.path))
    bad_month = f"/phap-luat/tin-thang-13-{'20251301101010101'}.htm"
    bad_day = f"/phap-luat/tin-ngay-32-{'20250732101010101'}.htm"
    extra |= {"renamed_old": renamed_old, "chain_1": chain_1, "print_path": print_path,
              "cross_other": cross_other, "bad_month": bad_month, "bad_day": bad_day}

    typo_path = typo.path.replace(typo.slug, typo.slug + "-loi-go")
    dead_path = dead_first.path.replace("/an-ninh-trat-tu/", "/phap-luat/").replace(
        dead_first.slug, "ten-cu")
    both_a = both_dead.path
    both_b = both_dead.path.replace(both_dead.slug, both_dead.slug + "-2")
    extra |= {"typo_path": typo_path, "dead_path": dead_path, "both": [both_a, both_b]}
    base = canonical("")
    links = [
        base + plain.path,
        base + dup.path,
        base + dup.path,  # a duplicate item in one feed
        base + amp.path.replace("&", "&amp;"),
        base + "/phap-luat/xem-them?ref=&amp;" + base + shadowed.path,
        base + typo_path, base + typo.path,
        base + dead_path,
        base + both_a, base + both_b,
        base + redirect_src.path,
        base + renamed_old,
        base + chain_1,
        base + refresh_src.path,
        base + refresh_off.path,
        base + variants.path,
        base + variants.path + "?utm_source=rss&amp;utm_medium=feed",
        base + variants.path + "#binh-luan",
        base + variants.path.upper().replace(".HTM", ".htm"),
        base + variants.path.replace("/phap-luat/", "/ph%61p-luat/"),
        base + long_path,
        base + future.path,
        base + title.path,
        base + figures.path,
        base + young.path,
        base + cross.path,
        base + bad_month,
        base + bad_day,
    ]
    s.feed(FEED, links, raw_items=[
        f"<item><title>Trang chuyên mục</title><link>{base}{PHAP_LUAT.listing_path}</link>"
        "</item>\n",
        "<item><title>Không có liên kết</title><description>…</description></item>\n",
    ])
    extra["unresolvable"] = 3  # the shadowing link, the listing link, the item with none

    # Listings: phap-luat pages 1-3 (page 2's Tiếp goes back to page 1), an-ninh pages 1-2
    # (page 1's Tiếp goes to another category).
    top = [listed[0]]
    s.listing(PHAP_LUAT, 1, [listed[0], listed[1], listed[0], dataclasses.replace(
        cross, path=cross_other), shadowed], top=top,
        next_href=f"{PHAP_LUAT.listing_path.removesuffix('.htm')}/trang-2.htm")
    s.listing(PHAP_LUAT, 2, [listed[2], print_only], next_href=PHAP_LUAT.listing_path,
              hrefs={print_only.path: print_path})
    s.listing(PHAP_LUAT, 3, [page3, dead_first, listed[3]])
    s.listing(AN_NINH, 1, [listed[1]], next_href=f"{THE_THAO.listing_path.removesuffix('.htm')}"
              "/trang-2.htm")
    s.listing(AN_NINH, 2, [sub2])
    s.listing(THE_THAO, 2, [off_cat])
    return s, c, faults, extra


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("hostile-site")
    s, cases, faults, extra = build(root)
    with MirrorServer(s.site, faults=faults) as srv:
        yield Site(s, srv, cases, extra)


@pytest.fixture(scope="module")
def first(site: Site, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hostile-run")
    db = root / "h.duckdb"
    env = hostile_env(root, tmp_path_factory, BTT_CRAWL__FEEDS=f'["{FEED}"]')
    mark = len(site.server.requests)
    proc = run(env, "crawl", "--base-url", site.server.base_url, "--db", str(db),
               "--categories", "phap-luat,an-ninh-trat-tu", "--max-pages", "5")
    return {"root": root, "db": db, "env": env, "proc": proc,
            "requests": site.server.requests[mark:]}


def _stored(db: Path) -> dict[str, dict[str, Any]]:
    return {r["article_id"]: r for r in dicts(db, "select * from articles")}


def _failures(db: Path) -> list[dict[str, Any]]:
    return dicts(db, "select * from fetch_failures")


def _hits(requests: list[Any], path: str) -> int:
    return sum(1 for r in requests if r.path.split("?", 1)[0] == path)


# -- the run as a whole --------------------------------------------------------------------


def test_first_run_completes_and_balances(first: dict[str, Any]) -> None:
    proc = first["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    (row,) = runs(first["db"])
    assert row["status"] == "completed", row
    assert_invariant(row)
    assert f"{row['discovered']} discovered" in proc.stdout
    assert "ACCOUNTING" not in proc.stdout
    summary = artifact(first["env"], "ingest-summary", row["flow_run_id"])
    figures = {m["metric"]: m["value"] for m in summary["table"]}
    assert figures["lost"] == 0 and figures["discovered"] == row["discovered"]
    assert figures["stored"] == row["stored"] and figures["failed"] == row["failed"]
    assert "accounting holds" in summary["description"]


def test_every_discovered_id_is_stored_or_failed(first: dict[str, Any]) -> None:
    db = first["db"]
    discovered = {r[0] for r in rows(db, "select distinct article_id from article_urls")}
    stored = set(_stored(db))
    failed = {f["article_id"] for f in _failures(db) if f["article_id"]}
    assert discovered <= stored | failed, discovered - stored - failed
    (row,) = runs(db)
    assert row["discovered"] == len(discovered)
    assert row["stored"] == len(discovered & stored)
    assert row["failed"] == len(discovered - stored)


def test_no_listing_page_fetched_twice_and_no_other_category(site: Site,
                                                          first: dict[str, Any]) -> None:
    pages = Counter(r.path for r in first["requests"] if listing_info(r.path))
    assert all(n == 1 for n in pages.values()), pages
    assert not [p for p in pages if p.startswith("/the-thao")], pages


# -- one ID, many URLs ------------------------------------------------------------------------


def test_duplicates_are_fetched_once(site: Site, first: dict[str, Any]) -> None:
    stored = _stored(first["db"])
    for name in ("dup", "listed_0", "variants", "cross"):
        a = site.case[name]
        assert a.article_id in stored, name
        other = site.extra["cross_other"] if name == "cross" else None
        assert _hits(first["requests"], a.path) + (
            _hits(first["requests"], other) if other else 0) == 1, name


def test_url_variants_are_one_article_under_its_canonical_url(site: Site,
                                                              first: dict[str, Any]) -> None:
    a = site.case["variants"]
    stored = _stored(first["db"])[a.article_id]
    assert stored["url"] == canonical(a.path)
    urls = {r[0] for r in rows(first["db"], "select url from article_urls where article_id = ?",
                               [a.article_id])}
    # Query strings, fragments and percent-encoding collapse into the canonical URL; a
    # path in capitals is another URL of the same ID (recorded, never needed).
    assert urls == {canonical(a.path), canonical(a.path.upper().replace(".HTM", ".htm"))}


def test_same_article_under_two_categories(site: Site, first: dict[str, Any]) -> None:
    a = site.case["cross"]
    urls = {r[0]: r[1] for r in rows(
        first["db"], "select url, via from article_urls where article_id = ?", [a.article_id])}
    assert set(urls) == {canonical(a.path), canonical(site.extra["cross_other"])}
    assert urls[canonical(a.path)] == f"rss:{FEED}"
    assert urls[canonical(site.extra["cross_other"])].startswith("listing:phap-luat")


@pytest.mark.parametrize("name", ["typo_then_good", "dead_then_later"])
def test_a_dead_url_is_not_the_end_of_its_id(site: Site, first: dict[str, Any],
                                             name: str) -> None:
    a = site.case[name]
    dead = site.extra["typo_path" if name == "typo_then_good" else "dead_path"]
    stored = _stored(first["db"])
    assert a.article_id in stored, f"{name}: its other URL must be tried"
    assert stored[a.article_id]["url"] == canonical(a.path)
    urls = {r[0] for r in rows(first["db"], "select url from article_urls where article_id = ?",
                               [a.article_id])}
    assert urls == {canonical(dead), canonical(a.path)}
    dead_rows = [f for f in _failures(first["db"]) if f["url"] == canonical(dead)]
    assert [(f["reason"], f["article_id"]) for f in dead_rows] == [("http_404", a.article_id)]


def test_an_id_whose_every_url_is_dead_fails_once_per_url(site: Site,
                                                         first: dict[str, Any]) -> None:
    a = site.case["both_dead"]
    got = sorted((f["url"], f["reason"]) for f in _failures(first["db"])
                 if f["article_id"] == a.article_id)
    assert got == sorted((canonical(p), "http_404") for p in site.extra["both"])
    assert a.article_id not in _stored(first["db"])


# -- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("src, dst", [("redirect_other", "redirect_target"),
                                      ("refresh_other", "refresh_target")])
def test_redirect_to_another_article(site: Site, first: dict[str, Any], src: str,
                                     dst: str) -> None:
    """A 301 or a meta refresh to another article: the source fails under its own URL,
    the target is stored (once) and its URL recorded as found by that redirect."""
    a, b = site.case[src], site.case[dst]
    fails = [f for f in _failures(first["db"]) if f["article_id"] == a.article_id]
    assert [(f["url"], f["reason"]) for f in fails] == [
        (canonical(a.path), "redirect_other_article")]
    stored = _stored(first["db"])
    assert a.article_id not in stored
    assert stored[b.article_id]["url"] == canonical(b.path)
    via = rows(first["db"], "select via from article_urls where article_id = ?", [b.article_id])
    assert via == [(f"redirect:{a.article_id}",)]
    assert _hits(first["requests"], b.path) == 1


@pytest.mark.parametrize("name, old", [("renamed", "renamed_old"), ("chain", "chain_1")])
def test_redirect_to_the_same_article_stores_it_under_the_final_url(
        site: Site, first: dict[str, Any], name: str, old: str) -> None:
    a = site.case[name]
    stored = _stored(first["db"])[a.article_id]
    assert stored["url"] == canonical(a.path)
    assert stored["title"] == site.standin.truth(a)["title"]
    urls = {r[0] for r in rows(first["db"], "select url from article_urls where article_id = ?",
                               [a.article_id])}
    assert canonical(site.extra[old]) in urls
    assert not [f for f in _failures(first["db"]) if f["article_id"] == a.article_id]


def test_meta_refresh_off_site_fails_under_its_own_url(site: Site, first: dict[str, Any]) -> None:
    a = site.case["refresh_offsite"]
    fails = [(f["url"], f["reason"]) for f in _failures(first["db"])
             if f["article_id"] == a.article_id]
    assert fails == [(canonical(a.path), "redirect_offsite")]
    assert not [r for r in first["requests"] if r.headers.get("Host", "").startswith("example")]


# -- feeds -------------------------------------------------------------------------------------


def test_feed_link_with_an_entity_is_read_whole(site: Site, first: dict[str, Any]) -> None:
    a = site.case["amp"]
    assert "&" in a.path
    stored = _stored(first["db"])
    assert stored[a.article_id]["url"] == canonical(a.path)
    assert _hits(first["requests"], a.path) == 1


def test_unresolvable_feed_items_are_failures_of_the_feed(site: Site,
                                                          first: dict[str, Any]) -> None:
    feed_url = canonical(f"/{FEED}.rss")
    fails = [f for f in _failures(first["db"]) if f["reason"] == "feed_item_unresolvable"]
    assert len(fails) == site.extra["unresolvable"]
    assert {(f["url"], f["stage"], f["article_id"]) for f in fails} == {(feed_url, "feed", None)}
    # The article whose URL ended the shadowing link is stored once, under its own URL.
    b = site.case["shadowed"]
    assert _stored(first["db"])[b.article_id]["url"] == canonical(b.path)
    urls = rows(first["db"], "select url from article_urls where article_id = ?", [b.article_id])
    assert urls == [(canonical(b.path),)]


# -- listings ----------------------------------------------------------------------------------


def test_pagination_loop_and_foreign_next_link_do_not_hide_later_pages(
        site: Site, first: dict[str, Any]) -> None:
    """Page 2's ``Tiếp`` leads back to page 1, an-ninh's page 1 ``Tiếp`` leads into
    another category: the category's own next page is read instead, and nothing of the
    other category."""
    stored = _stored(first["db"])
    assert site.case["page_3"].article_id in stored
    assert site.case["an_ninh_page_2"].article_id in stored
    assert site.case["the_thao_item"].article_id not in stored
    assert _hits(first["requests"], site.case["the_thao_item"].path) == 0


def test_print_view_only_is_not_silently_dropped(site: Site, first: dict[str, Any]) -> None:
    a = site.case["print_only"]
    outcome = {f["reason"] for f in _failures(first["db"]) if f["article_id"] == a.article_id}
    assert a.article_id in _stored(first["db"]) or outcome, "neither stored nor failed"
    urls = rows(first["db"], "select url from article_urls where article_id = ?", [a.article_id])
    assert urls == [(canonical(site.extra["print_path"]),)]


def test_impossible_dates_in_ids_are_recorded(site: Site, first: dict[str, Any]) -> None:
    fails = {f["url"]: f for f in _failures(first["db"])}
    for key in ("bad_month", "bad_day"):
        url = canonical(site.extra[key])
        assert url in fails, key
        assert fails[url]["reason"] == "bad_article_id"
        assert fails[url]["article_id"] is None
        assert _hits(first["requests"], site.extra[key]) == 0


def test_very_long_url(site: Site, first: dict[str, Any]) -> None:
    """An article URL longer than the url column's bound is a recorded failure, not a
    stored row under a cut URL nor a request silently dropped by Scrapy."""
    a = site.case["long_url"]
    fails = [(f["url"], f["reason"]) for f in _failures(first["db"])
             if f["article_id"] == a.article_id]
    assert fails == [(canonical(site.extra["long_path"]), "url_too_long")]
    assert a.article_id not in _stored(first["db"])


# -- bounded -----------------------------------------------------------------------------------


def test_future_date_is_not_believed_and_is_flagged(site: Site, first: dict[str, Any]) -> None:
    """Every date on the page says 2099 while the ID17 says 2025: no source is plausible,
    so the creation time is the date, and the implausible sources are flagged."""
    a = site.case["future"]
    stored = _stored(first["db"])[a.article_id]
    assert stored["published_at"].year == 2025  # the ID17's creation time
    assert "implausible_date:meta" in stored["warnings"]


def test_huge_title_and_many_figures_are_cut_and_counted(site: Site,
                                                        first: dict[str, Any]) -> None:
    stored = _stored(first["db"])
    # A 2 MB heading is no title: the page's og:title is taken instead (and flagged).
    t = stored[site.case["huge_title"].article_id]
    assert 0 < len(t["title"]) <= 1000 and "title_from_metadata" in t["warnings"]
    f = site.case["figures"]
    n = rows(first["db"], "select count(*) from article_images where article_id = ?",
             [f.article_id])[0][0]
    assert n == 500
    assert "capped:images" in stored[f.article_id]["warnings"]
    (row,) = runs(first["db"])
    assert row["stats"]["cut_fields"] == {"images": 1}
    # Memory: the largest process this test session has waited for (the CLI, its spider)
    # stayed under 1.5 GiB (ru_maxrss is in KiB on Linux).
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 1.5 * 1024 * 1024


# -- the second run: time passes -----------------------------------------------------------


@pytest.fixture(scope="module")
def second(site: Site, first: dict[str, Any]) -> dict[str, Any]:
    """Seven hours later (stored fetch times moved back), three new articles in the feed,
    the feed's failing links gone, and a cap of one article."""
    db = first["db"]
    assert first["proc"].returncode == 0, first["proc"].stderr[-2000:]
    with duckdb.connect(str(db)) as con:
        con.execute("update articles set fetched_at = fetched_at - interval 7 hours")
    s = site.standin
    new = [s.take(PHAP_LUAT) for _ in range(3)]
    for a in new:
        s.publish(a)
    stored = _stored(db)
    keep = [canonical(site.standin.by_id[aid].path) for aid in stored
            if aid in site.standin.by_id and site.standin.by_id[aid].path.startswith("/phap-luat/")
            and len(site.standin.by_id[aid].path) < 300]
    s.feed(FEED, [canonical(a.path) for a in new] + keep)
    mark = len(site.server.requests)
    proc = run(first["env"], "crawl", "--base-url", site.server.base_url, "--db", str(db),
               "--categories", "phap-luat,an-ninh-trat-tu", "--max-pages", "5",
               "--max-articles", "1")
    return {"proc": proc, "new": new, "requests": site.server.requests[mark:]}


def test_second_run_rechecks_young_not_future_and_defers_over_the_cap(
        site: Site, first: dict[str, Any], second: dict[str, Any]) -> None:
    proc = second["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    reqs = second["requests"]
    assert _hits(reqs, site.case["young"].path) == 1, "a young article is re-checked"
    assert _hits(reqs, site.case["future"].path) == 0, "a 2099 date does not make it young"
    fetched_new = [a for a in second["new"] if _hits(reqs, a.path)]
    assert len(fetched_new) == 1, "the cap: one new article"
    refetched = [a for name, a in site.case.items() if not isinstance(a, str)
                 and name not in ("young",) and _hits(reqs, getattr(a, "path", "")) > 0]
    assert refetched == [], "nothing already stored is fetched again"
    r1, r2 = runs(first["db"])
    assert_invariant(r2)
    assert r2["deferred"] == 2
    assert r2["stats"]["rechecked"] == 1
    assert "2 deferred to the next run" in proc.stdout
    summary = artifact(first["env"], "ingest-summary", r2["flow_run_id"])
    assert "2 deferred to the next run" in summary["description"]
