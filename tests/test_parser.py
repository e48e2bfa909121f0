"""Every fixture page parses to exactly its reviewed expected values."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from baotintuc.parsers import ParseError, parse_article, pick_parser
from baotintuc.parsers.page import Page, decode_html
from baotintuc.text import token_f1

RESOURCES = Path(__file__).parent / "resources" / "baotintuc"
EXPECTED: dict[str, dict[str, Any]] = json.loads((RESOURCES / "expected.json").read_text())
REAL = sorted(k for k, v in EXPECTED.items() if not v.get("synthetic"))
REQUIRED = ("article_id", "url", "title", "body_text", "body_markdown", "published_at",
            "date_source", "kind")


def load(name: str) -> bytes:
    return gzip.decompress((RESOURCES / f"{name}.html.gz").read_bytes())


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("published_at", "modified_at"):
        if isinstance(out[key], datetime):
            out[key] = out[key].isoformat()
    for key in ("parser_version", "extractor_version", "warnings", "fetched_at"):
        out.pop(key)
    return out


@pytest.fixture(scope="module")
def parsed() -> dict[str, dict[str, Any]]:
    return {n: as_json(parse_article(load(n), e["url"]).to_row()) for n, e in EXPECTED.items()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fields_equal_expected(name: str, parsed: dict[str, dict[str, Any]]) -> None:
    expected, got = EXPECTED[name]["expected"], parsed[name]
    assert sorted(got) == sorted(expected)
    assert token_f1(got["body_text"], expected["body_text"]) >= 0.98
    for key in expected:
        assert got[key] == expected[key], key


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layout_and_required_values(name: str, parsed: dict[str, dict[str, Any]]) -> None:
    raw = load(name)
    version = pick_parser(Page(decode_html(raw)[0], EXPECTED[name]["url"]))
    assert (version.LAYOUT if version else "generic") == EXPECTED[name]["layout"]
    got = parsed[name]
    for key in REQUIRED:
        assert got[key], key
    assert got["published_at"].endswith("+07:00")
    assert got["word_count"] == len(got["body_text"].split())
    assert all(not t.endswith(",") for t in got["tags"])


@pytest.mark.parametrize("name", REAL)
def test_real_pages_are_complete(name: str, parsed: dict[str, dict[str, Any]]) -> None:
    got = parsed[name]
    assert got["sapo"] and got["byline"] and got["category"] and got["category_id"]
    assert got["related_article_ids"]
    assert all(i["url"].startswith("https://cdnmedia.baotintuc.vn/") for i in got["images"])


def test_real_pages_body_f1(parsed: dict[str, dict[str, Any]]) -> None:
    scores = [token_f1(parsed[n]["body_text"], EXPECTED[n]["expected"]["body_text"]) for n in REAL]
    assert len(scores) == 21
    assert min(scores) == 1.0


def test_clutter_absent_key_sentence_present(parsed: dict[str, dict[str, Any]]) -> None:
    got = parsed["V2023_20250712205905640_phap-luat"]
    body = got["body_text"]
    assert "Kiểm tra phương tiện do đối tượng Thìn điều khiển" in body
    assert body.endswith("toàn bộ hành vi phạm tội của mình.")
    for clutter in ("Từ khóa", "Bắt quả tang vụ vận chuyển gần 25.000 bao thuốc lá lậu",
                    "Hải quan bắt giữ 1,3 triệu bao", "aj1559", "googletagmanager",
                    "Ảnh: TTXVN phát", "Bùi Giang", "Buôn lậu,", "Chia sẻ"):
        assert clutter not in body
        assert clutter not in got["body_markdown"] or clutter == "Ảnh: TTXVN phát"
    assert got["body_markdown"].startswith(
        "![Đối tượng Nguyễn Văn Thìn vận chuyển thuốc lá lậu bị bắt giữ. Ảnh: TTXVN phát]"
        "(https://cdnmedia.baotintuc.vn/Upload/rGkvwNpj74Z1EcpzQ6ltA/files/2025/07/tuan4/"
        "thuoc-la-12725.jpg)\n\nTrước đó, thực hiện chuyên án TN725p"
    )


def test_photo_item_with_video() -> None:
    name = "V2023_20250711215257577_xa-hoi"
    art = parse_article(load(name), EXPECTED[name]["url"])
    assert art.kind == "photo" and len(art.images) == 10
    assert art.video_urls == [
        "https://cdnmedia.baotintuc.vn/Upload/xXHVb3SiFkVmqewcNCaBEw/files/2025/07/chay/chay.mp4"
    ]
    assert "Player.aspx" not in art.body_text and "Player.aspx" not in art.body_markdown
    assert art.parser_version == "baotintuc-V2023-1"
    assert art.extractor_version.startswith("trafilatura-")


def test_listing_page_is_not_an_article() -> None:
    raw = load("listing_phap-luat-475ct0")
    with pytest.raises(ParseError) as err:
        parse_article(raw, "https://baotintuc.vn/phap-luat-475ct0.htm")
    assert err.value.reason == "not_article"
    # Even served under an article-like URL the listing is rejected (no layout, og:type=website).
    with pytest.raises(ParseError) as err:
        parse_article(raw, "https://baotintuc.vn/phap-luat/x-20250713204911331.htm")
    assert err.value.reason == "not_article"


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        (b"", "empty_page"),
        (b"   \n ", "empty_page"),
        (b"<html><body></body></html>", "empty_page"),
        (b"\x00\xff\xfe garbage \x89PNG", "not_article"),
        (b"<html><body><h1 class='detail-title'>T</h1><div id='divfirst'></div></body></html>",
         "empty_body"),
        (b"<html><body><h1 class='detail-title'> </h1><div id='divfirst'><p>x</p></div>"
         b"</body></html>", "no_title"),
    ],
)
def test_garbage_raises_parse_error(html: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_article(html, "https://baotintuc.vn/xa-hoi/bai-viet-20250711215257577.htm")
    assert err.value.reason == reason


def test_invalid_utf8_is_replaced_with_a_warning() -> None:
    name = "V2023_20250712205905640_phap-luat"
    raw = load(name).replace("Bắt giữ vụ buôn lậu".encode(), b"B\xff\xfet gi\xc3")
    art = parse_article(raw, EXPECTED[name]["url"])
    assert "invalid_utf8_replaced" in art.warnings
    assert art.body_text == EXPECTED[name]["expected"]["body_text"]


def test_str_input_and_mirror_url_give_canonical_url() -> None:
    name = "V2023_20250712205905640_phap-luat"
    path = EXPECTED[name]["url"].removeprefix("https://baotintuc.vn")
    art = parse_article(load(name).decode(), f"http://127.0.0.1:8123{path}?x=1")
    assert art.url == EXPECTED[name]["url"]
    assert art.article_id == "20250712205905640"
