"""One fetched page, decoded and parsed once: lxml tree, meta tags, JSON-LD objects."""

from __future__ import annotations

import codecs
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import lxml.html
from lxml import etree
from lxml.etree import XPath
from w3lib.encoding import html_to_unicode

from baotintuc.model import ParseError
from baotintuc.text import clean_text


def decode_html(raw: bytes | str, content_type: str | None = None) -> tuple[str, list[str]]:
    """Text of the page, and warnings about how it was decoded.

    Valid UTF-8 is taken as UTF-8 (the site's encoding; valid UTF-8 is almost never an
    accident). Otherwise w3lib decides as browsers do: BOM, the HTTP ``Content-Type``
    charset, the ``<meta>`` charset, else UTF-8. A UTF-8 page with stray bytes (text
    pasted from a Windows code page: mixed encodings) keeps its UTF-8 text; each stray
    byte becomes the punctuation it is in both Windows-1252 and Windows-1258, else U+FFFD
    (warning ``invalid_utf8_replaced``), so bad bytes never crash the parser.
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
    return raw.decode("utf-8", errors=_WINDOWS_PUNCTUATION), ["invalid_utf8_replaced"]


def _windows_punctuation(err: UnicodeError) -> tuple[str, int]:
    """Decode error handler for UTF-8 pages with bytes pasted from a Windows code page: a
    byte that Windows-1252 and Windows-1258 (Vietnamese) read alike (curly quotes, dashes,
    ellipsis, €, ™ …) becomes that character; any other becomes U+FFFD (a letter would be a
    guess between code pages)."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    bad = err.object[err.start:err.end]
    return "".join(_SAME_IN_WINDOWS_PAGES.get(b, "\ufffd") for b in bad), err.end


def _same_in_windows_pages() -> dict[int, str]:
    out = {}
    for b in range(0x80, 0x100):
        try:
            a, v = bytes([b]).decode("cp1252"), bytes([b]).decode("cp1258")
        except UnicodeDecodeError:
            continue
        if a == v and not a.isalpha():
            out[b] = a
    return out


_SAME_IN_WINDOWS_PAGES = _same_in_windows_pages()
_WINDOWS_PUNCTUATION = "baotintuc-windows-punctuation"
codecs.register_error(_WINDOWS_PUNCTUATION, _windows_punctuation)


# Nesting kept when a page is too deep for libxml2 (which stops at 256 levels, or 2048
# with its "huge" option, and drops the rest of the document): real article pages are a
# few dozen levels deep.
MAX_DEPTH = 180
MAX_RUN = 32  # start tags in a row with nothing between them (real pages: about 10)
# C0 controls but whitespace, and DEL: never text; libxml2 and lxml choke on some of them
# (a NUL cuts a string short, lxml refuses to store them), losing the paragraph.
_CONTROLS_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_PARSERS = threading.local()  # lxml parsers are not to be shared between threads
_TAG_RE = re.compile(r"<!--.*?(?:-->|\Z)|<(/?)([A-Za-z][^\s/>]*)[^>]*>", re.DOTALL)
_VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta",
     "param", "source", "track", "wbr"]
)
_RAW_TEXT = frozenset(["script", "style", "textarea", "title", "xmp", "noembed", "noframes"])
# Elements whose content is never field text: code, styles, fallbacks and inert templates.
NOT_CONTENT = ("script", "style", "noscript", "template", "noembed", "noframes")
_NOT_CONTENT = XPath(" | ".join(f"//{tag}" for tag in NOT_CONTENT))
# Embeds whose inner text a browser never shows (fallback content); the element and its
# attributes (a player's ``src``, a video's ``<source>``) stay, the text goes.
_EMBEDS = XPath("//iframe | //canvas | //video | //audio")
_MEDIA_CHILDREN = frozenset(["source", "track"])
_HIDDEN = XPath("//body//*[@hidden or contains(translate(@style, ' ', ''), 'display:none')"
                " or contains(translate(@style, ' ', ''), 'visibility:hidden')]")
# libxml2 makes elements of malformed names such as ``scr<script`` (from ``<scr<script>ipt>``,
# a filter bypass): those are broken markup, not content, and go with everything inside.
_MALFORMED = XPath("//*[contains(name(), '<')]")


