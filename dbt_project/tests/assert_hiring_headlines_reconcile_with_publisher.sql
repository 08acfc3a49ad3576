-- Reads several models: Dagster shows it as a check of the one it vouches for.
{{ config(meta={'dagster': {'ref': {'name': 'diag_hiring_headlines'}}}) }}

-- The BMO headlines tremplin publishes agree with the publisher's own (seeds/
-- bmo_published_headlines.csv, each row citing its publication) within the row's
-- tolerance: a relative one for project counts, in points for shares. Returns the rows
-- that drift, or that the warehouse lacks.
with

published as (
    select * from {{ ref('bmo_published_headlines') }}
),

ours as (
    select * from {{ ref('diag_hiring_headlines') }}
),

compared as (
    select
        published.survey_year,
        published.scope,
        published.area_code,
        published.measure,
        published.published_value,
        published.tolerance,
        published.tolerance_unit,
        case published.measure
            when 'recruitment_projects' then ours.recruitment_projects
            when 'difficult_pct' then ours.difficult_pct
            when 'seasonal_pct' then ours.seasonal_pct
        end as our_value
    from published
    left join ours
        on
            published.survey_year = ours.survey_year
            and published.scope = ours.scope
            and published.area_code = ours.area_code
)

select *
from compared
where
    our_value is null
    or (
        tolerance_unit = 'percent'
        and abs(our_value - published_value) > tolerance / 100.0 * published_value
    )
    or (tolerance_unit = 'points' and abs(our_value - published_value) > tolerance)
    or tolerance_unit not in ('percent', 'points')
