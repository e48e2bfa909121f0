-- Full-text search index kept in the warehouse itself (warehouse/search.py maintains it).
--
-- Text is folded with vn_fold (case, diacritics, đ→d, old/new tone placement) and cut into
-- tokens on every character that is not a letter or a digit: Vietnamese syllables. The
-- index is an inverted file in plain tables, ranked with BM25F in SQL; no extension.

-- vn_tokens('Thủ tướng, Chính phủ') = ['thu', 'tuong', 'chinh', 'phu']
create or replace macro vn_tokens(s) as
    list_filter(regexp_split_to_array(vn_fold(s), '[^\p{L}\p{N}]+'), lambda t: t <> '');

-- vn_key('Thủ tướng, Chính phủ') = ' thu tuong chinh phu ': the folded tokens between
-- single spaces, so contains(vn_key(x), ' thu tuong ') is an exact whole-word phrase test.
create or replace macro vn_key(s) as
    ' ' || array_to_string(vn_tokens(s), ' ') || ' ';

-- One row per distinct folded token.
create table if not exists search_terms (
    term_id integer not null,
    term varchar not null
);

-- One row per indexed article: the content_hash it was indexed at (a different hash in
-- articles means the row is stale) and the length of each field in tokens.
create table if not exists search_docs (
    doc bigint not null,              -- article_id (ID17) as a number
    article_id varchar not null,
    content_hash varchar not null,
    title_len integer not null,
    sapo_len integer not null,
    body_len integer not null
);

-- Postings: how often each term occurs in each field of each article, and where (token
-- positions over title, sapo and body in that order, with a gap of one between fields so
-- that a phrase never spans two fields). Kept sorted by
-- (term_id, doc) so the zone maps of a term's row groups skip the rest of the table;
-- rows appended by incremental updates are re-sorted by compaction.
create table if not exists search_postings (
    term_id integer not null,
    doc bigint not null,
    tf_title usmallint not null,
    tf_sapo usmallint not null,
    tf_body usmallint not null,
    -- BM25F term weight before saturation: sum over fields of weight × tf / (1 - b + b ×
    -- length / mean length), with the weights, b and means of search_meta (index time,
    -- as Lucene's norms); scoring then needs no join.
    w real not null,
    pos integer[] not null
);

-- Counters of the index (unsorted_rows: postings appended since the last sort) and the
-- BM25F parameters the weights w were computed with (×1000: w_title, w_sapo, w_body, b,
-- avg_title, avg_sapo, avg_body).
create table if not exists search_meta (
    key varchar primary key,
    value bigint not null
);

-- Ranked search from SQL: every article containing all the words of q (folded), scored
-- with BM25F (field weights and b as the index was built with; k1 = 1.2), as
-- `baotintuc search` scores it; the CLI adds phrases, OR and NOT.
--   select s.score, a.title from search_match('thu tuong') s
--   join articles a using (article_id) order by s.score desc limit 10;
create or replace macro search_match(q) as table
with qt as (
    select distinct unnest(vn_tokens(q)) as term
),
ids as (
    select st.term_id from search_terms st join qt using (term)
),
p as (
    select * from search_postings where term_id in (select term_id from ids)
),
stats as (
    select greatest(any_value(value) filter (where key = 'docs'), 1)::double as n
    from search_meta
),
df as (
    select term_id, ln(1 + (stats.n - count(*) + 0.5) / (count(*) + 0.5)) as idf
    from p, stats group by term_id, stats.n
),
matched as (
    select doc from p group by doc
    having count(*) = (select count(*) from qt) and (select count(*) from qt) > 0
),
weighted as (
    select p.doc, df.idf, p.w as tfw
    from p join df using (term_id) semi join matched using (doc)
)
select doc::varchar as article_id, sum(idf * tfw * 2.2 / (1.2 + tfw)) as score
from weighted group by doc;
