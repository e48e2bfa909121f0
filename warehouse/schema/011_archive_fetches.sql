-- Where each archived article fetch is, recorded when its archive is loaded (or first
-- scanned by `reextract`), so that a re-extraction reads every archive once, to parse it,
-- instead of twice (a scan for each article's newest fetch, then the parse).
-- Idempotent: IF NOT EXISTS everywhere.

-- One row per archive file with a recorded list of fetches; `bytes` is the file's size
-- when it was recorded: a file of another size is scanned again.
create table if not exists archive_manifests (
    path varchar primary key,
    bytes bigint not null,
    pages integer not null,           -- complete response records in the file
    recorded_at timestamptz not null
);

-- Every article page in those files: `record` numbers the file's complete response
-- records from 0 (crawler.archive.iter_pages). No key: a backfill adds one row a page.
create table if not exists archive_fetches (
    path varchar not null,
    record integer not null,
    article_id varchar not null,
    fetched_at timestamptz not null
);
