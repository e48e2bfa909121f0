"""``baotintuc search`` and the index behind it, on a warehouse of the whole mirror."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import warehouse.search as search_module
from baotintuc.text import search_key
from tests.analysis.conftest import REAL_ARTICLE, read_only, writable_copy
from tests.support import cli_env, run_cli
from warehouse.search import (
    QuerySyntaxError,
    SearchIndexError,
    make_snippet,
    match_ids,
    search,
    update_search_index,
)
from warehouse.search_syntax import And, Not, Or, Phrase, Word, parse_query


def _tokens(text: str | None) -> list[str]:
    return re.findall(r"[^\W_]+", search_key(text or ""))


def _articles(db: Path) -> list[tuple[str, str, str, str]]:
    with read_only(db) as con:
        return con.execute("select article_id, title, sapo, body_text from articles").fetchall()


def _contains_phrase(fields: tuple[str, ...], phrase: list[str]) -> bool:
    n = len(phrase)
    for text in fields:
        toks = _tokens(text)
        if any(toks[i : i + n] == phrase for i in range(len(toks) - n + 1)):
            return True
    return False


def _with_all_words(rows: list[tuple[str, str, str, str]], words: list[str]) -> set[str]:
    out = set()
    for aid, *fields in rows:
        toks = set(_tokens(" ".join(f or "" for f in fields)))
        if all(w in toks for w in words):
            out.add(aid)
    return out


# ------------------------------------------------------------------ done criteria


def test_json_search_ranks_the_real_article_first(warehouse: dict[str, Path]) -> None:
    # The mirror has no article on a new Ukrainian prime minister ("thu tuong moi
    # ukraine"); the equivalent accent-free query over an article of a real page:
    proc = run_cli(warehouse["root"], "search", "--db", str(warehouse["db"]), "--format",
                   "json", "dich ta lon chau phi tieu huy")
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert hits[0]["article_id"] == REAL_ARTICLE
    assert hits[0]["title"].startswith("Phát hiện ngăn chặn và tiêu hủy 14 tấn lợn")
    assert set(hits[0]) == {"article_id", "url", "title", "published_at", "category",
                            "score", "snippet"}
    assert hits[0]["published_at"].endswith("+07:00")
    assert hits[0]["url"].startswith("https://baotintuc.vn/")
    assert "«dịch tả lợn Châu Phi»" in hits[0]["snippet"]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "phrase",
    ['"dịch tả lợn Châu Phi"', '"tham ô tài sản"', '"TP Hồ Chí Minh"', '"xe máy điện"',
     '"bóng cười"', '"Khánh Hòa"', '"trật tự công cộng"', '"vụ án"'],
)
def test_quoted_phrase_returns_exactly_the_articles_containing_it(
    warehouse: dict[str, Path], phrase: str
) -> None:
    rows = _articles(warehouse["db"])
    words = _tokens(phrase)
    want = {aid for aid, *fields in rows if _contains_phrase(tuple(fields), words)}
    assert want, f"the mirror has no article with {phrase}"
    proc = run_cli(warehouse["root"], "search", "--db", str(warehouse["db"]), "--format",
                   "json", "--limit", "1000", phrase)
    assert proc.returncode == 0, proc.stderr
    assert {h["article_id"] for h in json.loads(proc.stdout)} == want
    # Bag of words would find more: the phrase test is doing its job.
    if phrase == '"vụ án"':
        assert _with_all_words(rows, words) >= want


# ------------------------------------------------------------------ folding and syntax


@pytest.mark.parametrize(
    ("a", "b"),
    [("dịch tả", "dich ta"), ("hoà", "hòa"), ("Đảng", "dang"), ("THỦ TỤC", "thu tuc"),
     ('"Khánh Hoà"', '"khanh hoa"'), ("Thuý", "thúy")],
)
def test_case_diacritics_and_tone_placement_do_not_matter(
    warehouse: dict[str, Path], a: str, b: str
) -> None:
    with read_only(warehouse["db"]) as con:
        found = match_ids(con, a)
        assert found == match_ids(con, b)
    assert found or a == "Thuý"


def test_words_are_anded_and_boolean_operators_combine_sets(warehouse: dict[str, Path]) -> None:
    rows = _articles(warehouse["db"])
    with read_only(warehouse["db"]) as con:
        lua, tham = match_ids(con, "lừa đảo"), match_ids(con, "tham ô")
        gia_lai = match_ids(con, '"Gia Lai"')
        assert lua == _with_all_words(rows, ["lua", "dao"])
        assert match_ids(con, "lừa đảo OR tham ô") == lua | tham
        assert match_ids(con, "lừa đảo AND tham ô") == lua & tham
        assert match_ids(con, 'lừa đảo -"Gia Lai"') == lua - gia_lai
        assert match_ids(con, 'lừa đảo NOT "Gia Lai"') == lua - gia_lai
        assert match_ids(con, '(lừa đảo OR tham ô) -"Gia Lai"') == (lua | tham) - gia_lai
        assert lua and tham and gia_lai and lua - gia_lai != lua


def test_parser_grammar() -> None:
    assert parse_query('a "b c" OR -d') == Or((And((Word("a"), Phrase("b c"))), Not(Word("d"))))
    assert parse_query("covid-19 or not") == And((Word("covid-19"), Word("or"), Word("not")))
    assert parse_query("(a OR b) c") == And((Or((Word("a"), Word("b"))), Word("c")))
    for bad in ['"open', "(a b", "a OR", "OR a", "", "   ", "a )"]:
        with pytest.raises(QuerySyntaxError):
            parse_query(bad)


@pytest.mark.parametrize(
    ("query", "message"),
    [('"unclosed', "quote"), ("-tham", "not negated"), ("(a", "parenthesis"), ("…", "letters")],
)
def test_bad_queries_fail_in_one_line(
    warehouse: dict[str, Path], query: str, message: str
) -> None:
    proc = run_cli(warehouse["root"], "search", "--db", str(warehouse["db"]), "--", query)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("baotintuc: ")
    assert message in proc.stderr


def test_unknown_words_match_nothing(warehouse: dict[str, Path]) -> None:
    with read_only(warehouse["db"]) as con:
        result = search(con, "thu tuong moi ukraine")
    assert result.total == 0 and result.hits == []
    assert "ukraine" in result.unknown_terms


# ------------------------------------------------------------------ filters and output


def test_filters_by_category_and_vietnam_days(warehouse: dict[str, Path]) -> None:
    db = str(warehouse["db"])
    proc = run_cli(warehouse["root"], "search", "--db", db, "--format", "json", "--limit", "500",
                   "--category", "phap luat", "--since", "2025-07-12", "--until", "2025-07-12",
                   "vụ")
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert hits
    assert {h["category"] for h in hits} == {"Pháp luật"}
    assert {h["published_at"][:10] for h in hits} == {"2025-07-12"}
    with read_only(warehouse["db"]) as con:
        want = con.execute(
            "select count(*) from articles where category = 'Pháp luật' and "
            "(published_at at time zone 'Asia/Ho_Chi_Minh')::date = date '2025-07-12' "
            "and list_contains(vn_tokens(title || ' ' || sapo || ' ' || body_text), 'vu')"
        ).fetchone()
    assert want is not None and len(hits) == want[0]


def test_csv_and_table_outputs(warehouse: dict[str, Path]) -> None:
    db = str(warehouse["db"])
    proc = run_cli(warehouse["root"], "search", "--db", db, "--format", "csv", "--limit", "3",
                   "xe máy điện")
    lines = proc.stdout.splitlines()
    assert lines[0] == "article_id,url,title,published_at,category,score,snippet"
    assert len(lines) == 4 and "«xe máy điện»" in proc.stdout
    table = run_cli(warehouse["root"], "search", "--db", db, "--limit", "2", "xe máy điện")
    assert table.returncode == 0
    assert "articles match 'xe máy điện'" in table.stdout and "«xe máy điện»" in table.stdout


def test_snippet_marks_phrases_as_one_and_keeps_original_text() -> None:
    text = "Thủ tướng Chính phủ đã làm việc. Sau đó, thủ   tướng thăm Hà Nội."
    snip = make_snippet(text, [["thu", "tuong"], ["ha", "noi"]], width=200)
    assert snip == "«Thủ tướng» Chính phủ đã làm việc. Sau đó, «thủ tướng» thăm «Hà Nội»."
    assert make_snippet(text, [["khong", "co"]]) == ""


def test_search_match_sql_macro_agrees_with_the_cli(warehouse: dict[str, Path]) -> None:
    with read_only(warehouse["db"]) as con:
        cli = search(con, "dịch tả lợn", limit=5)
        sql = con.execute(
            "select article_id, score from search_match('dịch tả lợn') "
            "order by score desc, article_id desc limit 5"
        ).fetchall()
    assert [h.article_id for h in cli.hits] == [r[0] for r in sql]
    assert [h.score for h in cli.hits] == pytest.approx([r[1] for r in sql], rel=1e-6)


# ------------------------------------------------------------------ index upkeep


@pytest.mark.parametrize("range_postings", [1_000_000, 3_000])
def test_incremental_update_follows_edits_new_and_deleted_articles(
    warehouse: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    range_postings: int,
) -> None:
    """(Stale postings are deleted range of terms by range of terms: here in one range,
    then in dozens.)"""
    monkeypatch.setattr(search_module, "COMPACT_RANGE_POSTINGS", range_postings)
    db = writable_copy(warehouse, tmp_path)
    with duckdb.connect(str(db)) as con:
        assert update_search_index(con).added == 0  # already current: nothing to do
        victim, newcomer, gone = con.execute(
            "select article_id from articles order by article_id limit 3"
        ).fetchall()
        con.execute(
            "update articles set body_text = 'Ngoại trưởng Zelenskyy gặp gỡ báo giới.', "
            "content_hash = 'edited' where article_id = ?", [victim[0]]
        )
        con.execute(
            "insert into articles (article_id, url, title, sapo, body_text, content_hash, "
            "first_seen_at, fetched_at, last_changed_at, published_at) select "
            "'20991231235959999', url || '?x', 'Bài mới về Zelenskyy', sapo, body_text, "
            "'new', first_seen_at, fetched_at, last_changed_at, published_at "
            "from articles where article_id = ?", [newcomer[0]]
        )
        con.execute("delete from articles where article_id = ?", [gone[0]])
        assert match_ids(con, "zelenskyy") == set()
        update = update_search_index(con, compact_unsorted_share=1.0)
        assert (update.added, update.removed) == (2, 2)  # the edit counts once each way
        assert match_ids(con, "zelenskyy") == {victim[0], "20991231235959999"}
        assert match_ids(con, '"ngoai truong zelenskyy"') == {victim[0]}
        assert gone[0] not in match_ids(con, "và")
        assert con.execute("select count(*) from search_postings where doc = ?",
                           [int(gone[0])]).fetchone() == (0,)
        postings = ("select t.term, p.doc, p.tf_title, p.tf_sapo, p.tf_body, p.pos from "
                    "search_postings p join search_terms t using (term_id) order by all")
        updated = con.execute(postings).fetchall()
        again = update_search_index(con)
        assert (again.added, again.removed, again.compacted) == (0, 0, False)
        compacted = update_search_index(con, rebuild=True)
        assert compacted.added == con.execute("select count(*) from articles").fetchone()[0]
        assert con.execute(postings).fetchall() == updated  # as if built from scratch
        assert match_ids(con, "zelenskyy") == {victim[0], "20991231235959999"}
        unsorted = con.execute(
            "select value from search_meta where key = 'unsorted_rows'"
        ).fetchone()
        assert unsorted == (0,)


def test_compaction_keeps_postings_sorted_by_term(
    warehouse: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compaction sorts range of terms by range of terms (here ~5,000 postings a range, so
    dozens of them) into a table of the postings' own definition: every posting is kept
    once, in (term_id, doc) order, and queries answer as before."""
    monkeypatch.setattr(search_module, "COMPACT_RANGE_POSTINGS", 5_000)
    db = writable_copy(warehouse, tmp_path)
    with duckdb.connect(str(db)) as con:
        definition = search_module._table_sql(con, "search_postings")
        con.execute("update articles set content_hash = content_hash || 'x' "
                    "where article_id in (select article_id from articles limit 100)")
        before = match_ids(con, "tham ô")
        result = update_search_index(con, compact_unsorted_share=1.0)
        assert not result.compacted  # (the update itself: what compaction must keep)
        postings = ("select term_id, doc, tf_title, tf_sapo, tf_body, pos "
                    "from search_postings order by all")
        updated = con.execute(postings).fetchall()
        assert len(updated) > 10 * 5_000
        con.execute("update search_meta set value = 1 where key = 'unsorted_rows'")
        result = update_search_index(con, compact_unsorted_share=0.0)
        assert result.compacted
        assert con.execute(postings).fetchall() == updated
        assert search_module._table_sql(con, "search_postings") == definition
        assert con.execute("select count(*) from duckdb_tables() "
                           "where table_name = 'search_postings_sorted'").fetchone() == (0,)
        out_of_order = con.execute(
            "select count(*) from (select (term_id, doc) as cur, lag((term_id, doc)) over () "
            "as prev from search_postings) where cur <= prev"
        ).fetchone()
        assert out_of_order == (0,)
        assert match_ids(con, "tham ô") == before


