-- Accounting of every URL a run discovers, and of the archive segments already loaded.
-- Idempotent: IF NOT EXISTS everywhere.

-- Which article a failure is about (NULL for feeds, listings, robots.txt, sitemaps).
alter table fetch_failures add column if not exists article_id varchar;

-- Every URL under which an article was seen (a renamed slug, a second category, a typo
-- in a feed): articles.url is the one stored, this table keeps them all.
create table if not exists article_urls (
    article_id varchar not null,
    url varchar not null,
    via varchar,                      -- rss:<slug>, listing:<key>:<page>, sitemap:…, recheck
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null,
    run_id varchar,                   -- the run that saw it last
    primary key (article_id, url)
);

-- WARC segments whose pages are in the warehouse; a segment of a killed run that is not
-- here is loaded by the next run (nothing fetched is lost, nothing loaded twice).
create table if not exists archive_segments (
    path varchar primary key,
    run_id varchar not null,
    pages integer not null,
    loaded_at timestamptz not null
);

-- The run's accounting: discovered = stored + skipped + failed, per article ID.
alter table crawl_runs add column if not exists mode varchar;
alter table crawl_runs add column if not exists stored integer;
alter table crawl_runs add column if not exists skipped integer;
alter table crawl_runs add column if not exists deferred integer;
alter table crawl_runs add column if not exists lost integer;
alter table crawl_runs add column if not exists archive_prefix varchar;
