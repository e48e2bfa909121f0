-- One row per article and tag; tag_key is the folded tag (vn_fold), so 'Hà Nội' and
-- 'Ha Noi' count together.
create or replace view article_tags as
select
    article_id,
    unnest(tags) as tag,
    vn_fold(unnest(tags)) as tag_key,
    category,
    published_at at time zone 'Asia/Ho_Chi_Minh' as published_vn,
    (published_at at time zone 'Asia/Ho_Chi_Minh')::date as published_date,
    url,
    title
from articles
where len(tags) > 0
