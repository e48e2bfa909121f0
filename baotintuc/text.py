"""Vietnamese text normalisation: clean display text, accent-insensitive search keys, token F1."""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter

# Characters that render as a space (nbsp and friends) or as nothing at all.
_SPACE_LIKE = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u3000\t\r\f\v"), " ")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_WS_RE = re.compile(r"\s+")
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


def clean_text(s: str | None) -> str:
    """Display form: entities decoded, NFC, nbsp → space, invisibles gone, whitespace collapsed."""
    if not s:
        return ""
    if "&" in s:
        s = html.unescape(s)
    s = s.translate(_SPACE_LIKE).translate(_INVISIBLE)
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
