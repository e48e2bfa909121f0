"""Build the offline stand-in of baotintuc.vn: ``baotintuc mirror build [--articles N]``.

Writes ``OUT/site/…`` (real 2025 pages byte for byte, synthetic pages in the real shell, the
seed article, listings, tag pages, feeds, sitemaps, robots.txt, home page),
``OUT/ground_truth.jsonl`` and ``OUT/manifest.json``. Deterministic: the same inputs and
options give the same bytes.

Any size: ``--articles N`` (default 381: 20 real, the seed, 360 synthetic) spreads the
synthetic articles over more days as N grows (back to 2014 at ~20,000; see
:func:`mirror.synth.span_days`). Up to :data:`FILES_MAX` articles every page is a file;
beyond, synthetic article pages and category listing pages are rendered by the server on
request from ``OUT/plan.sqlite`` (:mod:`mirror.plan`), which keeps a 100,000-article mirror
at a few hundred MB instead of ~28 GB.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import re
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from baotintuc.site import CATEGORIES_BY_ID, KNOWN_FEEDS, TOP_LEVEL, Category
from mirror import sources
from mirror.content import real_paragraphs, seed_paragraphs
from mirror.feeds import ROBOTS_TXT, rss, rss_index
from mirror.listings import PER_PAGE, Header, ListingShell, category_header, page_path, pages_for
from mirror.model import Article
from mirror.options import DEFAULT_ARTICLES, FILES_MAX, FIXED_ARTICLES, add_build_arguments
from mirror.plan import PLAN_FILE, write_plan
from mirror.real import RealPage, load_expected, read_real_pages, real_truth
from mirror.seed import build_seed
from mirror.shell import ArticleShell
from mirror.sitemaps import Sitemaps, build_sitemaps, robots_line
from mirror.synth import SEED, plan_synthetic, span_days
from mirror.text import collapse, iso

PageStore = Literal["auto", "files", "on-demand"]
EXPECTED_FILE = sources.REAL_TRUTH_FILE


@dataclass(frozen=True, slots=True)
class BuildResult:
    out_dir: Path
    site_dir: Path
    ground_truth: Path
    manifest: Path
    articles: int
    synthetic: int
    real: int
    truth_rows: int
    pages: str  # "files" | "on-demand"


def resolve_store(pages: PageStore, articles: int) -> str:
    if pages == "auto":
        return "files" if articles <= FILES_MAX else "on-demand"
    if pages not in ("files", "on-demand"):
        raise ValueError(f"pages must be auto, files or on-demand, not {pages!r}")
    return pages


INDEXED_FEEDS = frozenset(KNOWN_FEEDS)


def _write(site: Path, url_path: str, data: str | bytes) -> None:
    rel = url_path.lstrip("/") or "index.html"
    file = site / rel
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def tag_path(tag: str) -> str:
    return "/tags/" + "+".join(collapse(tag).lower().split()) + ".htm"


def synthetic_truth(a: Article) -> dict[str, Any]:
    """Ground truth straight from the generator's inputs (never from a parser)."""
    assert a.byline is not None
    return {
        "article_id": a.article_id,
        "url": a.url,
        "title": collapse(a.title),
        "sapo": collapse(a.sapo),
        "body_text": "\n\n".join(collapse(x) for x in a.body_text().split("\n\n")),
        "byline": a.byline.printed,
        "authors": list(a.byline.authors),
        "source": a.byline.source,
        "published_at": iso(a.published_at),
        "category": a.category.name,
        "category_id": a.category.id,
        "parent_category_id": a.category.parent_id,
        "tags": [collapse(t) for t in a.tags],
        "kind": a.kind,
        "images": [
            {"position": i, "url": f.url, "caption": collapse(f.caption), "credit": f.credit}
            for i, f in enumerate(a.figures)
        ],
        "listed_in": a.listed_in,
    }


def _prepare_out(out_dir: Path) -> Path:
    site = out_dir / "site"
    if site.exists():
        if not (out_dir / "manifest.json").exists():
            raise FileExistsError(f"{site} exists but is not a mirror build; not deleting it")
        shutil.rmtree(site)
    (out_dir / PLAN_FILE).unlink(missing_ok=True)  # the server renders from it when present
    site.mkdir(parents=True)
    return site


