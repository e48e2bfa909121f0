"""One fetched page, decoded and parsed once: lxml tree, meta tags, JSON-LD objects."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import lxml.html

from baotintuc.parsers.decode import decode_html
from baotintuc.parsers.tree import markup_text, parse_html, strip_not_content
from baotintuc.text import clean_text

__all__ = ["Page", "decode_html", "load_page", "markup_text", "text_of"]


def load_page(raw: bytes | str, url: str) -> Page:
    """Decode ``raw`` (see :func:`decode_html`) into a :class:`Page` fetched from ``url``."""
    text, warnings = decode_html(raw)
    utf8 = raw if isinstance(raw, bytes) and not warnings else None
    return Page(text, url, list(warnings), utf8)


def _walk_ld(obj: Any) -> list[dict[str, Any]]:
    """The objects of a JSON-LD value (lists and ``@graph`` unwrapped), iteratively."""
    out: list[dict[str, Any]] = []
    todo = [obj]
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(reversed(item))
        elif isinstance(item, dict):
            if "@graph" in item:
                todo.append(item["@graph"])
            else:
                out.append(item)
    return out


@dataclass
class Page:
    """The decoded page plus lazily computed lookups shared by every parser version."""

    html: str
    url: str
    warnings: list[str] = field(default_factory=list)
    utf8: bytes | None = field(default=None, repr=False)  # ``html`` encoded, when fetched so
    base_href: str | None = field(default=None, init=False)  # <base href>, set with tree
    _jsonld_sources: list[str] = field(default_factory=list, init=False, repr=False)

    @cached_property
    def tree(self) -> lxml.html.HtmlElement:
        """The page without comments, scripts, styles, noscript, templates or malformed
        elements: whatever a field reads from it is page text (JSON-LD is read first)."""
        tree, warnings = parse_html(self.html, self.utf8)
        self.warnings.extend(warnings)
        self._jsonld_sources = [
            s.text or "" for s in tree.iter("script")
            if (s.get("type") or "").strip().lower() == "application/ld+json"
        ]
        base = next(tree.iter("base"), None)
        self.base_href = (base.get("href") or "").strip() or None if base is not None else None
        if strip_not_content(tree):
            self.warnings.append("malformed_tags_removed")
        return tree

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

    def meta_text(self, *keys: str) -> str:
        """:func:`markup_text` of the first non-blank value of ``keys``; "" if none."""
        return markup_text(self.meta_first(*keys))

    def meta_first(self, *keys: str) -> str | None:
        for key in keys:
            for value in self.meta.get(key.lower(), []):
                if clean_text(value):
                    return value.strip()
        return None

    @cached_property
    def jsonld(self) -> list[dict[str, Any]]:
        """Every JSON-LD object of the page. A block that does not decode (bad syntax, or
        nested deeper than the decoder's recursion limit) is skipped with ``bad_jsonld``:
        the article is read from the rest."""
        self.tree  # noqa: B018 - collects the JSON-LD sources before scripts are removed
        out: list[dict[str, Any]] = []
        for source in self._jsonld_sources:
            try:
                out.extend(_walk_ld(json.loads(source, strict=False)))
            except (ValueError, RecursionError):
                self.warnings.append("bad_jsonld")
        return out

    def ld_of_type(self, *types: str) -> dict[str, Any] | None:
        for obj in self.jsonld:
            kind = obj.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if any(isinstance(k, str) and k in types for k in kinds):
                return obj
        return None

    def ld_text(self, obj: dict[str, Any], key: str) -> str | None:
        """``obj[key]`` when it is a string (JSON-LD values can be anything), else None."""
        value = obj.get(key)
        return value if isinstance(value, str) else None

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
