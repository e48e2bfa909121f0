"""Vietnamese text normalisation: clean display text, accent-insensitive search keys, token F1."""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter

# Characters that are not text: C0/C1 controls other than whitespace, every format
# character (Unicode category Cf: zero-width spaces and joiners, soft hyphen, BOM, the bidi
# embeddings/overrides/isolates U+202A–U+202E and U+2066–U+2069 and marks U+200E/U+200F and
# U+061C, invisible operators, tag characters …), lone surrogates (a JSON "\ud800" escape;
# not encodable, a database rejects them), the noncharacters U+FFFE/U+FFFF and the Hangul
# fillers that render as blanks. A bidi override makes a title display reversed; a
# zero-width title looks filled to code and empty to people: all are removed everywhere.
# Whitespace (nbsp, U+2007, U+202F, U+3000, line/paragraph separators …) becomes one space.
_NOT_TEXT_RE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f"
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ud800-\udfff"
    "\ufeff\uffa0\ufff9-\ufffb\ufffe\uffff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_WS_RE = re.compile(r"\s+")
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


def clean_text(s: str | None) -> str:
    """Display form of any text field: entities decoded, invisible and control characters
    removed (see ``_NOT_TEXT_RE``), NFC, whitespace collapsed to single spaces, stripped.

    Non-string input (a number in JSON-LD …) gives ``""``: a field is text or nothing.
    """
    if not s or not isinstance(s, str):
        return ""
    if "&" in s:
        s = html.unescape(s)
    s = _NOT_TEXT_RE.sub("", s)
    s = unicodedata.normalize("NFC", s)
    return _WS_RE.sub(" ", s).strip()


def search_key(s: str | None) -> str:
    """Accent- and case-insensitive key: ``Dân Vận`` → ``dan van``, ``hoà``/``hòa`` → ``hoa``.

    Stripping every combining mark makes old (``hoà``) and new (``hòa``) tone placement equal.
    """
    s = clean_text(s).lower().replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", s)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def tokens(s: str | None) -> list[str]:
    """Lower-cased word tokens (punctuation dropped), the unit of :func:`token_f1`."""
    return _TOKEN_RE.findall(clean_text(s).lower())


def token_f1(pred: str | None, truth: str | None) -> float:
    """Bag-of-tokens F1 between two texts; 1.0 when both are empty."""
    p, t = Counter(tokens(pred)), Counter(tokens(truth))
    if not p and not t:
        return 1.0
    common = sum((p & t).values())
    if common == 0:
        return 0.0
    precision = common / sum(p.values())
    recall = common / sum(t.values())
    return 2 * precision * recall / (precision + recall)


def word_count(s: str) -> int:
    """Number of whitespace-separated tokens."""
    return len(s.split())
