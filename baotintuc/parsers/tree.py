"""Decoded page → lxml tree that holds only page text, whatever the page does.

libxml2 gives up silently on pathological input (nesting past 256 levels, texts and
attributes past 10 MB: the rest of the document is dropped); pages carry text that is no
content (scripts, styles, hidden elements, fallbacks of embeds, markup of malformed tag
names). Everything a parser version reads comes from the tree made here, so each of these
is handled once, for every field.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator
from typing import Any

import lxml.html
from lxml import etree
from lxml.etree import XPath

from baotintuc.model import ParseError
from baotintuc.text import clean_text

# Nesting kept when a page is too deep for libxml2 (which stops at 256 levels, or 2048
# with its "huge" option, and drops the rest of the document): real article pages are a
# few dozen levels deep.
MAX_DEPTH = 180
MAX_RUN = 32  # start tags in a row with nothing between them (real pages: about 10)
# C0 controls but whitespace, and DEL: never text; libxml2 and lxml choke on some of them
# (a NUL cuts a string short, lxml refuses to store them), losing the paragraph.
_CONTROLS_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
_PARSERS = threading.local()  # lxml parsers are not to be shared between threads
_TAG_RE = re.compile(r"<!--.*?(?:-->|\Z)|<(/?)([A-Za-z][^\s/>]*)[^>]*>", re.DOTALL)
_VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta",
     "param", "source", "track", "wbr"]
)
_RAW_TEXT = frozenset(["script", "style", "textarea", "title", "xmp", "noembed", "noframes"])
# Elements whose content is never field text: code, styles, fallbacks and inert templates.
NOT_CONTENT = ("script", "style", "noscript", "template", "noembed", "noframes")
# Embeds whose inner text a browser never shows (fallback content); the element and its
# attributes (a player's ``src``, a video's ``<source>``) stay, the text goes.
EMBEDS = ("iframe", "canvas", "video", "audio")
_MEDIA_CHILDREN = frozenset(["source", "track"])
_HIDDEN_OR_STYLED = XPath("//body//*[@hidden or @style]")
_HIDING_STYLE_RE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
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


def _has_controls(text: str, utf8: bytes | None) -> bool:
    if utf8 is not None:  # in UTF-8 these bytes only ever stand for themselves
        return len(utf8.translate(None, _CONTROL_BYTES)) != len(utf8)
    return _CONTROLS_RE.search(text) is not None


def parse_html(text: str, utf8: bytes | None = None) -> tuple[lxml.html.HtmlElement, list[str]]:
    """lxml tree of a decoded page, and warnings about repairs.

    When libxml2 gives up on a resource limit, the page is parsed again with its nesting
    capped (:func:`cap_nesting`, warning ``deep_nesting_flattened``) and libxml2's
    ``huge`` option (texts and attributes above 10 MB; warning ``huge_html``), so the rest
    of the page is not lost; a ``<script>``/``<style>``… never closed, which takes the rest
    of the page as its text, ends at the next tag instead (one such element; warning
    ``unclosed_raw_text_repaired``). ``utf8``: the page's bytes when they are ``text`` in UTF-8
    (libxml2 parses bytes faster than a Python string). Control characters (C0 but
    whitespace, DEL) are removed first. Raises ParseError on empty or unparseable input.
    """
    if _has_controls(text, utf8):
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
    swallower = _unclosed_raw_text(tree)
    if swallower is not None:
        repaired = _end_raw_text_at_next_tag(text, swallower)
        if repaired != text and (again := _parse(repaired, huge=True)) is not None:
            tree = again
            warnings.append("unclosed_raw_text_repaired")
    return tree, warnings


_SWALLOWED_END_RE = re.compile(r"</(?:body|html)\s*>", re.IGNORECASE)
# Elements a script or style legitimately sits in, whose end tags also turn up in scripts
# that build HTML: their end tag in a script's text proves nothing.
_CONTAINERS = frozenset(["html", "head", "body", "div", "section", "article", "main", "aside",
                         "header", "footer", "nav", "form", "center", "noscript"])


def _unclosed_raw_text(tree: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """A script/style/… element that was not closed where it should have been and so took
    the page that follows as its raw text, else None. Proof: its text holds the end tag of
    an element it was opened in (``<h1>…<script>alert(1)</h1>…``: a heading, a paragraph,
    a link … up to the nearest container), or ``</body>`` when it was not opened in the
    body itself.
    (On the 207 real pages of the fixtures and the AEB set, no script or style matches.)"""
    for el in tree.iter(*_RAW_TEXT):
        parent = el.getparent()
        text = el.text or ""
        if parent is None or not text or parent.tag in ("html", "head", "body"):
            continue
        if _SWALLOWED_END_RE.search(text):
            return el
        for ancestor in itertools.islice(el.iterancestors(), 8):
            if ancestor.tag in _CONTAINERS:
                break
            if re.search(rf"</{re.escape(str(ancestor.tag))}\s*>", text, re.IGNORECASE):
                return el
    return None


def _end_raw_text_at_next_tag(html: str, element: lxml.html.HtmlElement) -> str:
    """``html`` where the raw-text ``element`` (see :func:`_unclosed_raw_text`) ends at the
    next tag instead: its start tag and the text up to that tag go, so it costs that text,
    not the rest of the page."""
    head = (element.text or "")[:100]  # the parser turned CR LF into LF: compare so
    for m in re.finditer(rf"<{element.tag}\b[^>]*>", html, re.IGNORECASE):
        source = html[m.end():m.end() + 2 * len(head)].replace("\r\n", "\n").replace("\r", "\n")
        if source.startswith(head):
            nxt = html.find("<", m.end())
            return html[:m.start()] + html[nxt if nxt >= 0 else len(html):]
    return html


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
    for el in list(tree.iter(*NOT_CONTENT)):
        el.drop_tree()
    for el in _HIDDEN_OR_STYLED(tree):
        hidden = el.get("hidden") is not None or _HIDING_STYLE_RE.search(el.get("style") or "")
        if hidden and el.getparent() is not None:
            el.drop_tree()
    for el in list(tree.iter(*EMBEDS)):
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
