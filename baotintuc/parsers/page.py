"""One fetched page, decoded and parsed once: lxml tree, meta tags, JSON-LD objects."""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import lxml.html
from lxml import etree
from w3lib.encoding import html_to_unicode

from baotintuc.model import ParseError
from baotintuc.text import clean_text


def decode_html(raw: bytes | str, content_type: str | None = None) -> tuple[str, list[str]]:
    """Text of the page, and warnings about how it was decoded.

    Valid UTF-8 is taken as UTF-8 (the site's encoding; valid UTF-8 is almost never an
    accident). Otherwise w3lib decides as browsers do: BOM, the HTTP ``Content-Type``
    charset, the ``<meta>`` charset, else UTF-8, with replacement characters for bytes
    that do not decode, so bad bytes never crash the parser.
    """
    if isinstance(raw, str):
        return raw, []
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    encoding, text = html_to_unicode(content_type, raw)
    if codecs.lookup(encoding).name != "utf-8":
        return text, [f"decoded_as:{encoding}"]
    return text, ["invalid_utf8_replaced"]


def _walk_ld(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, list):
        return [d for item in obj for d in _walk_ld(item)]
    if isinstance(obj, dict):
        if "@graph" in obj:
            return _walk_ld(obj["@graph"])
        return [obj]
    return []


@dataclass
class Page:
    """The decoded page plus lazily computed lookups shared by every parser version."""

    html: str
    url: str
    warnings: list[str] = field(default_factory=list)

    @cached_property
    def tree(self) -> lxml.html.HtmlElement:
        text = self.html.strip()
        if not text:
            raise ParseError("empty_page")
        try:
            return lxml.html.document_fromstring(text)
        except (etree.ParserError, ValueError) as exc:
            raise ParseError("unparseable_html", str(exc)) from exc

    @cached_property
    def meta(self) -> dict[str, list[str]]:
        """``property``/``name``/``itemprop`` → contents, in document order."""
        out: dict[str, list[str]] = {}
        for el in self.tree.iter("meta"):
            content = el.get("content")
            if content is None:
                continue
            for attr in ("property", "name", "itemprop"):
                key = (el.get(attr) or "").strip().lower()
                if key:
                    out.setdefault(key, []).append(content)
        return out

    def meta_first(self, *keys: str) -> str | None:
        for key in keys:
            for value in self.meta.get(key.lower(), []):
                if clean_text(value):
                    return value.strip()
        return None

    @cached_property
    def jsonld(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for script in self.tree.xpath('//script[@type="application/ld+json"]'):
            try:
                out.extend(_walk_ld(json.loads(script.text or "", strict=False)))
            except ValueError:
                self.warnings.append("bad_jsonld")
        return out

    def ld_of_type(self, *types: str) -> dict[str, Any] | None:
        for obj in self.jsonld:
            kind = obj.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if any(k in types for k in kinds):
                return obj
        return None

    def canonical_url(self) -> str | None:
        links = self.tree.xpath('//link[@rel="canonical"]/@href')
        return self.meta_first("og:url") or (links[0].strip() if links else None)


def text_of(el: Any) -> str:
    """Whitespace-collapsed text of an element (or an XPath string result)."""
    if el is None:
        return ""
    if isinstance(el, str):
        return clean_text(el)
    return clean_text(el.text_content())
