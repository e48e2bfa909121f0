-- Core tables of the baotintuc warehouse. Idempotent: every statement is IF NOT EXISTS.
-- Timestamps are TIMESTAMPTZ (instants); sessions opened by warehouse.db show them in
-- Asia/Ho_Chi_Minh.

create table if not exists schema_migrations (
    version integer primary key,
    name varchar not null,
    checksum varchar,
    applied_at timestamptz not null default now()
);

-- Views from warehouse/views/*.sql, re-created only when their SQL changes.
create table if not exists schema_views (
    name varchar primary key,
    checksum varchar not null,
    applied_at timestamptz not null default now()
);

create table if not exists categories (
    id integer primary key,
    slug varchar,
    name varchar,
    parent_id integer,            -- 0 for a top-level category
    source varchar,               -- 'site' (crawler/site.py) or 'page' (seen in a parsed page)
    updated_at timestamptz
);

-- One row per article (ID17), the latest version seen.
create table if not exists articles (
    article_id varchar primary key,
    url varchar not null,
    title varchar,
    sapo varchar,
    body_text varchar,
    body_markdown varchar,
    byline varchar,
    authors varchar[],
    source varchar,
    published_at timestamptz,
    modified_at timestamptz,
    date_source varchar,
    date_disagreement boolean,
    category varchar,
    category_id integer,
    parent_category_id integer,
    tags varchar[],
    related_article_ids varchar[],
    word_count integer,
    kind varchar,
    video_urls varchar[],
    warnings varchar[],
    parser_version varchar,
    extractor_version varchar,
    content_hash varchar not null,
    first_seen_at timestamptz not null,
    fetched_at timestamptz not null,
    last_changed_at timestamptz not null,
    version integer not null default 1,
    run_id varchar,
    flow_run_id varchar
);

-- The images of the current version of each article, replaced as a set on every write.
create table if not exists article_images (
    article_id varchar not null,
    position integer not null,
    url varchar not null,
    caption varchar,
    credit varchar,
    flow_run_id varchar,
    primary key (article_id, position)
);

-- The previous version of an article, written each time its content_hash changes.
create table if not exists article_versions (
    article_id varchar not null,
    version integer not null,
    content_hash varchar not null,
    url varchar,
    title varchar,
    sapo varchar,
    body_text varchar,
    body_markdown varchar,
    byline varchar,
    authors varchar[],
    source varchar,
    published_at timestamptz,
    modified_at timestamptz,
    category varchar,
    category_id integer,
    parent_category_id integer,
    tags varchar[],
    kind varchar,
    video_urls varchar[],
    images struct(position integer, url varchar, caption varchar, credit varchar)[],
    parser_version varchar,
    extractor_version varchar,
    first_seen_at timestamptz,
    fetched_at timestamptz,
    last_changed_at timestamptz,
    flow_run_id varchar,              -- the run that wrote this (old) version
    replaced_at timestamptz not null, -- fetched_at of the version that replaced it
    replaced_by_hash varchar not null,
    replaced_by_flow_run_id varchar,
    changed_fields varchar[],         -- content fields that differ in the new version
    primary key (article_id, version)
);

create table if not exists crawl_runs (
    run_id varchar primary key,
    flow_run_id varchar,
    started_at timestamptz,
    finished_at timestamptz,
    base_url varchar,
    params json,
    status varchar,
    discovered integer,
    fetched integer,
    new integer,
    updated integer,
    unchanged integer,
    stale integer,
    protected integer,
    failed integer,
    rejected integer,
    requests integer,
    bytes bigint,
    duration_s double,
    message varchar,
    stats json                        -- any other counters the flow reported
);

create table if not exists fetch_failures (
    run_id varchar not null,
    url varchar,
    stage varchar,
    reason varchar,
    status integer,
    detail varchar,
    "at" timestamptz,
    flow_run_id varchar
);

create table if not exists run_quality (
    run_id varchar not null,
    field varchar not null,
    fill_rate double,
    filled integer,
    total integer,
    threshold double,
    passed boolean,
    detail json,
    primary key (run_id, field)
);
