"""``baotintuc report``: one self-contained HTML file about a window of the warehouse.

Everything is inline (CSS, SVG charts; no script, no font, no image to fetch), so the file
opens offline, can be mailed, and is what the nightly quality-report flow writes too.
Sections: articles per period by category, attention over time for the given queries,
top authors and tags, top words and phrases, sample stories, and data quality (fill rates,
failures by reason, parser versions by day).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path
from typing import Any

import duckdb

from baotintuc.model import REPORTED_COLUMNS, STORED_COLUMNS, filled_sql
from warehouse.attention import attention
from warehouse.report import svg
from warehouse.report.words import top_phrases
from warehouse.search import SITE_TIMEZONE, Filters, SearchIndexError, check_index_ready

TOP_CATEGORIES = 8
FILL_FIELDS = REPORTED_COLUMNS


@dataclass(slots=True)
class ReportData:
    db_path: str
    since: date | None
    until: date | None
    generated_at: str
    articles: int = 0
    first: date | None = None
    last: date | None = None
    period: str = "day"
    periods: list[str] = field(default_factory=list)
    by_category: dict[str, list[float]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    attention: dict[str, list[float]] = field(default_factory=dict)
    attention_note: str | None = None
    authors: list[tuple[str, float]] = field(default_factory=list)
    tags: list[tuple[str, float]] = field(default_factory=list)
    words: list[tuple[str, float]] = field(default_factory=list)
    phrases: list[tuple[str, float]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    fill: list[tuple[str, float]] = field(default_factory=list)
    failures: list[tuple[str, int]] = field(default_factory=list)
    parser_days: list[str] = field(default_factory=list)
    parser_series: dict[str, list[float]] = field(default_factory=dict)


def _period_for(first: date, last: date) -> str:
    days = (last - first).days
    return "day" if days <= 92 else "week" if days <= 731 else "month"


def _label(d: date, period: str) -> str:
    return d.strftime("%Y-%m") if period == "month" else d.strftime("%m-%d") if (
        period == "day") else d.isoformat()


def collect(
    con: duckdb.DuckDBPyConnection,
    *,
    db_path: str,
    since: date | None = None,
    until: date | None = None,
    queries: list[str] | None = None,
) -> ReportData:
    """Read everything the report shows (read-only; a few aggregate queries)."""
    con.execute("SET enable_progress_bar = false")
    filters = Filters(since=since, until=until)
    cond, params = filters.where("a")
    data = ReportData(db_path=db_path, since=since, until=until,
                      generated_at=datetime.now(UTC).isoformat(timespec="seconds"))
    local = f"(a.published_at at time zone '{SITE_TIMEZONE}')::date"
    row = con.execute(f"select count(*), min({local}), max({local}) from articles a "
                      f"where {cond}", params).fetchone()
    assert row is not None
    data.articles, data.first, data.last = int(row[0]), row[1], row[2]
    if not data.articles:
        return data
    first, last = since or data.first, until or data.last
    assert first is not None and last is not None
    data.period = _period_for(first, last)
    trunc = f"date_trunc('{data.period}', {local})::date"
    periods = [r[0] for r in con.execute(
        f"select generate_series::date from generate_series(date_trunc('{data.period}', "
        f"?::date)::date, ?::date, interval 1 {data.period})", [first, last]).fetchall()]
    data.periods = [_label(p, data.period) for p in periods]
    index = {p: i for i, p in enumerate(periods)}

    top = [r[0] for r in con.execute(
        f"select coalesce(category, '(none)') from articles a where {cond} group by 1 "
        f"order by count(*) desc, 1 limit {TOP_CATEGORIES}", params).fetchall()]
    counts = con.execute(
        f"select {trunc}, coalesce(category, '(none)'), count(*) from articles a "
        f"where {cond} group by all", params).fetchall()
    series: dict[str, list[float]] = {c: [0.0] * len(periods) for c in top}
    other = [0.0] * len(periods)
    for p, cat, n in counts:
        if p in index:
            series.get(cat, other)[index[p]] += n
    if any(other):
        series["khác (other)"] = other
    data.by_category = series

    data.authors = [(str(a), float(n)) for a, n in con.execute(
        f"select author, count(*) from (select unnest(a.authors) as author from articles a "
        f"where {cond}) group by 1 order by 2 desc, 1 limit 15", params).fetchall()]
    data.tags = [(str(t), float(n)) for t, n in con.execute(
        f"select mode(tag), count(*) from (select unnest(a.tags) as tag from articles a "
        f"where {cond}) group by vn_fold(tag) order by 2 desc, 1 limit 15", params).fetchall()]
    data.words = [(p.text, float(p.articles)) for p in top_phrases(con, cond, params, n=2)]
    data.phrases = [(p.text, float(p.articles))
                    for p in top_phrases(con, cond, params, n=3, limit=15)]

    data.queries = list(queries) if queries else [t for t, _ in data.tags[:3]]
    _collect_attention(con, data, filters, periods)

    data.samples = [
        {"title": r[0], "url": r[1], "category": r[2], "published": r[3], "sapo": r[4]}
        for r in con.execute(
            f"select title, url, category, strftime({local.replace('::date', '')}, "
            "'%Y-%m-%d %H:%M'), sapo from (select *, row_number() over (partition by "
            "category order by published_at desc) as k from articles a where "
            f"{cond}) a where k = 1 order by published_at desc limit 12", params).fetchall()
    ]
    filled = ", ".join(f"avg(({_filled(f)})::int)" for f in FILL_FIELDS)
    rates = con.execute(f"select {filled} from articles a where {cond}", params).fetchone()
    assert rates is not None
    data.fill = [(f, float(v or 0)) for f, v in zip(FILL_FIELDS, rates, strict=True)]
    fetched = f"(\"at\" at time zone '{SITE_TIMEZONE}')::date"
    fail_cond = " and ".join(
        c for c in (f"{fetched} >= ?::date" if since else "",
                    f"{fetched} <= ?::date" if until else "") if c) or "true"
    fail_params = [d for d in (since, until) if d]
    data.failures = [(str(r), int(n)) for r, n in con.execute(
        f"select coalesce(reason, '(none)'), count(*) from fetch_failures where {fail_cond} "
        "group by 1 order by 2 desc, 1 limit 20", fail_params).fetchall()]
    by_day = con.execute(
        f"select (a.fetched_at at time zone '{SITE_TIMEZONE}')::date as d, "
        "coalesce(parser_version, '(none)'), count(*) from articles a "
        f"where {cond} group by all order by 1", params).fetchall()
    days = sorted({r[0] for r in by_day})
    versions = sorted({r[1] for r in by_day})
    data.parser_days = [d.isoformat() for d in days]
    data.parser_series = {v: [0.0] * len(days) for v in versions}
    for d, v, n in by_day:
        data.parser_series[v][days.index(d)] = n
    return data


def _filled(column: str) -> str:
    return filled_sql(column, STORED_COLUMNS[column])


def _collect_attention(
    con: duckdb.DuckDBPyConnection, data: ReportData, filters: Filters, periods: list[date]
) -> None:
    if not data.queries:
        data.attention_note = "no query given and no tags to chart"
        return
    try:
        check_index_ready(con)
    except SearchIndexError as exc:
        data.attention_note = f"attention needs the search index: {exc}"
        return
    index = {p: i for i, p in enumerate(periods)}
    period_filters = Filters(since=filters.since or periods[0], until=filters.until)
    for q in data.queries:
        values = [0.0] * len(periods)
        for r in attention(con, [q], by=data.period, filters=period_filters):
            if r.period in index:
                values[index[r.period]] = r.share
        data.attention[q] = values


CSS = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:960px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid
#ddd;padding-bottom:4px} .meta{color:#666;font-size:13px} .grid{display:flex;flex-wrap:wrap;
gap:16px} .grid>div{flex:1 1 430px} table{border-collapse:collapse;font-size:13px}
td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left} td.n{text-align:right}
.story{margin:8px 0} .story a{font-weight:600} .story p{margin:2px 0;color:#444;font-size:13px}
.note{color:#a33}
"""


