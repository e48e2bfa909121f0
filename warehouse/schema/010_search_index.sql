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
    pos integer[] not null
);

-- Counters of the index (unsorted_rows: postings appended since the last sort).
create table if not exists search_meta (
    key varchar primary key,
    value bigint not null
);
