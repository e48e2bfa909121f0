"""Text normalisation, search keys, bylines, credits and dates: edge cases."""

from __future__ import annotations

from datetime import datetime

import pytest

from baotintuc.parsers.byline import parse_byline, parse_credit
from baotintuc.parsers.dates import VN_TZ, parse_visible, resolve_dates
from baotintuc.parsers.page import decode_html
from baotintuc.text import clean_text, search_key, token_f1, word_count


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Ng&agrave;y 12/7,&nbsp;c&ocirc;ng an", "Ngày 12/7, công an"),
        ("  a\u00a0\u00a0b\t\n c  ", "a b c"),
        ("zero\u200bwidth\ufeff soft\u00adhyphen", "zerowidth softhyphen"),
        ("Hoa\u0300 bi\u0300nh", "Hoà bình"),  # NFD → NFC
        ("PCCC&amp;CNCH", "PCCC&CNCH"),
        ("", ""),
        (None, ""),
    ],
)
def test_clean_text(raw: str | None, clean: str) -> None:
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    ("a", "b", "key"),
    [
        ("dân vận", "Dân Vận", "dan van"),
        ("hoà", "hòa", "hoa"),
        ("thuý", "thúy", "thuy"),
        ("Đà Nẵng", "DA NANG", "da nang"),
        ("Hoa\u0300", "hoà", "hoa"),
    ],
)
def test_search_key(a: str, b: str, key: str) -> None:
    assert search_key(a) == search_key(b) == key


def test_token_f1() -> None:
    assert token_f1("a b c d", "a b c d") == 1.0
    assert token_f1("", "") == 1.0
    assert token_f1("a b", "") == 0.0
    assert token_f1("a b c d", "a b") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("Hòa, bình.", "hòa bình") == 1.0
    assert word_count("a  b\n\nc") == 3


@pytest.mark.parametrize(
    ("line", "byline", "authors", "source"),
    [
        ("Kim Anh (TTXVN)", "Kim Anh (TTXVN)", ["Kim Anh"], "TTXVN"),
        ("Lê Sen – Hồng Phát (TTXVN)", "Lê Sen – Hồng Phát (TTXVN)", ["Lê Sen", "Hồng Phát"],
         "TTXVN"),
        ("Tin, ảnh: Đậu Tất Thành (TTXVN)", "Tin, ảnh: Đậu Tất Thành (TTXVN)",
         ["Đậu Tất Thành"], "TTXVN"),
        ("Chùm ảnh, clip: Lưu Niệm/Báo Tin tức", "Chùm ảnh, clip: Lưu Niệm/Báo Tin tức",
         ["Lưu Niệm"], "Báo Tin tức"),
        ("TTXVN/Báo Tin tức và Dân tộc", "TTXVN/Báo Tin tức và Dân tộc", [],
         "TTXVN/Báo Tin tức và Dân tộc"),
        ("Bài và ảnh: Minh Anh - Ngọc Thành", "Bài và ảnh: Minh Anh - Ngọc Thành",
         ["Minh Anh", "Ngọc Thành"], None),
        ("Bùi Giang\u00a0 (TTXVN)   ", "Bùi Giang (TTXVN)", ["Bùi Giang"], "TTXVN"),
        ("Hồng Nhung và Thu Hà, Văn Đức (TTXVN)", "Hồng Nhung và Thu Hà, Văn Đức (TTXVN)",
         ["Hồng Nhung", "Thu Hà", "Văn Đức"], "TTXVN"),
        ("Nhóm PV/Báo Tin tức", "Nhóm PV/Báo Tin tức", [], "Báo Tin tức"),
        ("Theo TTXVN", "Theo TTXVN", [], "TTXVN"),
        ("", None, [], None),
        (None, None, [], None),
    ],
)
def test_parse_byline(line: str | None, byline: str | None, authors: list[str],
                      source: str | None) -> None:
    assert parse_byline(line) == (byline, authors, source)


