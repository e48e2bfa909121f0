"""Bylines (``div.author``) and image credits, per the byline rules in docs/architecture.md."""

from __future__ import annotations

import re

from baotintuc.text import clean_text

_AGENCY_RE = re.compile(r"\(\s*([^()]+?)\s*\)\s*$")
_SPLIT_RE = re.compile(r"\s*[–—\-,;&]\s*|\s+và\s+", re.IGNORECASE)
_THEO_RE = re.compile(r"^theo\s+", re.IGNORECASE)
# Words that start an organisation's name, never a person's.
_ORG_WORDS = (
    "báo ", "tạp chí", "đài ", "thông tấn", "cổng ", "trung tâm", "ban ", "bộ ", "sở ",
    "ủy ban", "uỷ ban", "văn phòng", "nhóm phóng viên", "pv", "ptv", "nhóm pv",
)
_CREDIT_RE = re.compile(r"(?:^|[\s(.;,–-])Ảnh[^:.()]{0,40}:\s*", re.IGNORECASE)


def _is_org(name: str) -> bool:
    low = name.lower()
    if name.isupper() and len(name.replace(" ", "")) >= 2:
        return True  # TTXVN, VNA, AFP
    return low.startswith(_ORG_WORDS) or "ttxvn" in low


def parse_byline(line: str | None) -> tuple[str | None, list[str], str | None]:
    """``(byline as printed, person names, source)`` for one ``div.author`` line.

    ``Tin, ảnh: Đậu Tất Thành (TTXVN)`` → ``(line, ["Đậu Tất Thành"], "TTXVN")``;
    ``TTXVN/Báo Tin tức và Dân tộc`` → ``(line, [], line)`` (an organisation only).
    """
    byline = clean_text(line)
    if not byline:
        return None, [], None
    rest = byline.rsplit(":", 1)[1].strip() if ":" in byline else byline
    if _THEO_RE.match(rest):
        return byline, [], _THEO_RE.sub("", rest).strip() or None
    source: str | None = None
    m = _AGENCY_RE.search(rest)
    if m:
        source = m.group(1)
        rest = rest[: m.start()].strip()
    if "/" in rest:
        names, org = (p.strip() for p in rest.split("/", 1))
        if _is_org(names):  # "TTXVN/Báo Tin tức và Dân tộc": no person at all
            group = names.lower().startswith(("nhóm", "pv", "ptv"))
            return byline, [], source or (org if group and org else byline)
        source = source or org or None
        rest = names
    if rest and _is_org(rest):
        return byline, [], source or rest
    authors = [p.strip() for p in _SPLIT_RE.split(rest) if p.strip() and not _is_org(p.strip())]
    return byline, authors, source


def parse_credit(caption: str | None) -> str | None:
    """Text after the last ``Ảnh…:`` of a caption (``Ảnh: TTXVN phát`` → ``TTXVN phát``)."""
    text = clean_text(caption)
    last = None
    for last in _CREDIT_RE.finditer(text):  # noqa: B007 - we want the last match
        pass
    if last is None:
        return None
    credit = text[last.end():].strip().rstrip(".").strip()
    if credit.endswith(")") and credit.count("(") < credit.count(")"):
        credit = credit[:-1].strip()
    return credit or None