def _parser(*, from_bytes: bool = False, huge: bool = False) -> lxml.html.HTMLParser:
    """This thread's HTML parser: comments and processing instructions dropped (as
    trafilatura parses: a comment node between paragraphs changes its extraction, and a
    comment is never field text)."""
    key = f"{'bytes' if from_bytes else 'text'}-{'huge' if huge else 'std'}"
    parser = getattr(_PARSERS, key, None)
    if parser is None:
        parser = lxml.html.HTMLParser(
            remove_comments=True, remove_pis=True, collect_ids=False, huge_tree=huge,
            encoding="utf-8" if from_bytes else None,
        )
        setattr(_PARSERS, key, parser)
    return parser


def _hit_limit(parser: lxml.html.HTMLParser) -> bool:
    """Whether libxml2 stopped on a resource limit (nesting depth, a huge text or
    attribute): it then silently returns the document cut at that point."""
    return any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log.filter_from_fatals())


def cap_nesting(html: str, max_depth: int = MAX_DEPTH, max_run: int = MAX_RUN) -> str:
    """``html`` with the start tags of pathological nests removed (and their end tags).

    A tag scanner, not a parser, that keeps every text and drops tags from the *middle*
    of a nest, so the page's outer structure and the innermost levels survive:

    * a run of more than ``max_run`` start tags with nothing between them (``<div>`` ×
      10⁵, closed or not) keeps its first and last ``max_run // 2``;
    * past ``max_depth`` open elements, each new one drops an open element from the middle
      (its start tag goes, its content stays), so what follows an unclosed nest keeps its
      own structure.

    Void elements, and ``script``/``style``… with their raw text, are always kept
    (dropping a ``<script>`` tag would turn its code into text).
    """
    out: list[str] = []
    stack: list[list[Any]] = []  # open elements: [tag name, kept, index of start tag in out]
    kept: list[int] = []  # indices in ``stack`` of the kept open elements, outermost first
    run: list[int] = []  # indices in ``stack`` of the current run of kept start tags
    pos = 0

    def drop(index: int) -> None:
        stack[index][1] = False
        out[stack[index][2]] = ""

    for m in _iter_tags(html):
        closing, name = m.group(1), (m.group(2) or "").lower()
        between = html[pos:m.start()]
        out.append(between)
        if between.strip():
            run.clear()
        keep = True
        if name and closing:
            keep = _close(stack, kept, name)
            run.clear()
        elif name and name not in _VOID and not m.group(0).endswith("/>"):
            index = len(stack)
            stack.append([name, True, len(out)])
            if name not in _RAW_TEXT:
                kept.append(index)
                run.append(index)
                if len(run) > max_run:
                    victim = run.pop(max_run // 2)
                    drop(victim)
                    kept.remove(victim)
                if len(kept) > max_depth:
                    victim = kept.pop(max_depth // 2)
                    drop(victim)
                    if victim in run:
                        run.remove(victim)
        out.append(m.group(0) if keep else "")
        pos = m.end()
    out.append(html[pos:])
    return "".join(out)


def _iter_tags(html: str) -> Iterator[re.Match[str]]:
    """Tags and comments of ``html``, skipping the raw text of script/style/… elements."""
    pos = 0
    while (m := _TAG_RE.search(html, pos)) is not None:
        yield m
        pos = m.end()
        name = (m.group(2) or "").lower()
        if name in _RAW_TEXT and not m.group(1):
            end = re.compile(rf"</{name}\b", re.IGNORECASE).search(html, pos)
            pos = end.start() if end else len(html)


def _close(stack: list[list[Any]], kept: list[int], name: str) -> bool:
    """Pop the element an end tag closes; whether to keep the end tag.

    The element is the innermost open one of that name: looked for among the kept open
    elements (at most ``MAX_DEPTH``, so an end tag finds its element past any number of
    dropped ones, as ``</div>`` after an unclosed ``<b>`` × 10⁵), else among the 64
    innermost entries. A stray end tag is kept (the parser ignores it).
    """
    if stack and stack[-1][0] == name:
        k = len(stack) - 1
    else:
        k = next((i for i in reversed(kept) if stack[i][0] == name), -1)
        if k < 0:
            k = next((i for i in range(len(stack) - 1, max(-1, len(stack) - 65), -1)
                      if stack[i][0] == name), -1)
        if k < 0:
            return True
    was_kept = bool(stack[k][1])
    del stack[k:]
    while kept and kept[-1] >= k:
        kept.pop()
    return was_kept


def parse_html(text: str, utf8: bytes | None = None) -> tuple[lxml.html.HtmlElement, list[str]]:
    """lxml tree of a decoded page, and warnings about repairs.

    When libxml2 gives up on a resource limit, the page is parsed again with its nesting
    capped (:func:`cap_nesting`, warning ``deep_nesting_flattened``) and libxml2's
    ``huge`` option (texts and attributes above 10 MB; warning ``huge_html``), so the rest
    of the page is not lost. ``utf8``: the page's bytes when they are ``text`` in UTF-8
    (libxml2 parses bytes faster than a Python string). Control characters (C0 but
    whitespace, DEL) are removed first. Raises ParseError on empty or unparseable input.
    """
    if _CONTROLS_RE.search(text):
        text, utf8 = _CONTROLS_RE.sub("", text), None
    if not text.strip():
        raise ParseError("empty_page")
    warnings: list[str] = []
    try:
        tree = _parse(text, huge=False, utf8=utf8)
        if tree is None:
            capped = cap_nesting(text)
            warnings.append("deep_nesting_flattened" if len(capped) < len(text) else "huge_html")
            tree = _parse(capped, huge=True)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError("unparseable_html", str(exc)) from exc
    if tree is None:
        raise ParseError("unparseable_html", "libxml2 resource limit")
    return tree, warnings


def _parse(text: str, *, huge: bool, utf8: bytes | None = None) -> lxml.html.HtmlElement | None:
    """The tree, or None when libxml2 stopped on a resource limit."""
    if utf8 is None:
        parser = _parser(huge=huge)
        try:
            tree = lxml.html.document_fromstring(text, parser=parser)
            return None if _hit_limit(parser) else tree
        except ValueError:  # a str with an XML encoding declaration: parse its bytes
            utf8 = text.encode("utf-8")
    parser = _parser(from_bytes=True, huge=huge)
    tree = lxml.html.document_fromstring(utf8, parser=parser)
    return None if _hit_limit(parser) else tree


def strip_not_content(tree: lxml.html.HtmlElement) -> int:
    """Remove script/style/noscript/template/noembed/noframes elements, the fallback text
    of iframe/canvas/video/audio, elements hidden from readers
    (``hidden``, inline ``display:none``/``visibility:hidden``: a hidden fake headline
    must not become the title) and elements of malformed tag names, with their content,
    keeping the text that follows them. Returns how many malformed ones went."""
    for el in _NOT_CONTENT(tree):
        el.drop_tree()
    for el in _HIDDEN(tree):
        if el.getparent() is not None:
            el.drop_tree()
    for el in _EMBEDS(tree):
        el.text = None
        for child in list(el):
            if child.tag in _MEDIA_CHILDREN:
                child.tail = None
            else:
                el.remove(child)
    malformed = 0
    for el in _MALFORMED(tree):
        if el.getparent() is not None:
            el.drop_tree()
            malformed += 1
    return malformed


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
            str(s.text or "") for s in tree.xpath('//script[@type="application/ld+json"]')
        ]
        if strip_not_content(tree):
            self.warnings.append("malformed_tags_removed")
        base = tree.xpath("//base/@href")
        self.base_href = str(base[0]).strip() if base else None
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


def markup_text(value: object) -> str:
    """Plain text of a metadata value (a meta ``content``, a JSON-LD string, an attribute).

    These values are meant to be text, but some sites put HTML in them (``<p>`` in a
    JSON-LD description) and a hostile page puts ``<script>`` there: markup is parsed and
    only its readable text kept (script, style … dropped, as on the page), then cleaned
    like any text. Entity-escaped markup in an attribute is the same value to an HTML
    parser and goes the same way. Non-strings give "".
    """
    if not isinstance(value, str):
        return ""
    if "<" in value:
        try:
            fragment = lxml.html.fragment_fromstring(value, create_parent="div",
                                                     parser=_parser())
        except (etree.ParserError, ValueError):
            return clean_text(value)
        strip_not_content(fragment)
        value = fragment.text_content()
    return clean_text(value)


def text_of(el: Any) -> str:
    """Whitespace-collapsed text of an element (or an XPath string result)."""
    if el is None:
        return ""
    if isinstance(el, str):
        return clean_text(el)
    return clean_text(el.text_content())
