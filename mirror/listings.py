"""Category listing pages (also tag pages and the home page) in the real 2025 listing shell."""

from __future__ import annotations

from dataclasses import dataclass

from baotintuc.site import CANONICAL_ORIGIN, CATEGORIES_BY_ID, Category
from mirror import sources
from mirror.model import Article
from mirror.shell import thumb_url
from mirror.template import Template, category_subs, cut, slot, sub1, threadbar_html
from mirror.text import attr, numeric_entities

PER_PAGE = 20
WINDOW = 6  # numbered links shown, as on the real page (1..6 + Tiếp)


@dataclass(frozen=True, slots=True)
class Header:
    """What the page is about: heading, its link, sub-category links, head text."""

    name: str
    path: str  # page 1 path
    subs: tuple[tuple[str, str, int], ...]  # (name, path, id)
    title: str  # <title> text without the site suffix
    description: str


class ListingShell:
    def __init__(self) -> None:
        page = sources.listing_page().text
        page = sub1(page, r"<title>.*?</title>", "title")
        page = sub1(page, r'<meta name="description" content="[^"]*" />', "desc")
        page = sub1(page, r'<meta property="og:title" content="[^"]*" />', "og_title")
        page = sub1(page, r'<meta property="og:description" content="[^"]*" />', "og_desc")
        page = sub1(page, r'<link rel="canonical" href="[^"]*" />', "canonical")
        page = sub1(
            page, r'"@id": "https://baotintuc.vn/phap-luat-475ct0.htm",\s*"name": "[^"]*"', "crumb"
        )
        page = cut(page, '<div class="lc-bar">', '<div class="lc-top">', "bar")
        page = sub1(
            page,
            r'(?<=<div id="plhMain_ctl00_divFocus" class="newsest">).*?'
            r'(?=</div>\s*<ul class="list-ul">)',
            "focus",
        )
        page = sub1(page, r'(?<=<ul class="list-ul">).*?(?=</ul>)', "top3")
        page = sub1(
            page,
            r'(?<=<ul class="list-newsest">).*?(?=\s*</ul>\s*<div class="pagination">)',
            "items",
        )
        page = sub1(page, r'(?<=<ul class="list-pagination">).*?(?=</ul>)', "pages")
        if "20250712205905640" in page.split(slot("items"))[1].split('<div class="right-bar">')[0]:
            raise ValueError("listing shell still carries real items")
        self.template = Template(page)

    def render(
        self,
        header: Header,
        arts: list[Article],
        focus: list[Article],
        page: int,
        n_pages: int,
        page_path: str,
    ) -> str:
        values = {
            "title": f"<title>{attr(header.title)} | baotintuc.vn</title>",
            "desc": f'<meta name="description" content="{attr(header.description)}" />',
            "og_title": f'<meta property="og:title" content="{attr(header.title)}" />',
            "og_desc": f'<meta property="og:description" content="{attr(header.description)}" />',
            "canonical": f'<link rel="canonical" href="{CANONICAL_ORIGIN}{page_path}" />',
            "crumb": f'"@id": "{CANONICAL_ORIGIN}{header.path}",\n              "name": '
            f'"{header.name}"',
            "bar": threadbar_html(header.name, header.path, header.subs),
            "focus": _focus(focus[0]) if focus else "",
            "top3": "".join(_top_item(a) for a in focus[1:4]) + "\n            \n        ",
            "items": "".join(_item(a) for a in arts),
            "pages": pagination(header.path, page, n_pages),
        }
        return self.template.render(values)


def pages_for(n_items: int) -> int:
    """Listing pages for ``n_items`` articles (an empty listing still has its page 1)."""
    return max(1, -(-n_items // PER_PAGE))


def category_header(cat: Category) -> Header:
    """The header of a category listing, as the real listing page prints it."""
    top = CATEGORIES_BY_ID.get(cat.parent_id, cat)
    return Header(top.name if cat is top else cat.name, cat.listing_path,
                  category_subs(top) if cat is top else (),
                  f"Tin tức {cat.name}", f"Tin tức {cat.name} mới nhất - baotintuc.vn")


def page_path(first: str, page: int) -> str:
    """``/x-1ct0.htm`` → ``/x-1ct0/trang-N.htm``; tag and home pages have one page."""
    return first if page <= 1 else f"{first.removesuffix('.htm')}/trang-{page}.htm"


def pagination(first: str, page: int, n_pages: int) -> str:
    lo = max(1, min(page - 2, n_pages - WINDOW + 1))
    links = []
    for n in range(lo, min(n_pages, lo + WINDOW - 1) + 1):
        if n == page:
            links.append(
                f'<li class="pagination-item"><a class="active" '
                f'href="javascript:void(0)">{n}</a></li>'
            )
        else:
            links.append(
                f'<li class="pagination-item"><a href="{page_path(first, n)}">{n}</a></li>'
            )
    if page < n_pages:
        links.append(
            f'<li class="pagination-item"><a href="{page_path(first, page + 1)}">Tiếp</a></li>'
        )
    return "\n    " + "".join(links) + "\n"


def alt(a: Article) -> str:
    return numeric_entities(a.title)


def _focus(a: Article) -> str:
    return f"""

                    <a href="{a.path}" title="{attr(a.title)}" class="thumb">
                        <img src="{thumb_url(a.thumb, 600)}" alt="{numeric_entities(a.title)}" />
                    </a>
                    <div class="item-info">
                        <a href="{a.path}" title="{attr(a.title)}" class="title">
                            <h2>{attr(a.title)}</h2>
                        </a>

                        <p class="des">
                            {attr(a.sapo)}

                        </p>
                    </div>

        """


def _top_item(a: Article) -> str:
    return f"""

                    <li class="item">
                        <a href="{a.path}" title="{attr(a.title)}" class="thumb">
                            <img src="{thumb_url(a.thumb, 260)}" alt="{alt(a)}" />
                        </a>
                        <a href="{a.path}" title="{attr(a.title)}" class="title">
                            <h3>{attr(a.title)}</h3>
                        </a>
                    </li>
                """


def _item(a: Article) -> str:
    return f"""

                    <li class="item">
                        <a href="{a.path}" title="{attr(a.title)}" class="thumb">
                            <img src="{thumb_url(a.thumb, 260)}" alt="{alt(a)}" />
                        </a>
                        <div class="item-info">
                            <a href="{a.path}" title="{attr(a.title)}" class="title">
                                <h3>{attr(a.title)}</h3>
                            </a>
                            <p class="des">
                                {attr(a.sapo)}


                            </p>
                        </div>
                        <ul class="ul-relation">

                        </ul>
                    </li>
                """