def _check_articles(articles: int) -> None:
    if articles < FIXED_ARTICLES:
        raise ValueError(f"a mirror has at least {FIXED_ARTICLES} articles (20 real pages and "
                         f"the seed article), not {articles}")


def build_site(out_dir: Path, articles: int = DEFAULT_ARTICLES, *, sitemaps: bool = True,
               pages: PageStore = "auto", expected_file: Path = EXPECTED_FILE) -> BuildResult:
    _check_articles(articles)
    store = resolve_store(pages, articles)
    site = _prepare_out(out_dir)

    reals = read_real_pages()
    seed_raw = sources.seed_text()
    seed = build_seed(seed_raw)
    pool = real_paragraphs(sources.article_pages()) + seed_paragraphs(seed_raw)
    taken = {r.article.article_id for r in reals} | {seed.article_id}
    synth = plan_synthetic(articles - FIXED_ARTICLES, pool, taken)
    arts: list[Article] = sorted([r.article for r in reals] + synth + [seed],
                                 key=lambda a: a.article_id)
    by_id = {a.article_id: a for a in arts}

    # Article pages: real pages byte for byte, the seed rebuilt, synthetic ones rendered.
    shell = ArticleShell()
    for r in reals:
        _write(site, r.article.path, r.data)
    note = ("\n<!-- mirror: seed article rebuilt from text; reconstructed: "
            + "; ".join(seed.reconstructed) + " -->\n")
    _write(site, seed.path, shell.render(seed, by_id.get, comment=note))
    if store == "files":
        for a in synth:
            _write(site, a.path, shell.render(a, by_id.get))

    # Listings (leaf + parent) and feeds. Every top-level category has a listing and a feed
    # on the real site, even when the mirror has no article for it (empty listing and feed).
    members: dict[int, list[Article]] = defaultdict(list)
    for a in arts:
        members[a.category.id].append(a)
        if a.category.parent_id:
            members[a.category.parent_id].append(a)
    listing = ListingShell()
    ordered: dict[str, list[Article]] = {}
    feeds: list[tuple[str, str]] = [("Tin mới nhất", "tin-moi-nhat")]
    for cid in sorted(set(members) | {c.id for c in TOP_LEVEL}):
        cat = CATEGORIES_BY_ID[cid]
        items = sorted(members[cid], key=lambda a: a.article_id, reverse=True)
        ordered[cat.key] = items
        if store == "files":
            _write_listing(site, listing, cat, items)
        _write(site, f"/{cat.slug}.rss", rss(cat.name, cat.listing_path, items))
        if cat.slug in INDEXED_FEEDS:
            feeds.append((cat.name, cat.slug))
    listings = {key: pages_for(len(items)) for key, items in ordered.items()}
    newest = sorted(arts, key=lambda a: a.article_id, reverse=True)
    _write(site, "/tin-moi-nhat.rss", rss("Tin mới nhất", "/", newest))
    # /rss.htm lists about 23 feeds on the real site (STRUCTURE.md): tin-moi-nhat, the
    # top-level categories and Chính trị. Sub-category feeds exist but are not indexed.
    _write(site, "/rss.htm", rss_index(feeds))
    maps = build_sitemaps(arts) if sitemaps else None
    _write(site, "/robots.txt", ROBOTS_TXT + (robots_line() if maps else ""))
    if maps:
        for path, xml in maps.files.items():
            _write(site, path, xml)
    home = Header("Tin mới nhất", "/", tuple((c.name, c.listing_path, c.id) for c in
                  sorted((CATEGORIES_BY_ID[k] for k in members if not CATEGORIES_BY_ID[k]
                          .parent_id), key=lambda c: c.id)),
                  "Báo Tin tức - Thông tấn xã Việt Nam", "Tin tức mới nhất trong ngày.")
    _write(site, "/index.html", listing.render(home, newest[:PER_PAGE], newest[:4], 1, 1, "/"))
    tags = _write_tag_pages(site, listing, synth + [seed], reals)

    if store == "on-demand":
        write_plan(out_dir / PLAN_FILE, arts, ordered,
                   {"generator": "mirror.build", "inputs": sources.inputs_digest(),
                    "articles": str(len(arts))})

    # Ground truth and manifest.
    expected = load_expected(expected_file)
    truth = out_dir / "ground_truth.jsonl"
    truth_rows = _write_truth(truth, arts, reals, expected)
    manifest = out_dir / "manifest.json"
    info = _manifest(arts, reals, synth, seed, listings, feeds, tags, expected, expected_file,
                     truth_rows, maps, store)
    info["storage"] = _storage(out_dir, site)
    manifest.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return BuildResult(out_dir, site, truth, manifest, len(arts), len(synth), len(reals),
                       truth_rows, store)