@pytest.mark.parametrize(
    ("caption", "credit"),
    [
        ("Ảnh tư liệu: Trần Xuân Tình/TTXVN", "Trần Xuân Tình/TTXVN"),
        ("Đối tượng bị bắt giữ. Ảnh: TTXVN ph&aacute;t", "TTXVN phát"),
        ("Ảnh minh họa: TTXVN", "TTXVN"),
        ("Kỳ thủ giành HCV. Ảnh: TTXVN", "TTXVN"),
        ("Múa xòe. (Ảnh: Hoàng Hiếu/TTXVN)", "Hoàng Hiếu/TTXVN"),
        ("Ảnh: A. Ảnh chân dung: Nguyễn B", "Nguyễn B"),
        ("Hiện trường vụ tai nạn.\u00a0", None),
        ("Chụp ảnh cùng gia đình", None),
        ("", None),
    ],
)
def test_parse_credit(caption: str, credit: str | None) -> None:
    assert parse_credit(caption) == credit


def test_visible_dates() -> None:
    assert parse_visible("Thứ Bảy, 12/07/2025 21:11") == datetime(2025, 7, 12, 21, 11,
                                                                   tzinfo=VN_TZ)
    assert parse_visible("10:05 Ngày 03/02/2018") == datetime(2018, 2, 3, 10, 5, tzinfo=VN_TZ)
    assert parse_visible("0914.914.999") is None


def test_resolve_dates_priority_and_disagreement() -> None:
    d = resolve_dates(meta="2025-07-12T21:11:00+07:00", jsonld="2025-07-12T14:11:00Z",
                      visible="Thứ Bảy, 12/07/2025 21:12", article_id="20250712205905640")
    assert d is not None and d.source == "meta" and not d.disagreement
    assert d.published_at.isoformat() == "2025-07-12T21:11:00+07:00"
    d = resolve_dates(meta=None, jsonld=None, visible="Thứ Bảy, 12/07/2025 21:15",
                      article_id="20250712205905640", modified="2025-07-12T22:00:00+07:00")
    assert d is not None and d.source == "visible"
    assert d.modified_at is not None and d.modified_at.isoformat() == "2025-07-12T22:00:00+07:00"
    d = resolve_dates(meta="2025-07-12T21:11:00+07:00", jsonld=None,
                      visible="Thứ Bảy, 12/07/2025 21:15", article_id=None)
    assert d is not None and d.disagreement
    d = resolve_dates(meta="not a date", jsonld=None, visible=None,
                      article_id="20250712205905640")
    assert d is not None and d.source == "id17"
    assert d.published_at.isoformat() == "2025-07-12T20:59:05+07:00"
    assert resolve_dates(meta=None, jsonld=None, visible=None, article_id="x") is None


def test_decode_html_fallbacks() -> None:
    assert decode_html("đã".encode()) == ("đã", [])
    text, warnings = decode_html('<meta charset="windows-1258"><p>\xe0</p>'.encode("latin-1"))
    assert text.endswith("<p>à</p>") and warnings == ["decoded_as:cp1258"]
    text, warnings = decode_html(b"<p>ok \xff</p>")
    assert text == "<p>ok \ufffd</p>" and warnings == ["invalid_utf8_replaced"]


def test_clean_text_removes_every_format_control_and_surrogate_character() -> None:
    import unicodedata

    for cp in range(0x110000):
        char = chr(cp)
        category = unicodedata.category(char)
        if category in ("Cf", "Cs") or (category == "Cc" and not char.isspace()):
            assert clean_text(f"a{char}b") == "ab", f"U+{cp:04X}"
        elif char.isspace():
            assert clean_text(f"a{char}b") == "a b", f"U+{cp:04X}"


