-- Every known version of every article, oldest first: the stored old versions plus the
-- current row. Compare consecutive rows to study edits.
create or replace view article_history as
with old_versions as (
    select
        article_id,
        version,
        content_hash,
        title,
        sapo,
        body_text,
        byline,
        tags,
        published_at,
        modified_at,
        fetched_at,
        changed_fields as changed_in_next_version,
        false as is_current
    from article_versions
),

current_versions as (
    select
        article_id,
        version,
        content_hash,
        title,
        sapo,
        body_text,
        byline,
        tags,
        published_at,
        modified_at,
        fetched_at,
        null::varchar[] as changed_in_next_version,
        true as is_current
    from articles
)

select * from old_versions
union all
select * from current_versions