def _write_truth(file: Path, arts: list[Article], reals: list[RealPage],
                 expected: dict[str, Any]) -> int:
    real_rows = {r.article.article_id: real_truth(r.article, expected[r.article.url])
                 for r in reals if r.article.url in expected}
    n = 0
    with file.open("w", encoding="utf-8") as out:
        for a in arts:  # sorted by article_id
            row = synthetic_truth(a) if a.origin != "real" else real_rows.get(a.article_id)
            if row is not None:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    return n


def _write_tag_pages(site: Path, listing: ListingShell, made: list[Article],
                     reals: list[RealPage]) -> dict[str, tuple[str, list[Article]]]:
    """Tag pages (newest 20 each): synthetic/seed tags, and the real pages' tag links."""
    tags: dict[str, tuple[str, list[Article]]] = {}
    for a in made:
        for t in a.tags:
            tags.setdefault(tag_path(t), (t, []))[1].append(a)
    for r in reals:
        for href, name in _real_tags(r.data.decode("utf-8")):
            tags.setdefault(href, (name, []))[1].append(r.article)
    for path, (name, tagged) in sorted(tags.items()):
        items = sorted(tagged, key=lambda a: a.article_id, reverse=True)[:PER_PAGE]
        header = Header(name, path, (), f"{name} - Tin tức {name} mới nhất", name)
        _write(site, path, listing.render(header, items, items[:4], 1, 1, path))
    return tags


def _real_tags(page: str) -> list[tuple[str, str]]:
    block = page[page.find('id="plhMain_NewsDetail1_divTags"'):]
    block = block[: block.find("</ul>")]
    return [(html.unescape(h), collapse(html.unescape(t)))
            for h, t in re.findall(r'<a href="(/tags/[^"]+)" title="([^"]*)"', block)]


def render_listing_page(shell: ListingShell, cat: Category, chunk: list[Article],
                        focus: list[Article], n: int, n_pages: int) -> str:
    """Page ``n`` of a category listing (the build and the on-demand server share this)."""
    path = page_path(cat.listing_path, n)
    return shell.render(category_header(cat), chunk, focus, n, n_pages, path)


def _write_listing(site: Path, shell: ListingShell, cat: Category, items: list[Article]) -> None:
    n_pages = pages_for(len(items))
    for n in range(1, n_pages + 1):
        chunk = items[(n - 1) * PER_PAGE : n * PER_PAGE]
        _write(site, page_path(cat.listing_path, n),
               render_listing_page(shell, cat, chunk, items[:4], n, n_pages))


def _storage(out_dir: Path, site: Path) -> dict[str, int]:
    files = [p for p in out_dir.rglob("*") if p.is_file() and p.name != "manifest.json"]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files),
            "site_files": sum(1 for p in files if site in p.parents)}


