-- Folded search keys: where vn_fold(title) like '%' || vn_fold('dan van') || '%'
-- or, faster, title_key like '%' || vn_fold('dân vận') || '%'.
create or replace view articles_search as
with source as (
    select * from articles
),

keyed as (
    select
        article_id,
        url,
        published_at,
        category,
        category_id,
        title,
        sapo,
        vn_fold(title) as title_key,
        vn_fold(sapo) as sapo_key,
        vn_fold(body_text) as body_key,
        vn_fold(byline) as byline_key,
        vn_fold(array_to_string(tags, ' | ')) as tags_key
    from source
)

select * from keyed
