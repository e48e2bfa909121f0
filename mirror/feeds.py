"""RSS 2.0 feeds, the ``/rss.htm`` feed index, ``/robots.txt``."""

from __future__ import annotations

from xml.sax.saxutils import escape

from baotintuc.site import CANONICAL_ORIGIN
from mirror.model import Article
from mirror.shell import thumb_url
from mirror.text import attr, rfc822

FEED_SIZE = 50
ROBOTS_TXT = "User-agent: *\nDisallow: /Comment.aspx\nDisallow: /Search.aspx\nAllow: /\n"


def rss(title: str, link_path: str, arts: list[Article]) -> str:
    """Newest ``FEED_SIZE`` items; description = linked thumbnail + sapo (the 2018 form)."""
    items = sorted(arts, key=lambda a: a.article_id, reverse=True)[:FEED_SIZE]
    newest_line = (f"<pubDate>{rfc822(max(a.published_at for a in items))}</pubDate>\n"
                   f"<lastBuildDate>{rfc822(max(a.published_at for a in items))}</lastBuildDate>\n"
                   if items else "")
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">\n<channel>\n',
        f"<title>{escape(title)} - baotintuc.vn</title>\n",
        f"<link>{CANONICAL_ORIGIN}{link_path}</link>\n",
        f"<description>{escape(title)} - Báo Tin tức</description>\n",
        "<language>vi</language>\n",
        newest_line,
    ]
    for a in items:
        desc = (f'<a href="{a.url}"><img src="{thumb_url(a.thumb, 260)}" '
                f'alt="{attr(a.title)}" /></a>{attr(a.sapo)}')
        parts.append(
            f"<item>\n<title>{escape(a.title)}</title>\n<link>{a.url}</link>\n"
            f'<guid isPermaLink="true">{a.url}</guid>\n'
            f"<description><![CDATA[{desc}]]></description>\n"
            f"<pubDate>{rfc822(a.published_at)}</pubDate>\n</item>\n"
        )
    parts.append("</channel>\n</rss>\n")
    return "".join(parts)


def rss_index(feeds: list[tuple[str, str]]) -> str:
    """``/rss.htm``: one link per feed, ``(name, slug)``."""
    rows = "\n".join(
        f'<li><a href="/{slug}.rss" title="{attr(name)}">{attr(name)}</a> '
        f'<span class="rss-url">{CANONICAL_ORIGIN}/{slug}.rss</span></li>'
        for name, slug in feeds
    )
    return (
        '<!DOCTYPE html>\n<html lang="vi">\n<head>\n<meta http-equiv="Content-Type" '
        'content="text/html; charset=utf-8" />\n<title>RSS | baotintuc.vn</title>\n'
        f'<link rel="canonical" href="{CANONICAL_ORIGIN}/rss.htm" />\n</head>\n<body>\n'
        '<div class="rss-page">\n<h1>RSS</h1>\n<ul class="list-rss">\n'
        f"{rows}\n</ul>\n</div>\n</body>\n</html>\n"
    )