def _manifest(arts: list[Article], reals: list[RealPage], synth: list[Article], seed: Article,
              listings: dict[str, int], feeds: list[tuple[str, str]],
              tags: dict[str, Any], expected: dict[str, Any], expected_file: Path,
              truth_rows: int, maps: Sitemaps | None, store: str) -> dict[str, Any]:
    dates = sorted(a.published_at for a in arts)
    sdates = sorted(a.published_at for a in synth) or dates
    cats = sorted({a.category.key for a in arts})
    pkg = Path(__file__).resolve().parent
    return {
        "generator": "mirror.build",
        "seed": SEED,
        "options": {"articles": len(arts), "pages": store, "sitemaps": maps is not None},
        "counts": {
            "articles": len(arts), "synthetic": len(synth), "real": len(reals), "seed": 1,
            "categories": len(cats), "listings": len(listings),
            "listing_pages": sum(listings.values()), "feeds": len(feeds), "tag_pages": len(tags),
            "ground_truth_rows": truth_rows,
            "sitemap_urls": 0 if maps is None else maps.summary()["article_urls"],
        },
        "date_span": {"first": iso(dates[0]), "last": iso(dates[-1])},
        "synthetic_date_span": {"first": iso(sdates[0]), "last": iso(sdates[-1]),
                                "days": (sdates[-1] - sdates[0]).days,
                                "planned_days": span_days(len(synth))},
        "articles_by_year": dict(sorted(Counter(str(a.published_at.year) for a in arts)
                                        .items())),
        "categories": cats,
        "listings": listings,
        "listing_pages_max": max(listings.values()),
        "feeds": [f"/{slug}.rss" for _, slug in feeds],
        "sitemaps": None if maps is None else maps.summary(),
        "real_pages": {
            "ids": [r.article.article_id for r in reals],
            "truth_source": str(expected_file.relative_to(pkg.parent))
            if expected_file.is_relative_to(pkg.parent) else str(expected_file),
            "truth_found_for": sorted(r.article.article_id for r in reals
                                      if r.article.url in expected),
        },
        "seed_article": {"id": seed.article_id, "url": seed.url,
                         "reconstructed": seed.reconstructed},
        "guesses": [
            "sub-heading markup <h3><strong>…</strong></h3> and <ul><li> lists in bodies "
            "(no real sample has them)",
            "RSS 2.0 layout and RFC 822 pubDate (no real feed sample)",
            "robots.txt content (not evidenced)",
            "sitemaps: the index /sitemap.xml named in robots.txt, one sitemap per month of "
            "articles (/sitemaps/articles-YYYY-MM.xml) and a Google News sitemap of the last "
            "two days (/sitemaps/news.xml); the live site's sitemaps were never seen",
            "listing pagination window of 6 numbers; feeds carry the newest 50 items",
            "tag pages and the home page reuse the category listing shell",
        ],
    }


def fingerprint(articles: int = DEFAULT_ARTICLES, *, sitemaps: bool = True,
                pages: PageStore = "auto", expected_file: Path = EXPECTED_FILE) -> str:
    """A hash of everything a build depends on: generator code, inputs and options."""
    h = hashlib.sha256()
    h.update(f"{articles}|{sitemaps}|{resolve_store(pages, articles)}".encode())
    for path in [*sorted(Path(__file__).parent.glob("*.py")), *sources.input_files(),
                 expected_file]:
        if path.exists():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def ensure_built(out_dir: Path, articles: int = DEFAULT_ARTICLES, *, sitemaps: bool = True,
                 pages: PageStore = "auto", force: bool = False) -> Path:
    """Build the mirror into ``out_dir`` unless an identical build is already there.

    Returns the site directory to serve.
    """
    stamp = out_dir / "fingerprint.txt"
    want = fingerprint(articles, sitemaps=sitemaps, pages=pages)
    site = out_dir / "site"
    if force or not site.is_dir() or not stamp.exists() or stamp.read_text().strip() != want:
        stamp.unlink(missing_ok=True)  # an interrupted build must not look complete
        build_site(out_dir, articles, sitemaps=sitemaps, pages=pages)
        stamp.write_text(want + "\n", encoding="utf-8")
    return site


def describe(res: BuildResult) -> str:
    return (f"mirror built in {res.site_dir}: {res.articles} articles ({res.synthetic} "
            f"synthetic, {res.real} real, 1 seed), {res.truth_rows} ground-truth rows, "
            f"pages {res.pages}")


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mirror.build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data/mirror"))
    add_build_arguments(ap)
    args = ap.parse_args(None if argv is None else list(argv))
    print(describe(build_site(args.out, args.articles, sitemaps=args.sitemaps,
                              pages=args.pages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
