-- The articles with their times as Vietnam wall-clock TIMESTAMPs (no time zone), which
-- every client (duckdb CLI, Python, DBeaver, `baotintuc query`) shows the same way,
-- whatever its session TimeZone. The *_at columns stay instants (TIMESTAMPTZ).
create or replace view articles_vn as
select
    *,
    published_at at time zone 'Asia/Ho_Chi_Minh' as published_vn,
    (published_at at time zone 'Asia/Ho_Chi_Minh')::date as published_date,
    modified_at at time zone 'Asia/Ho_Chi_Minh' as modified_vn,
    first_seen_at at time zone 'Asia/Ho_Chi_Minh' as first_seen_vn,
    fetched_at at time zone 'Asia/Ho_Chi_Minh' as fetched_vn
from articles
