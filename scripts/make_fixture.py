"""Gzip a saved page into tests/resources/baotintuc/ and print its expected-JSON skeleton.

The skeleton is for review, never for blind freezing: it also prints an independent,
selector-only reading of the body (``<p>``/``<h*>``/``<li>`` text split at ``<br>``) and
its token F1 against the parser's ``body_text`` so that differences get looked at.

    .venv/bin/python scripts/make_fixture.py PAGE.html NAME [--url URL] [--write]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

import lxml.html

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baotintuc.parsers import parse_article, pick_parser  # noqa: E402
from baotintuc.parsers.page import Page, decode_html  # noqa: E402
from baotintuc.text import clean_text, token_f1  # noqa: E402

RESOURCES = Path(__file__).resolve().parents[1] / "tests" / "resources" / "baotintuc"
SKIP_FIELDS = ("parser_version", "extractor_version", "warnings")
BLOCK_TAGS = ("p", "h2", "h3", "h4", "h5", "h6", "li", "blockquote")


def independent_body(html: str) -> str:
    """Body blocks read with plain selectors only (no trafilatura), for cross-checking."""
    tree = lxml.html.document_fromstring(html)
    out: list[str] = []
    for part in tree.xpath("//div[@id='divfirst'] | //div[@id='divend']"
                           " | //div[@id='plhMain_NewsDetail1_divContentLive']"):
        for bad in part.xpath(".//figure | .//script | .//ins | .//iframe | .//noscript"):
            bad.drop_tree()
        for br in part.iter("br"):
            br.tail = "\n" + (br.tail or "")
        for el in part.iter(*BLOCK_TAGS):
            if el.xpath(f"ancestor::*[{' or '.join('self::' + t for t in BLOCK_TAGS)}]"):
                continue
            for line in el.text_content().split("\n"):
                if clean_text(line):
                    out.append(clean_text(line))
    return "\n\n".join(out)


def skeleton(raw: bytes, url: str) -> dict[str, object]:
    art = parse_article(raw, url)
    row = art.to_row()
    for key in SKIP_FIELDS:
        row.pop(key)
    for key in ("published_at", "modified_at"):
        row[key] = row[key].isoformat() if row[key] else None
    version = pick_parser(Page(decode_html(raw)[0], url))
    return {"url": art.url, "layout": version.LAYOUT if version else "generic", "expected": row}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("page", type=Path)
    ap.add_argument("name")
    ap.add_argument("--url", help="article URL (default: the page's og:url)")
    ap.add_argument("--write", action="store_true", help="write <name>.html.gz")
    args = ap.parse_args()
    raw = args.page.read_bytes()
    url = args.url
    if not url:
        m = re.search(rb'og:url"\s+content="([^"]+)"', raw)
        if not m:
            sys.exit("no og:url in the page: pass --url")
        url = m.group(1).decode()
    if args.write:
        (RESOURCES / f"{args.name}.html.gz").write_bytes(gzip.compress(raw, mtime=0))
    entry = skeleton(raw, url)
    body = entry["expected"]["body_text"]  # type: ignore[index]
    ref = independent_body(decode_html(raw)[0])
    print(json.dumps({args.name: entry}, ensure_ascii=False, indent=2))
    print(f"# independent body F1 = {token_f1(body, ref):.4f}, exact = {body == ref}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
