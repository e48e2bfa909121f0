"""Full-text search over the warehouse: an inverted index in DuckDB tables, BM25F in SQL.

Why tables and not an extension or a separate engine: DuckDB's ``fts`` extension cannot be
downloaded here and its PyPI wheel pins DuckDB 1.5.5; a separate engine (tantivy) keeps a
second store beside the warehouse that must be kept in step with every load and locked
separately. Tables in the warehouse are updated in the loader's own connection, need no
extension, answer in SQL (``attention`` and researchers' own queries use the same match
sets) and measured fast enough at 100k articles (``bench/search.py``).

Index (``schema/010_search_index.sql``): ``search_terms`` (folded token → id),
``search_postings`` (term, article, tf per field, token positions; sorted by term so zone
maps skip the rest), ``search_docs`` (per article: the content_hash indexed and the field
lengths), ``search_meta`` (counters and token totals).

Writers call :func:`update_search_index` after each committed load: it re-indexes exactly
the articles whose ``content_hash`` differs from the one indexed (new, edited, deleted),
so it is idempotent and catches up after any miss.
"""

from __future__ import annotations

import logging
import math
import time
import unicodedata
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from warehouse.db import transaction
from warehouse.search_syntax import (
    And,
    Node,
    Not,
    Or,
    Phrase,
    QuerySyntaxError,
    Word,
    leaves,
    parse_query,
    positive_leaves,
)

if TYPE_CHECKING:
    from config import SearchSettings

logger = logging.getLogger(__name__)

SITE_TIMEZONE = "Asia/Ho_Chi_Minh"
INDEX_TABLES = ("search_terms", "search_docs", "search_postings", "search_meta")
MARK_OPEN, MARK_CLOSE = "«", "»"
# Characters of title, sapo and body indexed per transaction (~1,000 of the mirror's
# articles): chunks bound the token lists' memory, which grows with the text, not with
# the number of articles (the site's long reports would overflow a count of articles).
INDEX_CHUNK_CHARS = 2_500_000
COMPACT_RANGE_POSTINGS = 1_000_000


class SearchIndexError(RuntimeError):
    """The index is missing or cannot answer; the message says what to run."""


# --------------------------------------------------------------------------- index upkeep


@dataclass(slots=True)
class IndexUpdate:
    """What :func:`update_search_index` did."""

    added: int = 0
    removed: int = 0
    postings: int = 0
    compacted: bool = False
    halved: int = 0  # chunks that ran out of the memory cap and were done in halves
    seconds: float = 0.0

    def __str__(self) -> str:
        extra = ", postings re-sorted" if self.compacted else ""
        if self.halved:
            extra += f", {self.halved} chunks halved to fit the memory cap"
        return (
            f"search index: {self.added} articles indexed, {self.removed} removed, "
            f"{self.postings} postings in {self.seconds:.2f} s{extra}"
        )