def test_compaction_runs_under_its_own_memory_cap(
    warehouse: dict[str, Path], tmp_path: Path
) -> None:
    """``search.compact_memory_limit`` caps the re-sort (not the index cap): a cap too small
    for it fails the re-sort (its transaction rolls back; the committed chunks stay, and
    the re-sort is due again), the connection gets its own limit back, and the next update
    re-sorts under a workable cap."""
    from config import SearchSettings

    db = writable_copy(warehouse, tmp_path)
    with duckdb.connect(str(db)) as con:
        con.execute("SET memory_limit = '1GB'")
        limit = con.execute("select current_setting('memory_limit')").fetchone()
        con.execute("update articles set content_hash = content_hash || 'x' "
                    "where article_id in (select article_id from articles limit 100)")
        tiny = SearchSettings(compact_memory_limit="1MB")
        with pytest.raises(duckdb.OutOfMemoryException):
            update_search_index(con, compact_unsorted_share=0.01, settings=tiny)
        after = con.execute("select current_setting('memory_limit')").fetchone()
        # (restored from DuckDB's printed value, which rounds to 0.1 MiB)
        assert after and limit and after[0].split()[1] == limit[0].split()[1]
        assert abs(float(after[0].split()[0]) - float(limit[0].split()[0])) <= 0.2
        done = update_search_index(con, compact_unsorted_share=0.01,
                                   settings=SearchSettings(compact_memory_limit="64MB"))
        assert done.compacted


