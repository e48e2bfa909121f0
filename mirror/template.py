"""Slots in real page shells: cut a region once, fill it per page."""

from __future__ import annotations

import re

from baotintuc.site import SUB_CATEGORIES, Category
from mirror.text import attr

_SLOT_RE = re.compile(r"@@SLOT:([a-z_0-9]+)@@")


def slot(name: str) -> str:
    return f"@@SLOT:{name}@@"


def fill(template: str, values: dict[str, str]) -> str:
    return _SLOT_RE.sub(lambda m: values[m.group(1)], template)


class Template:
    """A shell split once at its slots: rendering is a join, not a regex scan of ~200 KB
    (the server renders pages on demand, so this is its per-request cost)."""

    def __init__(self, text: str) -> None:
        parts = _SLOT_RE.split(text)
        self._literals = parts[0::2]
        self._slots = parts[1::2]

    def render(self, values: dict[str, str]) -> str:
        out = [self._literals[0]]
        for name, literal in zip(self._slots, self._literals[1:], strict=True):
            out.append(values[name])
            out.append(literal)
        return "".join(out)


def cut(page: str, start: str, end: str, name: str) -> str:
    """Replace ``start``… up to (not including) ``end`` by a slot."""
    i = page.index(start)
    j = page.index(end, i + len(start))
    return page[:i] + slot(name) + page[j:]


def sub1(page: str, pattern: str, name: str) -> str:
    """Replace the one match of ``pattern`` (DOTALL) by a slot; fail loudly otherwise."""
    new, n = re.subn(pattern, lambda _m: slot(name), page, count=1, flags=re.S)
    if n != 1:
        raise ValueError(f"shell pattern not found: {pattern}")
    return new


def threadbar_html(name: str, path: str, subs: tuple[tuple[str, str, int], ...]) -> str:
    """The ``div.lc-bar`` bar: a heading link and (sub-category) links, as the site prints."""
    items = "".join(
        f"""
                    <li>
                        <a href="{p}" id="sub_{i}">{attr(n)}</a>
                    </li>
                """
        for n, p, i in subs
    )
    return f"""<div class="lc-bar">
    <div class="ccr_threadbar">
        <a href="{path}" class="threadbar_topic" title="{attr(name)}">{attr(name)}</a>
        <ul class="threadbar_list">
            {items}
        </ul>
    </div>
</div>
"""


def category_subs(top: Category) -> tuple[tuple[str, str, int], ...]:
    return tuple((c.name, c.listing_path, c.id) for c in SUB_CATEGORIES if c.parent_id == top.id)