def index_exists(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the index tables exist (migration 010 applied)."""
    names = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()
    }
    return all(t in names for t in INDEX_TABLES)


def _meta(con: duckdb.DuckDBPyConnection, key: str) -> int:
    row = con.execute("select value from search_meta where key = ?", [key]).fetchone()
    return int(row[0]) if row else 0


def _set_meta(con: duckdb.DuckDBPyConnection, key: str, value: int) -> None:
    con.execute(
        "insert into search_meta (key, value) values (?, ?) "
        "on conflict (key) do update set value = excluded.value",
        [key, value],
    )


def update_search_index(
    con: duckdb.DuckDBPyConnection,
    *,
    rebuild: bool = False,
    settings: SearchSettings | None = None,
    compact_unsorted_share: float | None = None,
    memory_limit: str | None = None,
) -> IndexUpdate:
    """Bring the index in line with ``articles``; call it after every committed load.

    Re-indexes the articles that are new or whose ``content_hash`` changed, drops those no
    longer in ``articles``, in one transaction on ``con`` (a read-write connection on a
    migrated warehouse, e.g. the loader's ``warehouse.db.writer``). ``rebuild`` empties
    the index first. When more than ``compact_unsorted_share`` (default: the setting) of
    the postings were appended since the last sort, the postings are re-sorted by term
    (compaction). The BM25F weights of ``settings`` (``[search]``) and the mean field
    lengths are applied at index time: a new index or a compaction takes the settings,
    incremental updates keep the parameters the index has.
    ``memory_limit`` caps DuckDB's memory while it works (default: the setting
    ``search.index_memory_limit``; uncapped, a full build of 100k articles took 3 GB, and
    DuckDB spills to disk instead); the connection's own limit is restored afterwards.
    """
    if not index_exists(con):
        raise SearchIndexError(
            "the search index tables are missing: open the warehouse read-write once "
            "(any load, or `baotintuc search --rebuild`) so migration 010 applies"
        )
    from config import SearchSettings

    cfg = settings or SearchSettings()
    started = time.perf_counter()
    result = IndexUpdate()
    share = cfg.compact_unsorted_share if compact_unsorted_share is None else (
        compact_unsorted_share)
    with _memory_limit(con, memory_limit or cfg.index_memory_limit):
        _update(con, result, rebuild, share, cfg)
    result.seconds = time.perf_counter() - started
    if result.added or result.removed:
        logger.info("%s", result)
    return result


@contextmanager
def _memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """DuckDB's memory capped at ``limit`` inside the block; the connection's own limit
    afterwards."""
    row = con.execute("select current_setting('memory_limit')").fetchone()
    con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    except BaseException:
        # A failure inside a transaction aborts it, and DuckDB refuses the SET until the
        # rollback: the error that failed the block is the one to raise (an enclosing
        # _memory_limit, outside the transaction, restores the connection's limit).
        with suppress(duckdb.TransactionException):
            if row:
                con.execute(f"SET memory_limit = '{row[0]}'")
        raise
    if row:
        con.execute(f"SET memory_limit = '{row[0]}'")


@dataclass(slots=True)
class Bm25Params:
    """Index-time BM25F parameters: field weights, b and the mean field lengths."""

    w_title: float
    w_sapo: float
    w_body: float
    b: float
    avg_title: float = 1.0
    avg_sapo: float = 1.0
    avg_body: float = 1.0

    KEYS = ("w_title", "w_sapo", "w_body", "b", "avg_title", "avg_sapo", "avg_body")

    @classmethod
    def from_settings(cls, cfg: SearchSettings) -> Bm25Params:
        return cls(cfg.title_weight, cfg.sapo_weight, cfg.body_weight, cfg.b)

    @classmethod
    def from_meta(cls, con: duckdb.DuckDBPyConnection) -> Bm25Params | None:
        rows = dict(con.execute("select key, value from search_meta").fetchall())
        if not all(k in rows for k in cls.KEYS):
            return None
        return cls(*(rows[k] / 1000 for k in cls.KEYS))

    def save(self, con: duckdb.DuckDBPyConnection) -> None:
        for key in self.KEYS:
            _set_meta(con, key, round(getattr(self, key) * 1000))

    def with_means(self, con: duckdb.DuckDBPyConnection, table: str, lens: str) -> Bm25Params:
        """These weights with the mean lengths of ``table`` (columns named by ``lens``)."""
        t, s_, b_ = (f"{lens}{x}" for x in ("title_len", "sapo_len", "body_len"))
        row = con.execute(f"select avg({t}), avg({s_}), avg({b_}) from {table}").fetchone()
        means = [max(float(v or 1), 1.0) for v in (row or (1, 1, 1))]
        return Bm25Params(self.w_title, self.w_sapo, self.w_body, self.b, *means)

    def weight_sql(self, tf: str, lens: str) -> str:
        """SQL of w from tf columns ``{tf}tf_title``… and lengths ``{lens}title_len``…"""
        parts = []
        for name, weight, avg in (("title", self.w_title, self.avg_title),
                                  ("sapo", self.w_sapo, self.avg_sapo),
                                  ("body", self.w_body, self.avg_body)):
            parts.append(f"{weight} * {tf}tf_{name} / (1 - {self.b} + {self.b} * "
                         f"{lens}{name}_len / {avg})")
        return "(" + " + ".join(parts) + ")::real"


def _update(
    con: duckdb.DuckDBPyConnection,
    result: IndexUpdate,
    rebuild: bool,
    compact_share: float,
    cfg: SearchSettings,
) -> None:
    """One transaction to drop what is stale, then one per chunk of new documents (a
    document and its postings always commit together), then one for the totals.

    Committing chunk by chunk bounds memory: DuckDB holds a transaction's appended rows
    until it commits, so indexing 100k articles in one transaction peaked near 1 GB. A run
    cut short leaves an index that is consistent document by document; the next update
    (it compares content hashes) finishes the job.
    """
    if rebuild:
        with transaction(con):
            for table in INDEX_TABLES:  # (a delete of 20M postings would hold them all)
                _recreate(con, table)
        # Dropped rows weigh on DuckDB's memory until a checkpoint: rebuilding the demo's
        # 381 articles right after deleting their index needed more than 128 MB; after a
        # checkpoint, less than 64 MB (as a first build does).
        con.execute("checkpoint")
    with transaction(con):
        con.execute(
            "create or replace temp table _stale as "
            "select d.doc from search_docs d anti join articles a "
            "on a.article_id = d.article_id and a.content_hash = d.content_hash"
        )
        result.removed = _count(con, "select count(*) from _stale")
    if result.removed:
        _remove_stale(con)
    with transaction(con):
        con.execute(
            "create or replace temp table _todo as "
            "select article_id, doc, "
            f"(sum(chars) over (order by article_id) - chars) // {INDEX_CHUNK_CHARS} as chunk "
            "from (select a.article_id, a.article_id::bigint as doc, coalesce(strlen(a.title), "
            "0) + coalesce(strlen(a.sapo), 0) + coalesce(strlen(a.body_text), 0) as chars "
            "from articles a anti join search_docs d on d.article_id = a.article_id "
            # doc::varchar must give the article_id back (an ID17 always does)
            "where try_cast(a.article_id as bigint)::varchar = a.article_id)"
        )
    result.added = _count(con, "select count(*) from _todo")
    was_empty = _count(con, "select count(*) from search_postings") == 0
    unsorted = 0 if was_empty else _meta(con, "unsorted_rows")
    params = None if was_empty else Bm25Params.from_meta(con)
    # Chunks bound the memory of the token lists (list aggregates do not spill); a chunk
    # that still needs more than the cap (unusually long articles) is done in halves.
    pending = deque(con.execute("select min(doc), max(doc) from _todo group by chunk "
                                "order by 1").fetchall())
    first = True
    while pending:
        low, high = pending.popleft()
        params_before = params  # (a chunk rolled back takes its saved means with it)
        try:
            with transaction(con):
                _fresh_chunk(con, low, high)
                if params is None:  # a new index: its first chunk's means, until compaction
                    params = Bm25Params.from_settings(cfg).with_means(
                        con, "(select len(t) as title_len, len(s) as sapo_len, len(b) as "
                        "body_len from _fresh)", "")
                    params.save(con)
                added = _index_chunk(con, params)
                if not (was_empty and first):
                    unsorted += added
                    # Committed with the chunk: a re-sort that fails later is due again.
                    _set_meta(con, "unsorted_rows", unsorted)
        except duckdb.OutOfMemoryException as err:
            halves = _halves(con, low, high)
            if halves is None:
                raise
            (logger.debug if result.halved else logger.warning)(
                "search index: a chunk of articles %d..%d needed more than the memory cap "
                "(%s); indexing it in halves", low, high, str(err).splitlines()[0])
            params = params_before
            result.halved += 1
            pending.extendleft(reversed(halves))
            continue
        first = False
        result.postings += added
    with transaction(con):
        con.execute("drop table if exists _stale")
        con.execute("drop table if exists _todo")
        total = _count(con, "select count(*) from search_postings")
        if unsorted and unsorted > compact_share * total:
            # A sort spills well: a lower cap costs no time (measured at 100k articles).
            with _memory_limit(con, cfg.compact_memory_limit):
                _compact(con, Bm25Params.from_settings(cfg))
            unsorted = 0
            result.compacted = True
        _set_meta(con, "unsorted_rows", unsorted)
        _set_meta(con, "postings", total)
        docs = con.execute(
            "select count(*), coalesce(sum(title_len), 0), coalesce(sum(sapo_len), 0), "
            "coalesce(sum(body_len), 0) from search_docs"
        ).fetchone()
        assert docs is not None
        for key, value in zip(("docs", "title_tokens", "sapo_tokens", "body_tokens"), docs,
                              strict=True):
            _set_meta(con, key, int(value))


def _remove_stale(con: duckdb.DuckDBPyConnection) -> None:
    """Delete the postings, then the documents, of the docs in temp table ``_stale``.

    A delete from the postings pins the ``doc`` column of every row group it scans until
    a checkpoint writes the deletions: one delete of 300 articles' postings from the 100k
    index (20M postings) needed 122-192 MB. So it goes range of terms by range of terms
    (the postings are sorted by term, and zone maps skip the other ranges), each range
    committed and checkpointed: 0.6 s and +70 MB under a 64 MB cap. A run cut short
    leaves the stale documents in ``search_docs`` (at their old hash), so the next update
    deletes the rest of their postings.
    """
    for where in _term_ranges(con):
        with transaction(con):
            con.execute(f"delete from search_postings p where {where} "
                        "and p.doc in (select doc from _stale)")
        con.execute("checkpoint")
    with transaction(con):
        con.execute("delete from search_docs where doc in (select doc from _stale)")


def _term_ranges(con: duckdb.DuckDBPyConnection) -> list[str]:
    """SQL conditions on ``p.term_id`` cutting the postings into ranges of terms of about
    ``COMPACT_RANGE_POSTINGS`` postings each (a term's postings are never split)."""
    out: list[str] = []
    low: int | None = None
    for (high,) in con.execute(
        "select max(term_id) from ("
        "  select term_id, sum(n) over (order by term_id) as upto"
        "  from (select term_id, count(*) as n from search_postings group by term_id))"
        "group by (upto - 1) // ? order by 1", [COMPACT_RANGE_POSTINGS]
    ).fetchall():
        above = "" if low is None else f"p.term_id > {int(low)} and "
        out.append(f"{above}p.term_id <= {int(high)}")
        low = high
    return out


def _recreate(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Empty ``table`` by dropping it and creating it again from its own definition."""
    ddl = _table_sql(con, table)
    con.execute(f"drop table {table}")
    con.execute(ddl)


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _halves(con: duckdb.DuckDBPyConnection, low: int, high: int
            ) -> list[tuple[int, int]] | None:
    """The articles of ``_todo`` with ``low <= doc <= high`` as two ranges; None for one."""
    n = _count(con, f"select count(*) from _todo where doc between {low} and {high}")
    if n < 2:
        return None
    row = con.execute(
        f"select doc from _todo where doc between {low} and {high} order by doc "
        f"limit 2 offset {n // 2 - 1}").fetchall()
    return [(low, int(row[0][0])), (int(row[1][0]), high)]


def _fresh_chunk(con: duckdb.DuckDBPyConnection, low: int, high: int) -> None:
    """Temp table ``_fresh``: the tokens of the articles of ``_todo`` with ``low <= doc <=
    high``."""
    con.execute(
        "create or replace temp table _fresh as "
        "select t.article_id, t.doc, a.content_hash, vn_tokens(a.title) as t, "
        "vn_tokens(a.sapo) as s, vn_tokens(a.body_text) as b "
        "from _todo t join articles a on a.article_id = t.article_id "
        f"where t.doc between {int(low)} and {int(high)}"
    )


def _index_chunk(con: duckdb.DuckDBPyConnection, params: Bm25Params) -> int:
    """Index the articles of temp table ``_fresh``; returns the postings added."""
    con.execute(
        """
        create or replace temp table _tok as
        with unnested as (
            select doc, 1 as field, unnest(t) as term, unnest(range(len(t))) as pos
            from _fresh
            union all
            select doc, 2, unnest(s), len(t) + 1 + unnest(range(len(s))) from _fresh
            union all
            select doc, 3, unnest(b), len(t) + len(s) + 2 + unnest(range(len(b))) from _fresh
        )
        select doc, term,
            count(*) filter (where field = 1) as tf_title,
            count(*) filter (where field = 2) as tf_sapo,
            count(*) filter (where field = 3) as tf_body,
            list(pos::integer order by pos) as pos
        from unnested group by doc, term
        """
    )
    base = _count(con, "select coalesce(max(term_id), 0) from search_terms")
    con.execute(
        f"""
        insert into search_terms (term_id, term)
        select {base} + row_number() over (order by term), term
        from (select distinct term from _tok) new_terms
        anti join search_terms using (term)
        """
    )
    con.execute(
        f"""
        insert into search_postings (term_id, doc, tf_title, tf_sapo, tf_body, w, pos)
        select st.term_id, k.doc,
            least(k.tf_title, 65535), least(k.tf_sapo, 65535), least(k.tf_body, 65535),
            {params.weight_sql("k.", "f.")}, k.pos
        from _tok k join search_terms st using (term)
        join (select doc, len(t) as title_len, len(s) as sapo_len, len(b) as body_len
              from _fresh) f on f.doc = k.doc
        order by st.term_id, k.doc
        """
    )
    added = _count(con, "select count(*) from _tok")
    con.execute(
        """
        insert into search_docs (doc, article_id, content_hash, title_len, sapo_len, body_len)
        select doc, article_id, content_hash, len(t), len(s), len(b)
        from _fresh order by doc
        """
    )
    con.execute("drop table if exists _tok")
    con.execute("drop table if exists _fresh")
    return added


def _compact(con: duckdb.DuckDBPyConnection, params: Bm25Params) -> None:
    """Rewrite the postings sorted by (term_id, doc) (row-group zone maps then skip the
    rest), with every ``w`` recomputed from ``params``' weights and today's mean lengths.

    The sorted copy is written range of terms by range of terms, each range about
    ``COMPACT_RANGE_POSTINGS`` postings, into a table made from the postings' own
    definition (migration 010), which then takes the postings' place. One sort of every
    posting, then a copy back, took +164 MB over the process at 100k articles (20M
    postings) under a 128 MB cap, and ran out of a 64 MB cap; by ranges, a sort never
    holds more than one range (+96 MB under 64 MB, and faster). It is a table of the
    database, not a temp table, so that a sort can spill to disk.
    """
    params = params.with_means(con, "search_docs", "")
    params.save(con)
    ddl = _table_sql(con, "search_postings")
    con.execute("drop table if exists search_postings_sorted")
    con.execute(ddl.replace("search_postings", "search_postings_sorted", 1))
    for where in _term_ranges(con):
        con.execute(
            "insert into search_postings_sorted "
            "select p.term_id, p.doc, p.tf_title, p.tf_sapo, p.tf_body, "
            f"{params.weight_sql('p.', 'd.')} as w, p.pos "
            "from search_postings p join search_docs d on d.doc = p.doc "
            f"where {where} order by p.term_id, p.doc"
        )
    con.execute("drop table search_postings")
    con.execute("alter table search_postings_sorted rename to search_postings")


def _table_sql(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The ``CREATE TABLE`` statement of ``table`` in the connection's database."""
    row = con.execute(
        "select sql from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'main' and table_name = ?", [table]
    ).fetchone()
    if row is None:
        raise SearchIndexError(f"the warehouse has no table {table}")
    return str(row[0])


def index_status(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """``(indexed articles, articles the index lacks or has stale)``."""
    indexed = _count(con, "select count(*) from search_docs")
    behind = _count(
        con,
        "select count(*) from articles a anti join search_docs d "
        "on a.article_id = d.article_id and a.content_hash = d.content_hash",
    )
    return indexed, behind


# --------------------------------------------------------------------------- compiling


@dataclass(slots=True)
class CompiledQuery:
    """A parsed query turned into SQL: ``matches_sql`` yields the ``doc`` of every match."""

    text: str
    tree: Node
    ctes: str
    matches_sql: str
    score_term_ids: list[int]
    highlight_terms: list[list[str]]  # the folded tokens of each positive word/phrase
    unknown_terms: list[str] = field(default_factory=list)
    # Plain AND of single known words (the common case): matched and scored in one pass.
    and_term_ids: list[int] | None = None
    # Some matches may contain no positive term (``a OR -b``): rank them too, with score 0.
    may_match_unscored: bool = False


def _fold_leaves(con: duckdb.DuckDBPyConnection, texts: Sequence[str]) -> list[list[str]]:
    """Folded tokens of each text, by the index's own macro (the same folding as the index)."""
    if not texts:
        return []
    row = con.execute(
        "select list_transform(?::varchar[], lambda x: vn_tokens(x))", [list(texts)]
    ).fetchone()
    assert row is not None
    return [list(tokens) for tokens in row[0]]


def compile_query(con: duckdb.DuckDBPyConnection, query: str) -> CompiledQuery:
    """Parse ``query`` and compile it against the index of ``con``.

    Raises:
        QuerySyntaxError: malformed query, or one with nothing but negations / no letters.
    """
    tree = parse_query(query)
    all_leaves = leaves(tree)
    folded = dict(zip(all_leaves, _fold_leaves(con, [leaf.text for leaf in all_leaves]),
                      strict=True))
    if not any(folded[leaf] for leaf in positive_leaves(tree)):
        raise QuerySyntaxError(
            "the query needs at least one word that is not negated (NOT / -), "
            "with letters or digits"
        )
    tokens = sorted({t for toks in folded.values() for t in toks})
    ids: dict[str, int] = {}
    if tokens:
        placeholders = ", ".join("?" for _ in tokens)
        ids = dict(
            con.execute(
                f"select term, term_id from search_terms where term in ({placeholders})", tokens
            ).fetchall()
        )
    unknown = [t for t in tokens if t not in ids]
    id_list = ", ".join(str(i) for i in sorted(set(ids.values()))) or "null"
    ctes: list[str] = [
        "p as materialized (select term_id, doc, w "
        f"from search_postings where term_id in ({id_list}))"
    ]
    counter = iter(range(1_000_000))

    def leaf_sql(leaf: Word | Phrase) -> str | None:
        toks = folded[leaf]
        if not toks:
            return None  # punctuation only: no constraint
        if any(t not in ids for t in toks):
            return "select doc from p where false"
        sets = " intersect ".join(
            f"select doc from p where term_id = {ids[t]}" for t in dict.fromkeys(toks)
        )
        if len(toks) == 1:
            return sets
        name = f"phrase_{next(counter)}"
        # Candidates hold every word (cheap: no positions); then token k of the phrase at
        # position x + k, for some x, joining the positions of the candidates only.
        distinct_ids = sorted({ids[t] for t in toks})
        ctes.append(
            f"{name}_c as materialized (select doc from p where term_id in "
            f"({', '.join(map(str, distinct_ids))}) group by doc "
            f"having count(*) = {len(distinct_ids)})"
        )
        joins = []
        for k, t in enumerate(toks):
            part = (
                f"(select doc, unnest(pos) - {k} as x from search_postings "
                f"where term_id = {ids[t]} and doc in (select doc from {name}_c)) a{k}"
            )
            joins.append(part if k == 0 else f"join {part} using (doc, x)")
        ctes.append(f"{name} as (select distinct a0.doc from {' '.join(joins)})")
        return f"select doc from {name}"

    universe = "select doc from search_docs"

    def node_sql(node: Node) -> str | None:
        if isinstance(node, Word | Phrase):
            return leaf_sql(node)
        if isinstance(node, Not):
            inner = node_sql(node.child)
            return None if inner is None else f"{universe} except ({inner})"
        parts = [(c, node_sql(c.child if isinstance(c, Not) else c)) for c in node.children]
        if isinstance(node, And):
            pos = [sql for c, sql in parts if sql is not None and not isinstance(c, Not)]
            neg = [sql for c, sql in parts if sql is not None and isinstance(c, Not)]
            if not pos and not neg:
                return None
            out = " intersect ".join(f"({s})" for s in pos) if pos else universe
            for s in neg:
                out = f"({out}) except ({s})"
            return out
        assert isinstance(node, Or)
        alts = [
            (f"{universe} except ({sql})" if isinstance(c, Not) else sql)
            for c, sql in parts
            if sql is not None
        ]
        return " union ".join(f"({s})" for s in alts) if alts else None

    matches = node_sql(tree)
    if matches is None:
        raise QuerySyntaxError("the query has no word with letters or digits")
    positives = positive_leaves(tree)
    score_ids = sorted({ids[t] for leaf in positives for t in folded[leaf] if t in ids})
    words = [tree] if isinstance(tree, Word) else list(tree.children) if isinstance(
        tree, And) else []
    plain_and = bool(words) and all(
        isinstance(w, Word) and len(folded[w]) == 1 and folded[w][0] in ids for w in words
    )
    return CompiledQuery(
        text=query,
        tree=tree,
        ctes=",\n".join(ctes),
        matches_sql=matches,
        score_term_ids=score_ids,
        highlight_terms=[folded[leaf] for leaf in positives if folded[leaf]],
        unknown_terms=unknown,
        and_term_ids=score_ids if plain_and else None,
        may_match_unscored=_has_negated_alternative(tree),
    )


def _has_negated_alternative(node: Node) -> bool:
    if isinstance(node, Word | Phrase):
        return False
    if isinstance(node, Not):
        return _has_negated_alternative(node.child)
    if isinstance(node, Or) and any(isinstance(c, Not) for c in node.children):
        return True
    return any(_has_negated_alternative(c) for c in node.children)


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrictions on publication day (Vietnam calendar days, inclusive) and category."""

    since: date | None = None
    until: date | None = None
    category: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.category)

    def where(self, alias: str = "a") -> tuple[str, list[Any]]:
        """SQL condition on ``articles`` (alias ``alias``) and its parameters."""
        conds: list[str] = []
        params: list[Any] = []
        local = f"({alias}.published_at at time zone '{SITE_TIMEZONE}')"
        if self.since:
            conds.append(f"{local} >= ?::timestamp")
            params.append(self.since)
        if self.until:
            conds.append(f"{local} < (?::date + 1)::timestamp")
            params.append(self.until)
        if self.category:
            # Name, as printed or folded (``phap luat``), or the numeric category id.
            conds.append(
                f"(vn_fold({alias}.category) = vn_fold(?) or {alias}.category_id::varchar = ?)"
            )
            params += [self.category, self.category]
        return (" and ".join(conds) or "true"), params


# --------------------------------------------------------------------------- searching


@dataclass(slots=True)
class SearchHit:
    article_id: str
    url: str
    title: str
    published_at: datetime | None
    category: str | None
    score: float
    snippet: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "article_id": self.article_id,
            "url": self.url,
            "title": self.title,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "category": self.category,
            "score": round(self.score, 4),
            "snippet": self.snippet,
        }


@dataclass(slots=True)
class SearchResult:
    query: str
    total: int
    hits: list[SearchHit]
    unknown_terms: list[str]


def _idf_sql(con: duckdb.DuckDBPyConnection, term_ids: list[int]) -> str:
    """``case term_id when … then idf … end`` with each term's idf as a constant."""
    if not term_ids:
        return "0.0"
    n = max(_meta(con, "docs"), 1)
    dfs = con.execute(
        "select term_id, count(*) from search_postings "
        f"where term_id in ({', '.join(map(str, term_ids))}) group by term_id"
    ).fetchall()
    whens = " ".join(
        f"when {tid} then {math.log(1 + (n - df + 0.5) / (df + 0.5))!r}" for tid, df in dfs
    )
    return f"(case p.term_id {whens} else 0.0 end)" if whens else "0.0"


def _bm25_sql(
    compiled: CompiledQuery, filters: Filters, weights: SearchSettings, idf: str
) -> str:
    """Ranked matches: ``article_id, score, total`` (``total`` = number of matches).

    BM25F with the index-time term weights ``w`` (fields weighted and length-normalised,
    see :class:`Bm25Params`), saturated once per term with ``k1`` and multiplied by the
    term's idf (constants in ``idf``). A plain AND of words is matched and scored in one
    aggregation; other queries compute the match set ``m`` with set operations first.
    """
    score_ids = ", ".join(str(i) for i in compiled.score_term_ids) or "null"
    k1 = weights.k1
    term_score = f"{idf} * p.w * ({k1} + 1) / ({k1} + p.w)"
    keep = ""
    if filters.active:
        cond, _ = filters.where("a")
        keep = (
            "semi join (select try_cast(a.article_id as bigint) as doc from articles a "
            f"where {cond}) fa on fa.doc = p.doc"
        )
    if compiled.and_term_ids is not None:
        return f"""
        with {compiled.ctes},
        scored as (
            select p.doc, sum({term_score}) as score
            from p {keep}
            group by p.doc having count(*) = {len(compiled.and_term_ids)}
        )
        select doc::varchar as article_id, score, (select count(*) from scored) as total
        from scored order by score desc, doc desc limit ?
        """
    ranked = "scored"
    if compiled.may_match_unscored:
        ranked = (
            "(select mf.doc, coalesce(s.score, 0) as score from mf "
            "left join scored s on s.doc = mf.doc)"
        )
    mf = f"select p.doc from m p {keep}" if keep else "select doc from m"
    return f"""
        with {compiled.ctes},
        m as ({compiled.matches_sql}),
        mf as materialized ({mf}),
        scored as (
            select p.doc, sum({term_score}) as score
            from p semi join mf on mf.doc = p.doc
            where p.term_id in ({score_ids})
            group by p.doc
        )
        select doc::varchar as article_id, score, (select count(*) from mf) as total
        from {ranked} r order by score desc, doc desc limit ?
    """


def check_index_ready(con: duckdb.DuckDBPyConnection) -> None:
    if not index_exists(con):
        raise SearchIndexError(
            "this warehouse has no search index yet: run `baotintuc search --rebuild` "
            "(it needs the warehouse for itself for a moment)"
        )
    if _count(con, "select count(*) from search_docs") == 0 and _count(
        con, "select count(*) from articles"
    ):
        raise SearchIndexError(
            "the search index is empty while the warehouse has articles: "
            "run `baotintuc search --rebuild`"
        )


def search(
    con: duckdb.DuckDBPyConnection,
    query: str,
    *,
    filters: Filters | None = None,
    limit: int = 20,
    settings: SearchSettings | None = None,
) -> SearchResult:
    """Ranked matches of ``query`` (see :mod:`warehouse.search_syntax`) with snippets.

    Raises:
        QuerySyntaxError: malformed query.
        SearchIndexError: no usable index in this warehouse.
    """
    from config import SearchSettings

    weights = settings or SearchSettings()
    filters = filters or Filters()
    check_index_ready(con)
    compiled = compile_query(con, query)
    _, params = filters.where("a")
    idf = _idf_sql(con, compiled.score_term_ids)
    rows = con.execute(
        _bm25_sql(compiled, filters, weights, idf), [*params, limit]
    ).fetchall()
    total = int(rows[0][2]) if rows else 0
    hits = _hydrate(con, [(str(r[0]), float(r[1])) for r in rows], compiled, weights)
    return SearchResult(query=query, total=total, hits=hits, unknown_terms=compiled.unknown_terms)


def match_ids(
    con: duckdb.DuckDBPyConnection, query: str, filters: Filters | None = None
) -> set[str]:
    """Every ``article_id`` matching ``query`` (unranked): for tests and callers who count."""
    check_index_ready(con)
    compiled = compile_query(con, query)
    cond, params = (filters or Filters()).where("a")
    rows = con.execute(
        f"with {compiled.ctes}, m as ({compiled.matches_sql}) "
        f"select a.article_id from m join articles a on a.article_id = m.doc::varchar "
        f"where {cond}",
        params,
    ).fetchall()
    return {str(r[0]) for r in rows}


def _hydrate(
    con: duckdb.DuckDBPyConnection,
    ranked: list[tuple[str, float]],
    compiled: CompiledQuery,
    weights: SearchSettings,
) -> list[SearchHit]:
    if not ranked:
        return []
    ids = [aid for aid, _ in ranked]
    placeholders = ", ".join("?" for _ in ids)
    rows = con.execute(
        "select article_id, url, title, published_at, category, sapo, body_text "
        f"from articles where article_id in ({placeholders})",
        ids,
    ).fetchall()
    by_id = {r[0]: r for r in rows}
    hits = []
    for aid, score in ranked:
        r = by_id[aid]
        text = "\n".join(t for t in (r[5], r[6]) if t)
        hits.append(
            SearchHit(
                article_id=aid,
                url=r[1],
                title=r[2] or "",
                published_at=r[3],
                category=r[4],
                score=score,
                snippet=make_snippet(text, compiled.highlight_terms, weights.snippet_chars)
                or make_snippet(r[2] or "", compiled.highlight_terms, weights.snippet_chars),
            )
        )
    return hits


# --------------------------------------------------------------------------- snippets


def _fold_char(c: str) -> str:
    """The folded form of one character (one character, or ' ' for a non-token char)."""
    if not c.isalnum():
        return " "
    s = c.lower().replace("đ", "d")
    s = "".join(x for x in unicodedata.normalize("NFD", s) if not unicodedata.combining(x))
    s = unicodedata.normalize("NFC", s)
    return s[:1] if s else " "


def _token_spans(text: str) -> list[tuple[str, int, int]]:
    """``(folded token, start, end)`` in ``text`` (offsets in the original string)."""
    folded = "".join(_fold_char(c) for c in text)  # same length as text
    spans: list[tuple[str, int, int]] = []
    start = None
    for i, c in enumerate(folded + " "):
        if c != " " and start is None:
            start = i
        elif c == " " and start is not None:
            spans.append((folded[start:i], start, i))
            start = None
    return spans


def make_snippet(text: str, terms: list[list[str]], width: int = 240) -> str:
    """An excerpt of ``text`` of about ``width`` characters around the best cluster of
    matches, each matched word or phrase wrapped in « ». Empty when nothing matches."""
    if not text or not terms:
        return ""
    spans = _token_spans(text)
    toks = [s[0] for s in spans]
    marks: list[tuple[int, int, int]] = []  # (first token, last token, which term)
    for which, seq in enumerate(terms):
        n = len(seq)
        for i in range(len(toks) - n + 1):
            if toks[i : i + n] == seq:
                marks.append((i, i + n - 1, which))
    if not marks:
        return ""
    marks.sort()
    best_start, best_score = marks[0][0], -1
    for first, _, _ in marks:
        window_end = spans[first][1] + width
        inside = {w for f, last, w in marks if f >= first and spans[last][2] <= window_end}
        if len(inside) > best_score:
            best_start, best_score = first, len(inside)
    lo = spans[best_start][1]
    # Open a little before the first match, at a word start.
    back = lo - width // 5
    lo = next((s for _, s, _ in spans if s >= back), lo) if back > 0 else 0
    hi = min(len(text), lo + width)
    if hi < len(text):
        hi = max((e for _, _, e in spans if e <= hi), default=hi)
    pieces: list[str] = []
    cursor = lo
    covered = [(spans[f][1], spans[last][2]) for f, last, _ in marks
               if spans[f][1] >= lo and spans[last][2] <= hi]
    merged: list[list[int]] = []
    for s, e in covered:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        elif merged and text[merged[-1][1]:s].isspace():
            merged[-1][1] = e  # adjacent words of the query read as one mark
        else:
            merged.append([s, e])
    for s, e in merged:
        pieces += [text[cursor:s], MARK_OPEN, text[s:e], MARK_CLOSE]
        cursor = e
    pieces.append(text[cursor:hi])
    body = " ".join("".join(pieces).split())
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else "")


__all__ = [
    "CompiledQuery",
    "Filters",
    "IndexUpdate",
    "MARK_CLOSE",
    "MARK_OPEN",
    "QuerySyntaxError",
    "SearchHit",
    "SearchIndexError",
    "SearchResult",
    "check_index_ready",
    "compile_query",
    "index_exists",
    "index_status",
    "make_snippet",
    "match_ids",
    "search",
    "update_search_index",
]