def test_a_rebuild_fits_the_memory_of_a_first_build(
    warehouse: dict[str, Path], tmp_path: Path
) -> None:
    """``search --rebuild`` deletes the index, then builds it again. Without a checkpoint
    between the two, DuckDB kept the deleted rows in memory and the rebuild of these
    articles needed more than 128 MB; with it, 64 MB is enough, as for a first build."""
    db = writable_copy(warehouse, tmp_path)
    with duckdb.connect(str(db)) as con:
        postings = "select term_id, doc, tf_title, tf_sapo, tf_body, pos from search_postings"
        before = sorted(con.execute(postings).fetchall())
        done = update_search_index(con, rebuild=True, memory_limit="64MB")
        assert done.added == con.execute("select count(*) from articles").fetchone()[0]
        assert sorted(con.execute(postings).fetchall()) == before


def test_index_chunks_are_cut_by_text_length(
    warehouse: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each transaction of an index build takes about ``INDEX_CHUNK_CHARS`` characters of
    text (an article longer than that is a chunk of its own), and how the articles are cut
    into chunks changes no posting."""
    db = writable_copy(warehouse, tmp_path)
    postings = ("select t.term, p.doc, p.tf_title, p.tf_sapo, p.tf_body, p.pos "
                "from search_postings p join search_terms t using (term_id) order by all")
    chunks: list[int] = []
    fresh = search_module._fresh_chunk

    def counted(con: duckdb.DuckDBPyConnection, low: int, high: int) -> None:
        chunks.append(low)
        fresh(con, low, high)

    monkeypatch.setattr(search_module, "_fresh_chunk", counted)
    with duckdb.connect(str(db)) as con:
        whole = con.execute(postings).fetchall()
        n, longest = con.execute(
            "select count(*), max(strlen(title) + coalesce(strlen(sapo), 0) "
            "+ strlen(body_text)) from articles").fetchone()
        update_search_index(con, rebuild=True)
        assert len(chunks) == 1
        assert con.execute(postings).fetchall() == whole
        chunks.clear()
        monkeypatch.setattr(search_module, "INDEX_CHUNK_CHARS", longest // 4)
        done = update_search_index(con, rebuild=True)
        assert done.added == n
        assert n // 4 < len(chunks) <= n
        assert con.execute(postings).fetchall() == whole


def test_a_chunk_over_the_memory_cap_is_indexed_in_halves(
    warehouse: dict[str, Path], tmp_path: Path
) -> None:
    """Under a cap too small for a chunk, the chunk's transaction rolls back and its
    articles are indexed in halves (down to one article a transaction), with the same
    postings as without the cap; when one article does not fit, the error is DuckDB's."""
    db = writable_copy(warehouse, tmp_path)
    postings = ("select t.term, p.doc, p.tf_title, p.tf_sapo, p.tf_body, p.pos "
                "from search_postings p join search_terms t using (term_id) order by all")
    with duckdb.connect(str(db)) as con:
        whole = con.execute(postings).fetchall()
        done = update_search_index(con, rebuild=True, memory_limit="48MB")
        assert done.halved > 0 and done.added == con.execute(
            "select count(*) from articles").fetchone()[0]
        assert con.execute(postings).fetchall() == whole
        with pytest.raises(duckdb.OutOfMemoryException):
            update_search_index(con, rebuild=True, memory_limit="4MB")


def test_an_index_update_that_cannot_fit_leaves_the_rows_and_says_so(
    warehouse: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end-of-run refresh under a cap no article fits in: one attempt (the update
    sets its own cap, so a retry would fail the same way), one line naming the fix, and
    the stored rows untouched."""
    from config import load_settings
    from flows.batches import refresh_search_index

    db = writable_copy(warehouse, tmp_path)
    with duckdb.connect(str(db)) as con:
        con.execute("update articles set content_hash = content_hash || 'x'")
        before = con.execute("select count(*) from articles").fetchone()
    calls: list[object] = []
    real = search_module.update_search_index

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(search_module, "update_search_index", counted)
    monkeypatch.setenv("BTT_SEARCH__INDEX_MEMORY_LIMIT", "4MB")
    line = refresh_search_index(db, load_settings())
    assert line.startswith("search index NOT updated (OutOfMemoryException")
    assert line.endswith("run `baotintuc search --rebuild`") and "\n" not in line
    assert len(calls) == 1
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from articles").fetchone() == before


def test_missing_index_is_one_line_naming_the_fix(
    warehouse: dict[str, Path], tmp_path: Path
) -> None:
    db = writable_copy(warehouse, tmp_path)
    with duckdb.connect(str(db)) as con:
        con.execute("delete from search_docs")
        with pytest.raises(SearchIndexError):
            search(con, "tham ô")
        con.execute("drop table search_postings")
    proc = run_cli(warehouse["root"], "search", "--db", str(db), "tham ô")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "baotintuc search --rebuild" in proc.stderr
    assert "Traceback" not in proc.stderr


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def test_locked_warehouse_is_one_line_telling_what_to_do(
    warehouse: dict[str, Path], tmp_path: Path
) -> None:
    db = writable_copy(warehouse, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        env = cli_env(warehouse["root"]) | {"BTT_WAREHOUSE__LOCK_TIMEOUT_SECONDS": "0.5"}
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("baotintuc")), "search", "--db", str(db),
             "tham ô"], env=env, capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert f"PID {holder.pid}" in proc.stderr and "cannot be read now" in proc.stderr
