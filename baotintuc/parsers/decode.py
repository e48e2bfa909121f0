"""Page bytes → text: UTF-8 first, else what the page and its server declare."""

from __future__ import annotations

import codecs

from w3lib.encoding import html_to_unicode


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
