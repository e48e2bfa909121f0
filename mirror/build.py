"""Build the offline stand-in of baotintuc.vn: ``python -m mirror.build --out DIR``.

Writes ``DIR/site/…`` (real 2025 pages byte for byte, synthetic pages in the real shell, the
seed article, listings, tag pages, feeds, robots.txt, home page), ``DIR/ground_truth.jsonl``
and ``DIR/manifest.json``. Deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baotintuc.site import CATEGORIES_BY_ID, TOP_LEVEL, Category
from mirror.content import real_paragraphs, seed_paragraphs
from mirror.feeds import ROBOTS_TXT, rss, rss_index
from mirror.listings import PER_PAGE, Header, ListingShell, page_path
from mirror.model import Article
from mirror.real import load_expected, read_real_pages, real_truth
from mirror.seed import build_seed
from mirror.shell import ArticleShell
from mirror.synth import SEED, plan_synthetic
from mirror.template import category_subs
from mirror.text import collapse, iso

REPO = Path(__file__).resolve().parents[1]
EXPECTED_FILE = REPO / "tests" / "resources" / "baotintuc" / "expected.json"
SYNTHETIC_COUNT = 360


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


def find_shared(shared_dir: Path | None = None) -> Path:
    """The ``baotintuc`` folder of the shared data: argument, env BTT_SHARED_DIR, ../shared."""
    base = shared_dir or Path(os.environ.get("BTT_SHARED_DIR") or REPO.parent / "shared")
    for cand in (base, base / "baotintuc"):
        if (cand / "pages" / "2025-07").is_dir():
            return cand
    raise FileNotFoundError(f"no baotintuc pages under {base}")


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
    site.mkdir(parents=True)
    return site


def build_site(out_dir: Path, shared_dir: Path | None = None,
               expected_file: Path = EXPECTED_FILE) -> BuildResult:
    shared = find_shared(shared_dir)
    pages = shared / "pages" / "2025-07"
    site = _prepare_out(out_dir)

    reals = read_real_pages(pages)
    seed = build_seed(shared / "seed-article.txt")
    pool = real_paragraphs(pages) + seed_paragraphs(
        (shared / "seed-article.txt").read_text(encoding="utf-8"))
    taken = {r.article.article_id for r in reals} | {seed.article_id}
    synth = plan_synthetic(SYNTHETIC_COUNT, pool, taken)
    arts: list[Article] = sorted([r.article for r in reals] + synth + [seed],
                                 key=lambda a: a.article_id)
    by_id = {a.article_id: a for a in arts}

    # Article pages.
    shell = ArticleShell(pages)
    for r in reals:
        _write(site, r.article.path, r.data)
    for a in synth:
        _write(site, a.path, shell.render(a, by_id.get))
    note = ("\n<!-- mirror: seed article rebuilt from text; reconstructed: "
            + "; ".join(seed.reconstructed) + " -->\n")
    _write(site, seed.path, shell.render(seed, by_id.get, comment=note))

    # Listings (leaf + parent) and feeds.
    members: dict[int, list[Article]] = defaultdict(list)
    for a in arts:
        members[a.category.id].append(a)
        if a.category.parent_id:
            members[a.category.parent_id].append(a)
    listing = ListingShell(pages)
    listings: dict[str, int] = {}
    feeds: list[tuple[str, str]] = [("Tin mới nhất", "tin-moi-nhat")]
    # Every top-level category has a listing and a feed on the real site, even when the
    # mirror has no article for it (an empty listing, an empty feed).
    for cid in sorted(set(members) | {c.id for c in TOP_LEVEL}):
        cat = CATEGORIES_BY_ID[cid]
        items = sorted(members[cid], key=lambda a: a.article_id, reverse=True)
        listings[cat.key] = _write_listing(site, listing, cat, items)
        _write(site, f"/{cat.slug}.rss", rss(cat.name, cat.listing_path, items))
        feeds.append((cat.name, cat.slug))
    newest = sorted(arts, key=lambda a: a.article_id, reverse=True)
    _write(site, "/tin-moi-nhat.rss", rss("Tin mới nhất", "/", newest))
    _write(site, "/rss.htm", rss_index(feeds))
    _write(site, "/robots.txt", ROBOTS_TXT)
    home = Header("Tin mới nhất", "/", tuple((c.name, c.listing_path, c.id) for c in
                  sorted((CATEGORIES_BY_ID[k] for k in members if not CATEGORIES_BY_ID[k]
                          .parent_id), key=lambda c: c.id)),
                  "Báo Tin tức - Thông tấn xã Việt Nam", "Tin tức mới nhất trong ngày.")
    _write(site, "/index.html", listing.render(home, newest[:PER_PAGE], newest[:4], 1, 1, "/"))

    # Tag pages: synthetic/seed tags, and the real pages' tag links.
    tags: dict[str, tuple[str, list[Article]]] = {}
    for a in synth + [seed]:
        for t in a.tags:
            tags.setdefault(tag_path(t), (t, []))[1].append(a)
    for r in reals:
        for href, name in _real_tags(r.data.decode("utf-8")):
            tags.setdefault(href, (name, []))[1].append(r.article)
    for path, (name, tagged) in sorted(tags.items()):
        items = sorted(tagged, key=lambda a: a.article_id, reverse=True)[:PER_PAGE]
        header = Header(name, path, (), f"{name} - Tin tức {name} mới nhất", name)
        _write(site, path, listing.render(header, items, items[:4], 1, 1, path))

    # Ground truth and manifest.
    expected = load_expected(expected_file)
    rows = [synthetic_truth(a) for a in arts if a.origin != "real"]
    rows += [real_truth(r.article, expected[r.article.url]) for r in reals
             if r.article.url in expected]
    rows.sort(key=lambda row: row["article_id"])
    truth = out_dir / "ground_truth.jsonl"
    truth.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                     encoding="utf-8")
    manifest = out_dir / "manifest.json"
    manifest.write_text(json.dumps(_manifest(arts, reals, synth, seed, listings, feeds, tags,
                                             expected, expected_file, len(rows)),
                                   ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return BuildResult(out_dir, site, truth, manifest, len(arts), len(synth), len(reals),
                       len(rows))


def _real_tags(page: str) -> list[tuple[str, str]]:
    import html
    import re

    block = page[page.find('id="plhMain_NewsDetail1_divTags"'):]
    block = block[: block.find("</ul>")]
    return [(html.unescape(h), collapse(html.unescape(t)))
            for h, t in re.findall(r'<a href="(/tags/[^"]+)" title="([^"]*)"', block)]


def _write_listing(site: Path, shell: ListingShell, cat: Category, items: list[Article]) -> int:
    top = CATEGORIES_BY_ID.get(cat.parent_id, cat)
    header = Header(top.name if cat is top else cat.name, cat.listing_path,
                    category_subs(top) if cat is top else (),
                    f"Tin tức {cat.name}", f"Tin tức {cat.name} mới nhất - baotintuc.vn")
    n_pages = max(1, math.ceil(len(items) / PER_PAGE))
    focus = items[:4]
    for n in range(1, n_pages + 1):
        chunk = items[(n - 1) * PER_PAGE : n * PER_PAGE]
        path = page_path(cat.listing_path, n)
        _write(site, path, shell.render(header, chunk, focus, n, n_pages, path))
    return n_pages


def _manifest(arts: list[Article], reals: list[Any], synth: list[Article], seed: Article,
              listings: dict[str, int], feeds: list[tuple[str, str]],
              tags: dict[str, Any], expected: dict[str, Any], expected_file: Path,
              truth_rows: int) -> dict[str, Any]:
    dates = sorted(a.published_at for a in arts)
    sdates = sorted(a.published_at for a in synth)
    cats = sorted({a.category.key for a in arts})
    return {
        "generator": "mirror.build",
        "seed": SEED,
        "counts": {
            "articles": len(arts), "synthetic": len(synth), "real": len(reals), "seed": 1,
            "categories": len(cats), "listings": len(listings),
            "listing_pages": sum(listings.values()), "feeds": len(feeds), "tag_pages": len(tags),
            "ground_truth_rows": truth_rows,
        },
        "date_span": {"first": iso(dates[0]), "last": iso(dates[-1])},
        "synthetic_date_span": {"first": iso(sdates[0]), "last": iso(sdates[-1]),
                                "days": (sdates[-1] - sdates[0]).days},
        "categories": cats,
        "listings": listings,
        "feeds": [f"/{slug}.rss" for _, slug in feeds],
        "real_pages": {
            "ids": [r.article.article_id for r in reals],
            "truth_source": str(expected_file.relative_to(REPO))
            if expected_file.is_relative_to(REPO) else str(expected_file),
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
            "listing pagination window of 6 numbers; feeds carry the newest 50 items",
            "tag pages and the home page reuse the category listing shell",
        ],
    }


def fingerprint(shared_dir: Path | None = None, expected_file: Path = EXPECTED_FILE) -> str:
    """A hash of everything a build depends on: the generator code and its inputs."""
    h = hashlib.sha256()
    sources = sorted(Path(__file__).parent.glob("*.py"))
    shared = find_shared(shared_dir)
    inputs = sorted((shared / "pages").rglob("*.html")) + [shared / "seed-article.txt"]
    for path in [*sources, *inputs, expected_file]:
        if path.exists():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def ensure_built(out_dir: Path, shared_dir: Path | None = None, *, force: bool = False) -> Path:
    """Build the mirror into ``out_dir`` unless an identical build is already there.

    Returns the site directory to serve.
    """
    stamp = out_dir / "fingerprint.txt"
    want = fingerprint(shared_dir)
    site = out_dir / "site"
    if force or not site.is_dir() or not stamp.exists() or stamp.read_text().strip() != want:
        build_site(out_dir, shared_dir)
        stamp.write_text(want + "\n", encoding="utf-8")
    return site


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mirror.build", description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("data/mirror"))
    ap.add_argument("--shared", type=Path, default=None, help="shared data dir (../shared)")
    args = ap.parse_args(argv)
    res = build_site(args.out, args.shared)
    print(f"mirror built in {res.site_dir}: {res.articles} articles ({res.synthetic} synthetic, "
          f"{res.real} real, 1 seed), {res.truth_rows} ground-truth rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