def render(data: ReportData) -> str:
    """The HTML document (UTF-8, self-contained)."""
    window = f"{data.since or data.first} – {data.until or data.last}"
    h: list[str] = [
        "<!DOCTYPE html><html lang='vi'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        "<link rel='icon' href='data:,'>",
        f"<title>baotintuc report {escape(window)}</title><style>{CSS}</style></head><body>",
        "<h1>baotintuc.vn in the warehouse</h1>",
        f"<p class='meta'>{data.articles} articles published {escape(window)} (Vietnam time) · "
        f"database <code>{escape(data.db_path)}</code> · generated {escape(data.generated_at)}"
        " UTC</p>",
    ]
    if not data.articles:
        h.append("<p class='note'>No article in this window.</p></body></html>")
        return "".join(h)
    h.append(f"<h2>Articles per {data.period} by category</h2>")
    h.append(svg.stacked_bars("articles-by-category", f"Articles per {data.period} by category",
                              data.periods, data.by_category))
    h.append(f"<h2>Attention over time (share of articles per {data.period})</h2>")
    if data.attention:
        h.append(svg.lines("attention", "Share of articles matching each query",
                           data.periods, data.attention))
        h.append("<p class='meta'>Queries: " + ", ".join(
            f"<code>{escape(q)}</code>" for q in data.queries) + " (as in <code>baotintuc "
            "search</code>: accents optional, \"phrases\", OR, -word).</p>")
    else:
        h.append(f"<p class='note'>{escape(data.attention_note or '')}</p>")
    h.append("<div class='grid'><div><h2>Top authors</h2>")
    h.append(svg.hbars("top-authors", "Articles per author", data.authors))
    h.append("</div><div><h2>Top tags</h2>")
    h.append(svg.hbars("top-tags", "Articles per tag", data.tags))
    h.append("</div></div><div class='grid'><div><h2>Top words (two syllables)</h2>")
    h.append(svg.hbars("top-words", "Articles per word", data.words[:20]))
    h.append("</div><div><h2>Top phrases (three syllables)</h2>")
    h.append(svg.hbars("top-phrases", "Articles per phrase", data.phrases))
    h.append("</div></div><p class='meta'>Words and phrases: syllable sequences of titles and "
             "leads, counted once per article, without stop words, kept when their syllables "
             "occur together more often than chance (PMI ≥ 1).</p>")
    h.append("<h2>Sample stories (newest of each category)</h2>")
    for s in data.samples:
        h.append(
            f"<div class='story'><a href='{escape(s['url'])}'>{escape(s['title'] or '')}</a> "
            f"<span class='meta'>{escape(s['published'] or '')} · "
            f"{escape(s['category'] or '')}</span><p>{escape(s['sapo'] or '')}</p></div>"
        )
    h.append("<h2>Data quality</h2><div class='grid'><div><h3>Fill rate per field</h3>")
    h.append(svg.hbars("fill-rates", "Share of articles with the field filled", data.fill,
                       percent=True, max_value=1.0))
    h.append("</div><div><h3>Failures by reason</h3>")
    if data.failures:
        h.append("<table><tr><th>reason</th><th>pages</th></tr>" + "".join(
            f"<tr><td><code>{escape(r)}</code></td><td class='n'>{n}</td></tr>"
            for r, n in data.failures) + "</table>")
    else:
        h.append("<p class='meta'>No failure recorded in the window.</p>")
    h.append("</div></div><h3>Parser versions by day of fetch</h3>")
    h.append(svg.stacked_bars("parser-versions", "Articles per parser version and day",
                              data.parser_days, data.parser_series, height=220))
    h.append("</body></html>")
    return "".join(h)


def write_report(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    *,
    db_path: str,
    since: date | None = None,
    until: date | None = None,
    queries: list[str] | None = None,
) -> ReportData:
    """Collect, render and write ``out`` (parent folders created); returns the data."""
    data = collect(con, db_path=db_path, since=since, until=until, queries=queries)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(out)
    return data


__all__ = ["FILL_FIELDS", "ReportData", "collect", "render", "write_report"]
