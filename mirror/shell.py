"""Article pages re-filled into a real 2025 page shell.

The shell is one real article page. Its per-article parts are cut out once and replaced by
slots; everything else (menus, ads, scripts, side boxes) stays byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from baotintuc.site import CANONICAL_ORIGIN, CATEGORIES_BY_ID
from mirror import sources
from mirror.model import Article, Block, Byline, Figure
from mirror.template import Template, category_subs, cut, slot, sub1, threadbar_html
from mirror.text import attr, entities, iso, numeric_entities, visible_date

SHELL_FILE = "article_20250712205905640_phap-luat.html"
_OLD_ID = "20250712205905640"
_OLD_SLUG = "bat-giu-vu-buon-lau-thuoc-la-so-luong-lon"
_OLD_PATH = f"/phap-luat/{_OLD_SLUG}-{_OLD_ID}.htm"
_OLD_TITLE = "Bắt giữ vụ buôn lậu thuốc lá số lượng lớn"
_OLD_IMAGE = "https://cdnmedia.baotintuc.vn/Upload/rGkvwNpj74Z1EcpzQ6ltA/files/2025/07/tuan4/thuoc-la-12725.jpg"
_OLD_DATE_ISO = "2025-07-12T21:11:00+07:00"
_OLD_DATE_VISIBLE = "Thứ Bảy, 12/07/2025 21:11"


class ArticleShell:
    """Render :class:`Article` objects into the real page shell."""

    def __init__(self) -> None:
        page = sources.page(SHELL_FILE).text
        contents_start = '<div id="divfirst">'
        i = page.index(contents_start)
        j = page.index('<div id="divend">', i)
        self.ads = page[page.index("</div>", page.rindex("</p>", i, j)) + 6 : j]
        page = cut(page, '<meta name="news_keywords"', '<meta name="robots"', "head_kw")
        page = sub1(page, r'<meta property="dable:item_id".*?(?=\n)', "head_tags")
        page = sub1(page, r'<meta property="article:section" content="[^"]*" />', "head_section")
        page = sub1(page, r'"author": \{.*?\}', "ld_author")
        page = sub1(
            page,
            r'"@id": "https://baotintuc.vn/phap-luat-475ct0.htm",\s*"name": "[^"]*"',
            "ld_crumb",
        )
        page = cut(page, '<div class="lc-bar">', '<div class="detail-content_wrapper">', "bar")
        page = sub1(page, r'<h4 class="cate">.*?</h4>', "cate")
        page = sub1(page, r'<h1 class="detail-title">.*?</h1>', "h1")
        page = sub1(page, r'<h2 class="sapo">.*?</h2>', "sapo")
        page = sub1(
            page,
            r'(?<=<ul id="plhMain_NewsDetail1_divRelation" class="list-concern">)'
            r".*?(?=</ul>)",
            "related",
        )
        page = sub1(page, r'<div class="contents">.*?(?=<div class="author">)', "contents")
        page = sub1(page, r'<div class="author">.*?</div>', "author")
        page = sub1(page, r'<div class="widget">.*?</div>\s*</div>', "widget")
        page = sub1(
            page,
            r'(?<=<div id="plhMain_NewsDetail1_divTags" class="keysword">).*?'
            r"(?=</div>)",
            "tags",
        )
        page = page.replace(_OLD_DATE_ISO, slot("iso")).replace(_OLD_DATE_VISIBLE, slot("vis"))
        page = page.replace(_OLD_IMAGE, slot("image"))
        page = page.replace(numeric_entities(_OLD_TITLE), slot("title_num"))
        page = page.replace(_OLD_TITLE, slot("title"))
        page = page.replace(_OLD_PATH, slot("path"))
        page = page.replace(f"{_OLD_SLUG}-n{_OLD_ID}", slot("print"))
        page = page.replace(_OLD_ID, slot("id"))
        page = page.replace(f"CatUrl=phap-luat&amp;n={slot('id')}&amp;PageType=2&amp;NewsUrl="
                            f"{_OLD_SLUG}", f"CatUrl={slot('cat_slug')}&amp;n={slot('id')}"
                            f"&amp;PageType=2&amp;NewsUrl={slot('slug')}")
        sapo_old = re.search(r'og:description" content="([^"]*)"', page)
        assert sapo_old is not None
        page = page.replace(sapo_old.group(1), slot("sapo_attr"))
        for old in (_OLD_ID, _OLD_SLUG, _OLD_TITLE, sapo_old.group(1)):
            if old in page:
                raise ValueError(f"shell still carries {old!r}")
        self.template = Template(page)

    def render(
        self, art: Article, lookup: Callable[[str], Article | None], comment: str = ""
    ) -> str:
        cat = art.category
        top = CATEGORIES_BY_ID.get(cat.parent_id, cat)
        values = {
            "head_kw": self._head_kw(art),
            "head_tags": f'<meta property="dable:item_id" content="{art.article_id}" />'
            + "".join(f'<meta property="article:tag" content="{attr(t)}"/>' for t in art.tags),
            "head_section": f'<meta property="article:section" content="{attr(cat.name)}" />',
            "ld_author": self._ld_author(art.byline),
            "ld_crumb": f'"@id": "{CANONICAL_ORIGIN}{cat.listing_path}",\n'
            f'                        "name": "{cat.name}"',
            "bar": threadbar_html(top.name, top.listing_path, category_subs(top)),
            "cate": f'<h4 class="cate">\n                <a href="{cat.listing_path}" '
            f'title="{attr(cat.name)}"><strong>{attr(cat.name)}</strong></a>\n            </h4>',
            "h1": f'<h1 class="detail-title">\n            {attr(art.title)}\n        </h1>',
            "sapo": f'<h2 class="sapo">\n                {attr(art.sapo)}\n            </h2>',
            "related": self._related(art, lookup),
            "contents": self._contents(art.blocks) + comment,
            "author": self._author(art.byline),
            "widget": self._widget(art, lookup),
            "tags": self._tags(art.tags),
            "iso": iso(art.published_at),
            "vis": visible_date(art.published_at),
            "image": art.thumb,
            "title": attr(art.title),
            "title_num": numeric_entities(art.title),
            "path": art.path,
            "print": f"{art.slug}-n{art.article_id}",
            "id": art.article_id,
            "cat_slug": cat.slug,
            "slug": art.slug,
            "sapo_attr": attr(art.sapo),
        }
        return self.template.render(values)

    # --- pieces -----------------------------------------------------------------------
    @staticmethod
    def _head_kw(art: Article) -> str:
        return (
            f'<meta name="news_keywords" content="{attr(", ".join(art.tags))}" />'
            f'<meta name="description" content="{attr(art.sapo)}" />'
        )

    @staticmethod
    def _ld_author(byline: Byline | None) -> str:
        # The site glues name and agency with no space ("Bùi GiangTTXVN"): kept as it is.
        name = (
            ""
            if byline is None
            else byline.main.strip() + ((byline.agency or "").strip().strip("()"))
        )
        indent = "\n            "
        return f'"author": {{{indent}"@type": "Person",{indent}"name": "{name}"\n        }}'

    @staticmethod
    def _related(art: Article, lookup: Callable[[str], Article | None]) -> str:
        out = []
        for rid in art.related:
            other = lookup(rid)
            if other is None:
                continue
            out.append(f"""
                        <li class="item">
                            <h4>
                                <a href="{other.path}" title="{attr(other.title)}">
                                    {attr(other.title)}
                                </a>
                            </h4>
                        </li>
                    """)
        return "\n                " + "".join(out) + "\n            "

    def _contents(self, blocks: list[Block]) -> str:
        half = max(1, (len(blocks) + 1) // 2)
        first = "\n\n".join(render_block(b) for b in blocks[:half])
        end = "\n\n".join(render_block(b) for b in blocks[half:])
        return (
            '<div class="contents">\n                        <div id="divfirst">'
            f'{first}</div>{self.ads}<div id="divend">\n\n{end}\n</div>\n'
            "                    </div>\n                    \n                    "
        )

    @staticmethod
    def _author(byline: Byline | None) -> str:
        if byline is None:
            return '<div class="author">\n                    </div>'
        agency = "" if byline.agency is None else f"<{byline.tag}>{byline.agency}</{byline.tag}>"
        return (
            '<div class="author">\n                        '
            f"<strong>{byline.main}</strong>{agency}\n                    </div>"
        )

    @staticmethod
    def _widget(art: Article, lookup: Callable[[str], Article | None]) -> str:
        other = lookup(art.related[0]) if art.related else None
        if other is None:
            return ""
        return f"""<div class="widget">
                                <a href="{other.path}" title="{attr(other.title)}" class="widget_thumb">
                                    <img src="{thumb_url(other.thumb, 260)}" alt="{numeric_entities(other.title)}" />
                                </a>
                                <div class="widget_info">
                                    <a href="{other.path}" class="info-title">
                                        {attr(other.title)}
                                    </a>
                                    <p class="des">{attr(other.sapo)}</p>
                                </div>
                            </div>"""  # noqa: E501

    @staticmethod
    def _tags(tags: list[str]) -> str:
        items = " ".join(
            f'<li><a href="/tags/{"+".join(t.lower().split())}.htm" title="{attr(t)}">'
            f"<strong>{attr(t)},</strong></a></li>"
            for t in tags
        )
        return (
            '\n                <span class="kewsword-txt">Từ khóa: </span>\n'
            f"                <ul>\n                    {items} \n"
            "                </ul>\n            "
        )


def thumb_url(full: str, width: int) -> str:
    """``cdnthumb.baotintuc.vn/ha_w/<w>/https@@$$media.baotintuc.vn/...`` for a media URL."""
    rest = full.split("://", 1)[-1].split("/", 1)[-1]
    return f"https://cdnthumb.baotintuc.vn/ha_w/{width}/https@@$$media.baotintuc.vn/{rest}"


def render_figure(fig: Figure) -> str:
    return (
        '<div style="text-align:center">\n<figure class="image" style="display:inline-block">'
        f'<img alt="Chú thích ảnh" src="{fig.url}">\n'
        f"<figcaption>{entities(fig.caption)}</figcaption>\n</figure>\n</div>"
    )


def render_block(block: Block) -> str:
    if block.figure is not None:
        return render_figure(block.figure)
    if block.kind == "h":
        return f"<h3><strong>{entities(block.text)}</strong></h3>"
    if block.kind == "ul":
        return "<ul>\n" + "\n".join(f"<li>{entities(i)}</li>" for i in block.items) + "\n</ul>"
    return f"<p>{nbsp(entities(block.text))}</p>"


def nbsp(encoded: str) -> str:
    """Like the real pages, one ``&nbsp;`` in long paragraphs (truth sees a plain space)."""
    if len(encoded) < 200:
        return encoded
    k = encoded.find(" ", len(encoded) // 3)
    return encoded if k < 0 else encoded[:k] + "&nbsp;" + encoded[k + 1 :]
