"""Plan the synthetic articles: categories, dates, titles, bodies, bylines, figures, tags.

Everything is drawn from one seeded ``random.Random`` in a fixed order, so the same inputs
give the same articles. These plans are the ground truth of the synthetic pages.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from baotintuc.site import CATEGORIES_BY_ID, Category
from mirror.content import (
    CAPTION_SCENES,
    ORGS,
    PHOTOGRAPHERS,
    PROVINCES,
    REPORTERS,
    TAG_WORDS,
    TOPICS,
    vary,
)
from mirror.model import Article, Block, Byline, Figure
from mirror.text import VN_TZ, id17, slugify

SEED = 20250713
END = datetime(2025, 7, 14, 0, 0, tzinfo=VN_TZ)  # the real pages end on 13 July 2025
EARLIEST = datetime(2014, 1, 1, 0, 0, tzinfo=VN_TZ)
DEFAULT_COUNT = 360
DEFAULT_SPAN_DAYS = 74  # 1 May .. 13 July 2025 for the default 360 synthetic articles
MEDIA_KEYS = (
    "rGkvwNpj74Z1EcpzQ6ltA",
    "e9GdNZvHDFi8lZSWc6ubA",
    "DMDnZyELa7xUDTdLsa19w",
    "c2tvplmdloSDblsn03qN2Q",
    "3qVxwVtNEPp6Wp9kkF77g",
)

# Leaf categories used, with weights: Pháp luật (where the real pages are) gets the most.
LEAVES: tuple[tuple[int, int], ...] = (
    (475, 6),
    (579, 6),
    (590, 4),
    (577, 3),
    (607, 2),
    (472, 3),
    (321, 4),
    (1623, 2),
    (130, 3),
    (525, 2),
    (128, 3),
    (144, 2),
    (606, 2),
    (129, 3),
    (149, 2),
    (132, 2),
    (576, 2),
    (325, 2),
    (547, 2),
    (610, 2),
    (515, 2),
    (612, 2),
)

_ENDINGS = (
    "góp phần bảo đảm an ninh, trật tự trên địa bàn",
    "nhận được sự đồng tình, ủng hộ của người dân",
    "tạo chuyển biến rõ nét trong thời gian qua",
    "đồng thời đề ra nhiều giải pháp trong thời gian tới",
)
_QUALIFIERS = (
    "",
    "",
    " trong 6 tháng đầu năm",
    " dịp hè",
    " sau đợt mưa lớn",
    " trên tuyến biên giới",
    " tại khu vực nông thôn",
    " năm {year}",
)


def span_days(count: int) -> int:
    """Days the synthetic articles spread over, ending with the real pages' last day.

    The default density (360 articles in 74 days, ~4.9 a day) until the span reaches
    2014-01-01; past that (~20,500 articles) the days get fuller instead.
    """
    wanted = math.ceil(count * DEFAULT_SPAN_DAYS / DEFAULT_COUNT)
    return min(max(DEFAULT_SPAN_DAYS, wanted), (END - EARLIEST).days)


def _lcfirst(s: str) -> str:
    return s[:1].lower() + s[1:]


def byline_for(i: int, rng: random.Random) -> Byline:
    """Bylines cycle through every printed form the real pages show (and the rules cover)."""
    a, b, c = rng.sample(REPORTERS, 3)
    form = (0, 1, 0, 2, 0, 3, 4, 5, 0, 6, 7, 0, 8, 9)[i % 14]
    if form == 1:
        return Byline(f"{a} – {b}", " (TTXVN)", "i", f"{a} – {b} (TTXVN)", (a, b), "TTXVN")
    if form == 2:
        return Byline(f"Tin, ảnh: {a}", " (TTXVN)", "i", f"Tin, ảnh: {a} (TTXVN)", (a,), "TTXVN")
    if form == 3:
        line = f"Chùm ảnh, clip: {a}/Báo Tin tức"
        return Byline(line, None, "i", line, (a,), "Báo Tin tức")
    if form in (4, 9):
        org = "TTXVN/Báo Tin tức và Dân tộc"
        return Byline(org + (" " if form == 9 else ""), None, "i", org, (), org)
    if form == 5:  # 2023 style: <em>&nbsp;(TTXVN)</em>
        return Byline(a, "&nbsp;(TTXVN)", "em", f"{a} (TTXVN)", (a,), "TTXVN")
    if form == 6:  # trailing spaces
        return Byline(f"{a}  ", " (TTXVN) ", "i", f"{a} (TTXVN)", (a,), "TTXVN")
    if form == 7:
        return Byline(
            f"Bài và ảnh: {a} - {b}",
            " (TTXVN)",
            "i",
            f"Bài và ảnh: {a} - {b} (TTXVN)",
            (a, b),
            "TTXVN",
        )
    if form == 8:
        return Byline(
            f"{a}, {b} và {c}", " (TTXVN)", "i", f"{a}, {b} và {c} (TTXVN)", (a, b, c), "TTXVN"
        )
    return Byline(a, " (TTXVN)", "i", f"{a} (TTXVN)", (a,), "TTXVN")


def figure_for(j: int, rng: random.Random, province: str, url: str) -> Figure:
    scene = f"{rng.choice(CAPTION_SCENES)} tại {province}"
    form = rng.randrange(6)
    if form == 0:
        return Figure(url, f"{scene}. Ảnh: TTXVN phát", "TTXVN phát")
    if form == 1:
        return Figure(url, f"{scene}. Ảnh: TTXVN", "TTXVN")
    if form == 2:
        return Figure(url, f"{scene}. Ảnh minh họa: TTXVN", "TTXVN")
    if form == 3:
        who = f"{rng.choice(PHOTOGRAPHERS)}/TTXVN"
        return Figure(url, f"{scene}. Ảnh tư liệu: {who}", who)
    if form == 4:
        return Figure(url, "", None)
    return Figure(url, f"{scene}.", None)


def _media_url(rng: random.Random, when: datetime, slug: str, n: int) -> str:
    key = rng.choice(MEDIA_KEYS)
    return (
        f"https://cdnmedia.baotintuc.vn/Upload/{key}/files/{when:%Y/%m/%d}/"
        f"{slug[:40].rstrip('-')}-{n}.jpg"
    )


def plan_synthetic(count: int, pool: list[str], taken_ids: set[str]) -> list[Article]:
    rng = random.Random(SEED)
    days = span_days(count)
    start = END - timedelta(days=days)
    ids, weights = zip(*LEAVES, strict=True)
    titles: set[str] = set()
    out: list[Article] = []
    for i in range(count):
        cat: Category = CATEGORIES_BY_ID[rng.choices(ids, weights)[0]]
        top = CATEGORIES_BY_ID.get(cat.parent_id, cat)
        events, headings, items = TOPICS[top.id]
        created = start + timedelta(
            seconds=rng.randrange(days * 86400), milliseconds=rng.randrange(1000)
        )
        aid = id17(created)
        while aid in taken_ids:
            created += timedelta(milliseconds=1)
            aid = id17(created)
        taken_ids.add(aid)
        published = created.replace(second=0, microsecond=0) + timedelta(minutes=rng.randint(1, 36))
        province = rng.choice(PROVINCES)
        title = ""
        for _ in range(50):
            event = rng.choice(events)
            qual = rng.choice(_QUALIFIERS).format(year=published.year)
            title = rng.choice(
                (
                    f"{event} tại {province}{qual}",
                    f"{province}: {_lcfirst(event)}{qual}",
                    f"{event}{qual} ở {province}",
                )
            )
            if title not in titles:
                break
            province = rng.choice(PROVINCES)
        titles.add(title)
        slug = slugify(title)
        sapo = (
            f"Ngày {published.day}/{published.month}, {rng.choice(ORGS)} {province} cho biết "
            f"đã {_lcfirst(event)}, {rng.choice(_ENDINGS)}."
        )
        blocks = [Block("p", vary(p, province)) for p in rng.sample(pool, rng.randint(3, 7))]
        if rng.random() < 0.35:
            # a sub-heading always has a paragraph after it
            blocks.insert(rng.randint(2, len(blocks) - 1), Block("h", rng.choice(headings)))
        if rng.random() < 0.3:
            blocks.insert(
                rng.randint(1, len(blocks)),
                Block("ul", items=tuple(rng.sample(items, rng.randint(2, len(items))))),
            )
        n_fig = rng.choices((0, 1, 2, 3), (25, 45, 20, 10))[0]
        for j in range(n_fig):
            fig = figure_for(j, rng, province, _media_url(rng, published, slug, j + 1))
            pos = 0 if j == 0 and rng.random() < 0.7 else rng.randint(1, len(blocks))
            blocks.insert(pos, Block("figure", figure=fig))
        figures = [b.figure for b in blocks if b.figure is not None]
        thumb = figures[0].url if figures else _media_url(rng, published, slug, 0)
        tags = [province] + rng.sample(TAG_WORDS, rng.randint(1, 4))
        out.append(
            Article(
                article_id=aid,
                path=f"/{cat.slug}/{slug}-{aid}.htm",
                title=title,
                sapo=sapo,
                category=cat,
                published_at=published,
                thumb=thumb,
                origin="synthetic",
                blocks=blocks,
                byline=byline_for(i, rng),
                tags=tags,
            )
        )
    out.sort(key=lambda a: a.article_id)
    _link_related(out, rng)
    return out


def _link_related(arts: list[Article], rng: random.Random) -> None:
    """0–3 related links to earlier articles of the same top-level category."""
    seen: dict[int, list[str]] = {}
    for art in arts:
        top = art.category.parent_id or art.category.id
        earlier = seen.setdefault(top, [])
        k = min(len(earlier), rng.randint(0, 3))
        art.related = list(reversed(rng.sample(earlier[-10:], k))) if k else []
        earlier.append(art.article_id)
