-- The folded text that search uses: each *_key is vn_key(field), the folded tokens
-- (syllables) between single spaces, e.g. ' thu tuong chinh phu '. A whole-word or phrase
-- test is then a LIKE with spaces around it:
--   where body_key like '%' || vn_key('thủ tướng') || '%'
-- (`baotintuc search` answers the same question from the search_* index tables, ranked.)
create or replace view articles_search as
select
    article_id,
    url,
    published_at,
    published_at at time zone 'Asia/Ho_Chi_Minh' as published_vn,
    category,
    category_id,
    title,
    sapo,
    vn_key(title) as title_key,
    vn_key(sapo) as sapo_key,
    vn_key(body_text) as body_key,
    vn_key(byline) as byline_key,
    vn_key(array_to_string(tags, ' | ')) as tags_key
from articles
