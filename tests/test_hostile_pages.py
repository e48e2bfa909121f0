"""Hostile pages, end to end: what reaches the warehouse from pages built to trick a parser.

Script inside the title, bidi control characters, image URLs of every scheme, deep
nesting, recursive JSON-LD. The flow runs in-process under
``prefect_test_harness`` (a deployment's path, no CLI start-up), with the layout-drift
gate off so that every page's own outcome is visible.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mirror.model import Block, Figure
from mirror.server import MirrorServer
from tests.hostile.run import dicts, hostile_env, rows
from tests.hostile.site import PHAP_LUAT, StandIn, canonical

pytestmark = pytest.mark.slow
FEED = "trang-doc"
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
NESTING = 3_000
LD_DEPTH = 5_000


def _replace(page: str, pattern: str, new: str) -> str:
    out, n = re.subn(pattern, lambda _m: new, page, count=1, flags=re.S)
    assert n == 1, pattern
    return out


def build(root: Path) -> tuple[StandIn, dict[str, Any]]:
    s = StandIn(root, articles=12)
    c: dict[str, Any] = {}

    a = c["script_h1"] = s.take(PHAP_LUAT)
    s.publish(a, html=_replace(s.render(a), r'<h1 class="detail-title">.*?</h1>',
                               '<h1 class="detail-title"><script>alert("xss")</script>'
                               f'{a.title}<style>h1{{color:red}}</style></h1>'))
    b = c["bidi"] = s.take(PHAP_LUAT)
    b = dataclasses.replace(b, title="\u202e" + b.title + "\u202c\u200f",
                            sapo="\u2066" + b.sapo + "\u2069")
    s.by_id[b.article_id] = c["bidi"] = b
    s.publish(b)
    img = s.take(PHAP_LUAT)
    urls = ["javascript:alert(1)", "data:image/png;base64,iVBORw0KGgo=",
            "//cdnmedia.baotintuc.vn/Upload/x/files/2025/07/rel.jpg",
            "ftp://cdnmedia.baotintuc.vn/x.jpg", "vbscript:msgbox(1)",
            "https://cdnmedia.baotintuc.vn/Upload/x/files/2025/07/ok.jpg"]
    img = dataclasses.replace(img, blocks=[*img.blocks, *(
        Block("figure", figure=Figure(u, f"Ảnh {i}", None)) for i, u in enumerate(urls))])
    s.by_id[img.article_id] = c["image_schemes"] = img
    s.publish(img)
    deep = c["deep_nesting"] = s.take(PHAP_LUAT)
    marker = "Đoạn văn nằm rất sâu trong trang."
    s.publish(deep, html=_replace(
        s.render(deep), r'<div id="divend">',
        '<div id="divend">' + "<div>" * NESTING + f"<p>{marker}</p>" + "</div>" * NESTING))
    c["deep_marker"] = marker
    ld = c["jsonld_recursion"] = s.take(PHAP_LUAT)
    nested = "[" * LD_DEPTH + "]" * LD_DEPTH
    s.publish(ld, html=_replace(
        s.render(ld), r"</head>",
        '<script type="application/ld+json">{"@type": "NewsArticle", "x": '
        f"{nested}}}</script></head>"))
    control = c["control"] = s.take(PHAP_LUAT)
    s.publish(control)
    s.feed(FEED, [canonical(x.path) for x in (a, b, img, deep, ld, control)])
    return s, c


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from prefect.testing.utilities import prefect_test_harness

    from flows.ingest import ingest

    root = tmp_path_factory.mktemp("hostile-pages")
    s, cases = build(root)
    env = hostile_env(root, tmp_path_factory, BTT_CRAWL__FEEDS=f'["{FEED}"]',
                      BTT_QUALITY__MAX_GENERIC_PARSER_SHARE="1.0",
                      BTT_QUALITY__MIN_PAGES_FOR_GATE="100000")
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        if k.startswith("BTT_"):
            mp.setenv(k, v)
    db = root / "p.duckdb"
    try:
        with prefect_test_harness(), MirrorServer(s.site) as srv:
            state = ingest(base_url=srv.base_url, db_path=str(db), mode="rss",
                           return_state=True)
    finally:
        mp.undo()
    articles = {r["article_id"]: r for r in dicts(db, "select * from articles")}
    failures = dicts(db, "select * from fetch_failures")
    yield {"state": state, "cases": cases, "articles": articles, "failures": failures,
           "db": db, "standin": s}


def _outcome(st: dict[str, Any], name: str, crash_ok: bool = False) -> dict[str, Any]:
    """The page's row or failure rows; never neither (no silent loss), never a parser
    crash (unless ``crash_ok``: it is then recorded as one)."""
    a = st["cases"][name]
    row = st["articles"].get(a.article_id)
    fails = [f for f in st["failures"] if f["article_id"] == a.article_id]
    assert row is not None or fails, f"{name}: neither stored nor failed"
    if not crash_ok:
        assert not [f for f in fails if f["reason"] == "parse_error:crash"], fails
    return {"row": row, "fails": fails, "article": a}


def test_every_page_is_stored_or_failed_and_the_control_is_exact(stored: dict[str, Any]) -> None:
    assert stored["state"].is_completed(), stored["state"].message
    for name in ("script_h1", "bidi", "image_schemes", "deep_nesting", "jsonld_recursion"):
        _outcome(stored, name, crash_ok=True)
    c = stored["cases"]["control"]
    truth = stored["standin"].truth(c)
    row = stored["articles"][c.article_id]
    assert (row["title"], row["sapo"], row["byline"]) == (truth["title"], truth["sapo"],
                                                          truth["byline"])


def test_script_in_title_is_not_text(stored: dict[str, Any]) -> None:
    o = _outcome(stored, "script_h1")
    assert o["row"] is not None
    assert o["row"]["title"] == stored["standin"].truth(o["article"])["title"]


def test_bidi_controls_are_not_stored(stored: dict[str, Any]) -> None:
    o = _outcome(stored, "bidi")
    assert o["row"] is not None
    for field in ("title", "sapo", "body_text"):
        assert not BIDI.search(o["row"][field] or ""), (field, o["row"][field][:80])


def test_only_web_image_urls_are_stored(stored: dict[str, Any]) -> None:
    o = _outcome(stored, "image_schemes")
    assert o["row"] is not None
    urls = [r[0] for r in rows(stored["db"], "select url from article_images where "
                               "article_id = ? order by position", [o["article"].article_id])]
    assert "https://cdnmedia.baotintuc.vn/Upload/x/files/2025/07/ok.jpg" in urls
    assert all(u.startswith(("https://", "http://")) for u in urls), urls


def test_deep_nesting_keeps_its_text(stored: dict[str, Any]) -> None:
    o = _outcome(stored, "deep_nesting")
    assert o["row"] is not None, o["fails"]
    assert stored["cases"]["deep_marker"] in o["row"]["body_text"]


def test_recursive_jsonld_is_ignored_not_fatal(stored: dict[str, Any]) -> None:
    o = _outcome(stored, "jsonld_recursion")
    assert o["row"] is not None, o["fails"]
    assert o["row"]["title"] == stored["standin"].truth(o["article"])["title"]
    json.dumps(o["row"]["warnings"])  # plain values
