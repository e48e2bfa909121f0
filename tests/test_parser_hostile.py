"""Hostile pages: a real article page with one hostile part injected.

Each class of attack found by the hostile test of the pipeline gets several cases; every
case asserts the exact stored values (the hostile part gone or flagged, everything else
still equal to the page's reviewed values), never just "it did not crash".
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from baotintuc.model import Article, ParseError
from baotintuc.parsers import parse_article

RESOURCES = Path(__file__).parent / "resources" / "baotintuc"
NAME = "V2023_20250712205905640_phap-luat"
ENTRY: dict[str, Any] = json.loads((RESOURCES / "expected.json").read_text())[NAME]
URL: str = ENTRY["url"]
WANT: dict[str, Any] = ENTRY["expected"]
BASE = gzip.decompress((RESOURCES / f"{NAME}.html.gz").read_bytes()).decode()

# Places in the real page where hostile parts go.
TITLE_TEXT = "Bắt giữ vụ buôn lậu thuốc lá số lượng lớn"
H1 = f'<h1 class="detail-title">\r\n            {TITLE_TEXT}\r\n        </h1>'
SAPO_OPEN = '<h2 class="sapo">'
FIRST_OPEN = '<div id="divfirst">'
END_OPEN = '<div id="divend">'
IMG_SRC = ("https://cdnmedia.baotintuc.vn/Upload/rGkvwNpj74Z1EcpzQ6ltA/files/2025/07/tuan4/"
           "thuoc-la-12725.jpg")
IMG = f'<img alt="Chú thích ảnh" src="{IMG_SRC}">'
CAPTION_OPEN = "<figcaption>"
AUTHOR = "<strong>Bùi Giang</strong>"
META_DATE = 'article:published_time" itemprop="datePublished" content="2025-07-12T21:11:00+07:00"'
LD_DATE = '"datePublished": "2025-07-12T21:11:00+07:00"'
VISIBLE_DATE = "Thứ Bảy, 12/07/2025 21:11"
TAG_LINK = '<a href="/tags/buôn+lậu.htm" title="Buôn lậu"><strong>Buôn lậu,</strong></a>'
FIRST_LD = '<script type="application/ld+json">'
UNCHANGED = ("title", "sapo", "body_text", "byline", "authors", "source", "published_at",
             "category", "category_id", "tags", "related_article_ids", "kind", "images",
             "video_urls")


def page(*edits: tuple[str, str], base: str = BASE) -> str:
    """The real page with each ``(old, new)`` applied once (``old`` must be there)."""
    html = base
    for old, new in edits:
        assert old in html, old[:60]
        html = html.replace(old, new, 1)
    return html


def parse(*edits: tuple[str, str]) -> Article:
    return parse_article(page(*edits).encode("utf-8"), URL)


def as_stored(art: Article, name: str) -> Any:
    value = getattr(art, name)
    if isinstance(value, datetime):
        return value.isoformat()
    if name == "images":
        return [img if isinstance(img, dict) else
                {"position": img.position, "url": img.url, "caption": img.caption,
                 "credit": img.credit} for img in value]
    return value


def assert_unchanged(art: Article, *except_: str) -> None:
    for name in UNCHANGED:
        if name not in except_:
            assert as_stored(art, name) == WANT[name], name


def test_the_untouched_page_is_the_reference() -> None:
    art = parse()
    assert_unchanged(art)
    assert art.warnings == []


# --------------------------------------------------------------------- image/video URLs

@pytest.mark.parametrize("src", [
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    " \tjavascript:alert(1)",
    "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "vbscript:msgbox(1)",
    "about:blank",
    "http://[::1",  # not a URL at all
])
def test_non_web_image_urls_are_dropped_and_counted(src: str) -> None:
    art = parse((IMG, f'<img alt="Chú thích ảnh" src="{src}">'))
    assert art.images == []
    assert "dropped_image_urls:1" in art.warnings
    assert src.strip() not in art.body_markdown
    assert_unchanged(art, "images")


def test_a_bad_lazy_source_does_not_hide_a_good_src() -> None:
    art = parse((IMG, f'<img data-src="javascript:alert(1)" src="{IMG_SRC}">'))
    assert_unchanged(art)
    assert not any(w.startswith("dropped_image_urls") for w in art.warnings)


def test_an_image_url_too_long_to_store_is_dropped_not_cut() -> None:
    long_src = IMG_SRC + "?" + "x" * 3000
    art = parse((IMG, f'<img src="{long_src}">'))
    assert art.images == [] and "dropped_image_urls:1" in art.warnings
    assert "cut:images" not in art.warnings


def test_good_images_keep_their_place_when_bad_ones_go() -> None:
    bad = ('<figure class="image"><img src="javascript:alert(1)"><figcaption>Xấu</figcaption>'
           "</figure>")
    good = ('<figure class="image"><img src="/Upload/x/files/2025/07/b.jpg">'
            "<figcaption>Ảnh hai. Ảnh: TTXVN</figcaption></figure>")
    art = parse((END_OPEN, END_OPEN + bad + good))
    assert [(i.position, i.url, i.caption, i.credit) for i in art.images] == [
        (0, IMG_SRC, WANT["images"][0]["caption"], "TTXVN phát"),
        (1, "https://baotintuc.vn/Upload/x/files/2025/07/b.jpg", "Ảnh hai. Ảnh: TTXVN", "TTXVN"),
    ]
    assert "dropped_image_urls:1" in art.warnings
    assert "javascript" not in art.body_markdown and "Xấu" not in art.body_markdown
    assert art.body_markdown.index("thuoc-la-12725.jpg") < art.body_markdown.index("b.jpg")


@pytest.mark.parametrize("file_id", ["javascript:alert(1)", "data:video/mp4;base64,AAAA",
                                     "file:///tmp/x.mp4"])
def test_non_web_video_urls_are_dropped_and_counted(file_id: str) -> None:
    player = (f'<p><iframe id="divVideo_2" src="https://baotintuc.vn/Player.aspx?fileId={file_id}'
              '&amp;fileImg=x.jpg"></iframe></p>')
    art = parse((END_OPEN, END_OPEN + player))
    assert art.video_urls == []
    assert "dropped_video_urls:1" in art.warnings
    assert_unchanged(art, "video_urls")


def test_web_video_urls_are_kept_once() -> None:
    mp4 = "https://cdnmedia.baotintuc.vn/Upload/v/files/2025/07/clip.mp4"
    player = f'<p><iframe src="https://baotintuc.vn/Player.aspx?fileId={mp4}"></iframe></p>'
    art = parse((END_OPEN, END_OPEN + player + player + f'<video src="{mp4}"></video>'))
    assert art.video_urls == [mp4]
    assert not any(w.startswith("dropped_video_urls") for w in art.warnings)


# ------------------------------------------------------------ script text in any field

SCRIPTS = [
    "<script>alert('x')</script>",
    "<script type='text/template'><b>alert('x')</b></script>",
    "<style>body{display:none} /* alert('x') */</style>",
    "<noscript><img src=x onerror=alert('x')>alert('x')</noscript>",
    "<template><p>alert('x')</p></template>",
    "<scr<script>ipt>alert('x')</scr</script>ipt>",
    "<SCRIPT >alert('x')</SCRIPT >",
    "<svg><script>alert('x')</script></svg>",
    "<noembed>alert('x')</noembed>",
    "<iframe>alert('x')</iframe>",
    "<video>alert('x')<p>alert('x')</p></video>",
]


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("where", ["start", "end"])
def test_no_script_text_in_title(script: str, where: str) -> None:
    title = f"{script}{TITLE_TEXT}" if where == "start" else f"{TITLE_TEXT}{script}"
    art = parse((H1, H1.replace(TITLE_TEXT, title)))
    assert art.title == TITLE_TEXT
    assert_unchanged(art)


@pytest.mark.parametrize("script", SCRIPTS[:5])
def test_no_script_text_in_mid_title(script: str) -> None:
    art = parse((H1, H1.replace(TITLE_TEXT, f"Bắt giữ vụ buôn lậu {script}thuốc lá số lượng lớn")))
    assert art.title == TITLE_TEXT


def test_mid_title_malformed_tag_takes_what_follows_it_and_is_flagged() -> None:
    """``<scr<script>`` opens an element (libxml2, like browsers) that holds the rest of the
    heading; it goes whole, so the title is cut short, and the warning says why."""
    art = parse((H1, H1.replace(TITLE_TEXT, f"Bắt giữ vụ buôn lậu {SCRIPTS[5]}thuốc lá")))
    assert art.title == "Bắt giữ vụ buôn lậu"
    assert "malformed_tags_removed" in art.warnings


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_script_text_in_any_field(script: str) -> None:
    art = parse(
        (SAPO_OPEN, SAPO_OPEN + script),
        ("<i> (TTXVN)</i>", f"<i> (TTXVN)</i>{script}"),
        (TAG_LINK, TAG_LINK.replace("<strong>Buôn lậu,", f"<strong>Buôn lậu{script},")),
        ("Ảnh: TTXVN ph&aacute;t</figcaption>", f"Ảnh: TTXVN ph&aacute;t{script}</figcaption>"),
        ("hiệu Kent.</p>", f"hiệu Kent.{script}</p>"),
        ('<strong>Pháp luật</strong>', f'<strong>Pháp luật{script}</strong>'),
    )
    assert_unchanged(art)
    for value in (art.title, art.sapo, art.byline, art.body_text, art.body_markdown,
                  art.category, *art.tags, *(i.caption for i in art.images)):
        assert "alert" not in (value or "") and "display:none" not in (value or "")


@pytest.mark.parametrize("script", [
    "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;", "<style>x{}</style>",
    "<img src=x onerror=alert(1)>",
])
def test_markup_in_metadata_values_is_not_text(script: str) -> None:
    html = page((H1, ""), ('<strong>Pháp luật</strong>', "<strong></strong>"))
    for key in ("og:title", "article:section"):
        html = html.replace(f'property="{key}" content="', f'property="{key}" content="{script}', 1)
    html = html.replace('title="Pháp luật"', "")
    art = parse_article(html.encode(), URL)
    assert (art.title, art.category) == (TITLE_TEXT, "Pháp luật")


def test_html_in_a_json_ld_description_is_read_as_text() -> None:
    from baotintuc.parsers.page import markup_text

    assert markup_text("<p>Đoạn <b>một</b></p><script>x()</script>") == "Đoạn một"
    assert markup_text("a < b và c > d") == "a < b và c > d"
    assert markup_text(["not", "text"]) == ""


@pytest.mark.parametrize("broken", [
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",  # mXSS-style
    "<style>",  # never closed
    "<script>alert(1)",  # never closed
])
def test_an_unclosed_style_or_script_does_not_swallow_the_page(broken: str) -> None:
    art = parse((H1, H1.replace(TITLE_TEXT, TITLE_TEXT + broken)))
    assert "unclosed_raw_text_repaired" in art.warnings
    assert art.title == TITLE_TEXT
    assert_unchanged(art, "title")


def test_a_heading_that_swallowed_the_page_gives_way_to_og_title() -> None:
    art = parse((H1, H1.replace(TITLE_TEXT, TITLE_TEXT + "<math><mtext><table>")))
    assert art.title == TITLE_TEXT and "title_from_metadata" in art.warnings
    assert "cut:title" not in art.warnings


def test_malformed_tag_removal_is_flagged() -> None:
    art = parse((H1, H1.replace(TITLE_TEXT, TITLE_TEXT + SCRIPTS[5])))
    assert art.title == TITLE_TEXT
    assert "malformed_tags_removed" in art.warnings


def test_entity_encoded_markup_is_text() -> None:
    art = parse((H1, H1.replace(TITLE_TEXT, TITLE_TEXT + " &lt;script&gt;x&lt;/script&gt;")))
    assert art.title == TITLE_TEXT + " <script>x</script>"


@pytest.mark.parametrize(("inject", "title"), [
    ("<!-- a comment -->", TITLE_TEXT),
    ("<!-- <script>alert(1)</script> -->", TITLE_TEXT),
    ("<![CDATA[ alert(1) ]]>", TITLE_TEXT),
    ("<?php echo 1; ?>", TITLE_TEXT),
])
def test_comments_cdata_and_processing_instructions_are_not_text(inject: str, title: str) -> None:
    art = parse((H1, H1.replace("buôn lậu", f"buôn {inject}lậu")),
                (SAPO_OPEN, SAPO_OPEN + inject))
    assert art.title == title
    assert art.sapo == WANT["sapo"]


# ------------------------------------------------- invisible and control characters

INVISIBLE = [
    "\u202e", "\u202d", "\u202a", "\u202b", "\u202c", "\u2066", "\u2067", "\u2068", "\u2069",
    "\u200e", "\u200f", "\u061c", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad",
    "\x01", "\x07", "\x08", "\x1b", "\x7f", "\x80", "\x9b", "\U000e0041", "\u3164",
]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_and_control_characters_leave_every_field(char: str) -> None:
    art = parse(
        (H1, H1.replace(TITLE_TEXT, f"{char}Bắt giữ vụ {char}buôn lậu thuốc lá số lượng lớn")),
        (SAPO_OPEN, SAPO_OPEN + char),
        (AUTHOR, AUTHOR.replace("Bùi Giang", f"Bùi{char} Giang")),
        (TAG_LINK, TAG_LINK.replace("<strong>Buôn lậu,", f"<strong>{char}Buôn lậu,{char}")),
        (CAPTION_OPEN, CAPTION_OPEN + char),
        ("<p>Kiểm tra phương tiện", f"<p>Kiểm tra{char} phương tiện"),
        ('content="Pháp luật"', f'content="Pháp luật{char}"'),
    )
    assert_unchanged(art)


def test_entity_encoded_bidi_override_is_removed() -> None:
    art = parse((H1, H1.replace(TITLE_TEXT, f"&#x202E;{TITLE_TEXT}&#8236;")))
    assert art.title == TITLE_TEXT


@pytest.mark.parametrize("blank", ["   ", "\u200b\u200b", "\u202e \u202c", "&nbsp;\u3164\t", ""])
def test_blank_h1_falls_back_to_og_title(blank: str) -> None:
    art = parse((H1, f'<h1 class="detail-title">{blank}</h1>'))
    assert art.title == TITLE_TEXT  # og:title carries the same headline
    assert_unchanged(art)


def test_title_blank_everywhere_is_no_title() -> None:
    html = page((H1, '<h1 class="detail-title">\u200b \u202e\u202c</h1>'))
    html = html.replace(f'content="{TITLE_TEXT}"', 'content=" \u200b&#8203; "')
    with pytest.raises(ParseError) as err:
        parse_article(html.encode(), URL)
    assert err.value.reason == "no_title"


# ------------------------------------------------------------------------ hidden text

@pytest.mark.parametrize("hide", ['style="display:none"', 'style="DISPLAY : None;"', "hidden",
                                  'style="visibility:hidden"', 'hidden="hidden"'])
def test_text_no_reader_sees_is_not_stored(hide: str) -> None:
    art = parse(
        (H1, f'<h1 class="detail-title" {hide}>Tiêu đề giả</h1>' + H1),
        ("<p>Kiểm tra", f"<p {hide}>Mua thuốc giá rẻ tại đây</p><p>Kiểm tra"),
        (TAG_LINK, f'<span {hide}>spam</span>' + TAG_LINK),
    )
    assert_unchanged(art)
    assert "giả" not in art.body_markdown and "spam" not in art.body_markdown


# ---------------------------------------------------------------- pathological nesting

@pytest.mark.parametrize(("tag", "depth"), [("div", 100_000), ("span", 20_000),
                                            ("div", 300), ("table", 5_000)])
def test_paragraphs_after_a_deep_nest_are_kept(tag: str, depth: int) -> None:
    nest = f"<{tag}>" * depth + f"</{tag}>" * depth
    art = parse((FIRST_OPEN, FIRST_OPEN + nest))
    assert art.body_text == WANT["body_text"]
    assert "deep_nesting_flattened" in art.warnings
    assert_unchanged(art)


@pytest.mark.parametrize(("where", "nest"), [
    (END_OPEN, "<ul><li>x" * 100_000),  # unclosed, text at every level, before div#divend
    (FIRST_OPEN, "<b>" * 100_000),  # unclosed inline nest around the whole body
    (FIRST_OPEN, "<div><span>" * 50_000),  # unclosed, alternating
])
def test_structure_after_an_unclosed_nest_is_kept(where: str, nest: str) -> None:
    art = parse((where, where + nest) if where == FIRST_OPEN else (where, nest + where))
    paragraphs = art.body_text.split("\n\n")
    assert "\n\n".join(p for p in paragraphs if p.strip("x ")) == WANT["body_text"]
    assert "deep_nesting_flattened" in art.warnings
    assert (art.title, art.tags, art.byline) == (TITLE_TEXT, WANT["tags"], WANT["byline"])


def test_text_inside_a_deep_nest_is_kept() -> None:
    nest = "<div>" * 50_000 + "<p>Đoạn văn nằm sâu trong tổ.</p>" + "</div>" * 50_000
    art = parse((FIRST_OPEN, FIRST_OPEN + nest))
    assert art.body_text.split("\n\n")[0] == "Đoạn văn nằm sâu trong tổ."
    assert art.body_text.endswith(WANT["body_text"])


def test_unclosed_deep_nest_before_the_body_keeps_the_body() -> None:
    art = parse((SAPO_OPEN, "<div>" * 30_000 + SAPO_OPEN))
    assert art.body_text == WANT["body_text"]
    assert art.title == TITLE_TEXT


# ------------------------------------------------------------------------- JSON-LD

def _ld(payload: str) -> str:
    return f'<script type="application/ld+json">{payload}</script>'


@pytest.mark.parametrize("payload", [
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    "[" * 50_000 + "]" * 50_000,
    '{"@graph":' * 20_000 + "[]" + "}" * 20_000,
    '{"@type": "NewsArticle", "headline": ',  # cut short
    '{"n": ' + "1" * 5000 + "}",  # beyond Python's int digits limit
])
def test_a_bad_json_ld_block_is_skipped(payload: str) -> None:
    art = parse((FIRST_LD, _ld(payload) + FIRST_LD))
    assert "bad_jsonld" in art.warnings
    assert_unchanged(art)
    assert art.date_source == "meta" and art.modified_at.isoformat() == WANT["modified_at"]


def test_json_ld_values_of_the_wrong_type_are_ignored() -> None:
    odd = _ld('{"@type": ["NewsArticle", {"x": 1}], "datePublished": 20250712,'
              ' "dateModified": ["2025"], "headline": {"a": 1}, "description": 7}')
    crumbs = _ld('{"@type": "BreadcrumbList", "itemListElement": [{"name": ["x"]},'
                 ' {"item": {"name": 5, "@id": {"u": 1}}}]}')
    html = page((FIRST_LD, odd + crumbs + FIRST_LD))
    html = html.replace(FIRST_LD, "<script>", 3)  # only the odd ones stay JSON-LD
    art = parse_article(html.encode(), URL)
    assert art.modified_at is None  # only JSON-LD gave one; a list is not a date
    assert art.published_at.isoformat() == WANT["published_at"]
    assert (art.category, art.category_id) == ("Pháp luật", 475)


# -------------------------------------------------------------------------------- dates

def test_year_2099_in_meta_loses_to_the_agreeing_sources() -> None:
    art = parse((META_DATE, META_DATE.replace("2025-07-12", "2099-07-12")))
    assert art.published_at.isoformat() == WANT["published_at"]
    assert (art.date_source, art.date_disagreement) == ("jsonld", True)
    assert "implausible_date:meta" in art.warnings


def test_visible_date_and_id17_beat_two_agreeing_machine_dates_in_2099() -> None:
    art = parse((META_DATE, META_DATE.replace("2025-07-12", "2099-07-12")),
                (LD_DATE, LD_DATE.replace("2025-07-12", "2099-07-12")))
    assert art.published_at.isoformat() == "2025-07-12T21:11:00+07:00"
    assert (art.date_source, art.date_disagreement) == ("visible", True)
    assert {"implausible_date:meta", "implausible_date:jsonld"} <= set(art.warnings)


@pytest.mark.parametrize("bad", ["1970-01-01T00:00:00+07:00", "1999-12-31T23:59:00+07:00",
                                 "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00",
                                 "2025-13-45T99:99:00+07:00", "not a date"])
def test_nonsense_machine_dates_are_not_picked(bad: str) -> None:
    art = parse((META_DATE, META_DATE.replace("2025-07-12T21:11:00+07:00", bad)))
    assert art.published_at.isoformat() == WANT["published_at"]
    assert art.date_source == "jsonld"


def test_only_nonsense_dates_fall_back_to_the_id17() -> None:
    art = parse((META_DATE, META_DATE.replace("2025-07-12", "2099-07-12")),
                (LD_DATE, LD_DATE.replace("2025-07-12", "1970-07-12")),
                (VISIBLE_DATE, "Thứ Bảy, 12/07/2087 21:11"))
    assert art.published_at.isoformat() == "2025-07-12T20:59:05+07:00"
    assert (art.date_source, art.date_disagreement) == ("id17", True)


# ------------------------------------------------------------------- size and volume

def test_huge_attribute_values_do_not_cut_the_page() -> None:
    huge = "A" * (11 * 1024 * 1024)  # above libxml2's 10 MB limit
    art = parse((IMG, f'<img data-x="{huge}" alt="Chú thích ảnh" src="{IMG_SRC}">'),
                ("<p>Kiểm tra", f'<p class="{huge[:2_000_000]}">Kiểm tra'))
    assert "huge_html" in art.warnings
    assert_unchanged(art)


def test_huge_data_uri_image_is_dropped() -> None:
    art = parse((IMG, f'<img src="data:image/png;base64,{"A" * 3_000_000}">'))
    assert art.images == [] and "dropped_image_urls:1" in art.warnings
    assert len(art.body_markdown) < 10_000


def test_fifty_thousand_tags_are_capped_not_quadratic() -> None:
    many = " ".join(f'<li><a href="/tags/t{i}.htm"><strong>thẻ {i % 30_000},</strong></a></li>'
                    for i in range(50_000))
    art = parse((f"<li>{TAG_LINK}</li>", f"<li>{TAG_LINK}</li>{many}"))
    assert len(art.tags) == 100 and "capped:tags" in art.warnings
    assert art.tags[:6] == ["Buôn lậu", "thẻ 0", "thẻ 1", "thẻ 2", "thẻ 3", "thẻ 4"]
    assert art.body_text == WANT["body_text"]


def test_thousands_of_images_and_related_links_are_capped() -> None:
    figs = "".join(f'<figure class="image"><img src="/Upload/x/files/i{i}.jpg"></figure>'
                   for i in range(5_000))
    related = "".join(f'<li class="item"><h4><a href="/phap-luat/a-2024010100{i:07d}.htm">x</a>'
                      "</h4></li>" for i in range(20_000))
    art = parse((END_OPEN, END_OPEN + figs),
                ('<ul id="plhMain_NewsDetail1_divRelation" class="list-concern">',
                 '<ul id="plhMain_NewsDetail1_divRelation" class="list-concern">' + related))
    assert len(art.images) == 500 and "capped:images" in art.warnings
    assert [i.position for i in art.images[:3]] == [0, 1, 2]
    assert len(art.related_article_ids) == 200 and "capped:related_article_ids" in art.warnings
    assert art.kind == "photo"  # 5,001 pictures and 245 words: a photo story
    assert art.body_text == WANT["body_text"]


# --------------------------------------------------------------------------- <base href>

@pytest.mark.parametrize(("base", "warned"), [("https://evil.example/", True),
                                              ("//evil.example/p/", True),
                                              ("https://baotintuc.vn/", False),
                                              ("/", False)])
def test_base_href_never_moves_relative_images_off_site(base: str, warned: bool) -> None:
    art = parse(("</head>", f'<base href="{base}"></head>'),
                (IMG, '<img src="/Upload/rel/files/2025/07/r.jpg">'))
    assert [i.url for i in art.images] == ["https://baotintuc.vn/Upload/rel/files/2025/07/r.jpg"]
    assert ("off_site_base_href_ignored" in art.warnings) is warned


# ------------------------------------------------------------------------------ encoding

def test_windows_punctuation_in_a_utf8_page_is_repaired() -> None:
    raw = page(("Kiểm tra phương tiện", "Kiểm tra QUOTE_L phương tiện QUOTE_R")).encode()
    raw = raw.replace(b"QUOTE_L", b"\x93").replace(b"QUOTE_R", b"\x94 \x96 \xc3")
    art = parse_article(raw, URL)
    assert "Kiểm tra “ phương tiện ” – \ufffd do đối tượng" in art.body_text
    assert art.title == TITLE_TEXT and "invalid_utf8_replaced" in art.warnings


def test_a_page_in_a_declared_legacy_encoding_is_decoded() -> None:
    html = page(('charset=utf-8', 'charset=windows-1258'))
    art = parse_article(html.encode("cp1258", errors="xmlcharrefreplace"), URL)
    assert art.title == TITLE_TEXT
    assert art.body_text == WANT["body_text"]
    assert "decoded_as:cp1258" in art.warnings


def test_nul_bytes_do_not_reach_the_fields() -> None:
    art = parse((H1, H1.replace("buôn lậu", "buôn\x00 lậu")), ("<p>Kiểm tra", "<p>\x00Kiểm tra"))
    assert art.title == TITLE_TEXT
    assert "\x00" not in art.body_text


# ------------------------------------------------------------- the generic fallback path

GENERIC = "synthetic_video"
GENERIC_ENTRY: dict[str, Any] = json.loads((RESOURCES / "expected.json").read_text())[GENERIC]
GENERIC_BASE = gzip.decompress((RESOURCES / f"{GENERIC}.html.gz").read_bytes()).decode()
OG_IMAGE = "https://video-api.baotintuc.vn/image/x/2025_07_13/avata.jpg"


def parse_generic_page(*edits: tuple[str, str]) -> Article:
    return parse_article(page(*edits, base=GENERIC_BASE).encode(), GENERIC_ENTRY["url"])


def test_generic_page_reference() -> None:
    art = parse_generic_page()
    assert art.parser_version == "generic-2" and art.warnings == ["generic_parser"]
    assert art.body_text == GENERIC_ENTRY["expected"]["body_text"]


@pytest.mark.parametrize("src", ["javascript:alert(1)", "data:image/png;base64,AAAA"])
def test_generic_og_image_must_be_a_web_url(src: str) -> None:
    art = parse_generic_page((OG_IMAGE, src))
    assert art.images == [] and "dropped_image_urls:1" in art.warnings


def test_generic_title_from_metadata_has_no_markup_or_invisibles() -> None:
    art = parse_generic_page(
        ('og:title" content="', 'og:title" content="\u202e<script>alert(1)</script>'))
    assert art.title == GENERIC_ENTRY["expected"]["title"]


def test_generic_body_after_a_deep_nest() -> None:
    art = parse_generic_page(('<div class="video-des">', '<div class="video-des">'
                              + "<div>" * 100_000 + "</div>" * 100_000))
    assert art.body_text == GENERIC_ENTRY["expected"]["body_text"]
    assert "deep_nesting_flattened" in art.warnings


def test_generic_dates_from_bad_json_ld_fall_back_to_the_id17() -> None:
    art = parse_generic_page(('"datePublished":"2025-07-13T15:20:00+07:00"',
                              '"datePublished":"2099-07-13T15:20:00+07:00"'))
    assert art.published_at.isoformat() == "2025-07-13T15:09:35+07:00"
    assert (art.date_source, art.date_disagreement) == ("id17", True)
    assert "implausible_date:jsonld" in art.warnings
    deep = parse_generic_page(('<script type="application/ld+json">{',
                               '<script type="application/ld+json">' + "[" * 50_000
                               + "]" * 50_000 + '</script><script type="application/ld+json">{'))
    assert deep.published_at.isoformat() == GENERIC_ENTRY["expected"]["published_at"]
    assert "bad_jsonld" in deep.warnings
