"""The seed article: a real 2020 article known only as text, rebuilt at its real URL.

Known: URL (so ID17 and category), title, lead, body, captions, byline. Reconstructed (and
marked in the page and in manifest.json): the publication minute, image URLs, tags,
the absence of related links.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from baotintuc.site import CATEGORIES_BY_ID
from baotintuc.urls import article_id
from mirror.model import Article, Block, Byline, Figure
from mirror.text import VN_TZ, collapse

SEED_PUBLISHED_DELAY = timedelta(minutes=14)  # 14:11:13 created -> 14:25 published
RECONSTRUCTED = [
    "publication minute (14:25, 14 minutes after the ID17 creation time)",
    "image URLs (cdnmedia .../files/2020/07/29/...)",
    "tags and news_keywords",
    "og:image (the first photo)",
    "no related links or teaser",
    "page shell (the 2025 layout; the 2020 markup was not kept)",
]


def build_seed(raw: str) -> Article:
    """The seed article from its text (``mirror/inputs/seed-article.txt``)."""
    url = next(line.split("URL:", 1)[1].strip() for line in raw.splitlines() if "URL:" in line)
    aid = article_id(url)
    assert aid is not None
    lines = [collapse(x) for x in raw.splitlines() if x.strip() and not x.startswith("#")]
    title, sapo, *body, byline = lines
    created = datetime.strptime(aid[:14], "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)
    published = created.replace(second=0) + SEED_PUBLISHED_DELAY
    blocks: list[Block] = []
    n_fig = 0
    for line in body:
        if "Ảnh: " in line:
            if blocks and blocks[-1].figure is not None and blocks[-1].figure.caption == line:
                continue  # the caption line copied twice is one figure
            n_fig += 1
            img = (
                "https://cdnmedia.baotintuc.vn/Upload/c2tvplmdloSDblsn03qN2Q/files/2020/07/29/"
                f"dan-van-ninh-binh-{n_fig}.jpg"
            )
            credit = line.rsplit("Ảnh: ", 1)[1]
            blocks.append(Block("figure", figure=Figure(img, line, credit)))
        else:
            blocks.append(Block("p", line))
    name = byline.removesuffix("(TTXVN)").strip()
    path = url.split("baotintuc.vn", 1)[1]
    first = next(b.figure for b in blocks if b.figure is not None)
    return Article(
        article_id=aid,
        path=path,
        title=title,
        sapo=sapo,
        category=CATEGORIES_BY_ID[321],
        published_at=published,
        thumb=first.url,
        origin="seed",
        blocks=blocks,
        byline=Byline(name, " (TTXVN)", "i", byline, (name,), "TTXVN"),
        tags=["công tác dân vận", "Ninh Bình", "Quyết định 290"],
        reconstructed=list(RECONSTRUCTED),
    )