@pytest.mark.parametrize(("raw", "clean"), [
    ("\u202eevil\u202c title", "evil title"),
    ("\u2066x\u2069 \u200ey\u200f", "x y"),
    ("a&#x202E;b&#8236;", "ab"),
    ("\x1b[31mred\x1b[0m", "[31mred[0m"),
    ("line\u2028break\u0085next", "line break next"),
    ("\u3164\u115f \ufeff", ""),
    ("tag\U000e0041\U000e007f", "tag"),
    ("lone \ud800 surrogate", "lone surrogate"),
])
def test_clean_text_hostile(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_clean_text_of_a_non_string_is_empty() -> None:
    assert clean_text(12345) == ""  # type: ignore[arg-type]
    assert clean_text(["x"]) == ""  # type: ignore[arg-type]


def test_implausible_dates_lose_to_agreeing_ones() -> None:
    aid = "20250712205905640"
    d = resolve_dates(meta="2099-07-12T21:11:00+07:00", jsonld=None,
                      visible="Thứ Bảy, 12/07/2025 21:11", article_id=aid)
    assert d is not None and (d.source, d.disagreement, d.rejected) == ("visible", True, ("meta",))
    d = resolve_dates(meta="1999-07-12T21:11:00+07:00", jsonld="2025-07-12T21:11:00+07:00",
                      visible=None, article_id=aid)
    assert d is not None and d.source == "jsonld" and d.rejected == ("meta",)
    # within the ID17 window but unconfirmed, vs confirmed by another source
    d = resolve_dates(meta="2025-07-20T09:00:00+07:00", jsonld="2025-07-12T21:11:00+07:00",
                      visible="Thứ Bảy, 12/07/2025 21:11", article_id=aid)
    assert d is not None and d.source == "jsonld" and d.disagreement and d.rejected == ()
    # nothing plausible: the ID17
    d = resolve_dates(meta="2099-01-01T00:00:00+07:00", jsonld=None, visible=None,
                      article_id=aid)
    assert d is not None and (d.source, d.disagreement) == ("id17", True)
    # no ID17 to judge by: only the year-2000 floor applies
    d = resolve_dates(meta="2099-01-01T00:00:00+07:00", jsonld=None, visible=None,
                      article_id=None)
    assert d is not None and d.published_at.year == 2099


@pytest.mark.parametrize("value", [20250712, ["2025-07-12"], {"d": 1}, "9999-12-31T23:59:59-12:00",
                                   "0001-01-01T00:00:00+14:00", ""])
def test_machine_dates_of_any_shape_do_not_crash(value: object) -> None:
    d = resolve_dates(meta=value, jsonld=value, visible=None, article_id="20250712205905640",
                      modified=value)
    assert d is not None and d.source == "id17" and d.modified_at is None


def test_modified_before_2000_is_dropped() -> None:
    d = resolve_dates(meta="2025-07-12T21:11:00+07:00", jsonld=None, visible=None,
                      article_id="20250712205905640", modified="1970-01-01T00:00:00Z")
    assert d is not None and d.modified_at is None and d.rejected == ("modified",)


def test_windows_punctuation_in_utf8_is_repaired_letters_are_not() -> None:
    text, warnings = decode_html("“Đẹp”".encode() + b" \x93x\x94 \x85 \x80 \xe0 \x81")
    assert text == "“Đẹp” “x” … € \ufffd \ufffd" and warnings == ["invalid_utf8_replaced"]


def test_cap_nesting_keeps_text_structure_and_scripts() -> None:
    from baotintuc.parsers.tree import cap_nesting

    # a run of empty start tags keeps its first 2 and last 3 (max_run 5): the paragraph
    # at the bottom of the nest stays a paragraph; the script keeps its tags and code
    html = ("<body>" + "<div>" * 100 + "<p>a</p>" + "</div>" * 100
            + "<div><script>if (a<b) {'<div>'}</script><p>b</p></div></body>")
    assert cap_nesting(html, max_depth=10, max_run=5) == (
        "<body>" + "<div>" * 3 + "<p>a</p>" + "</div>" * 3
        + "<div><script>if (a<b) {'<div>'}</script><p>b</p></div></body>")
    unclosed = "<body>" + "<div>" * 50 + "<h2>x</h2><script>s()</script><p>y</p></body>"
    assert cap_nesting(unclosed, max_depth=10, max_run=5) == (
        "<body>" + "<div>" * 3 + "<h2>x</h2><script>s()</script><p>y</p></body>")
    # past the depth limit, open elements are dropped from the middle; all text stays
    deep = "<div>x" * 12 + "<span>s</span><p>p<b>b</b></p>" + "</div>" * 12
    assert cap_nesting(deep, max_depth=10, max_run=50) == (
        "<div>x" * 5 + "xxxx" + "<div>x" * 3 + "<span>s</span><p>p<b>b</b></p>" + "</div>" * 8)
    assert cap_nesting("<p>plain</p>") == "<p>plain</p>"
