-- Articles published per Vietnam calendar day and category (days without articles of a
-- category are absent; join a calendar to fill them).
create or replace view daily_category_counts as
select
    (published_at at time zone 'Asia/Ho_Chi_Minh')::date as day,
    category,
    category_id,
    count(*) as articles
from articles
where published_at is not null
group by all
