-- One row per article and author (person names parsed from the byline), with the
-- author's position in the byline (1 = first) and the article's context.
create or replace view article_authors as
select
    article_id,
    unnest(authors) as author,
    unnest(range(1, len(authors) + 1)) as author_position,
    len(authors) as authors_in_byline,
    source,
    category,
    published_at at time zone 'Asia/Ho_Chi_Minh' as published_vn,
    (published_at at time zone 'Asia/Ho_Chi_Minh')::date as published_date,
    url,
    title
from articles
where len(authors) > 0
