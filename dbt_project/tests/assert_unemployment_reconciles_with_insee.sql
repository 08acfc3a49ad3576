-- Reads several models: Dagster shows it as a check of the one it vouches for.
{{ config(meta={'dagster': {'ref': {'name': 'fct_unemployment'}}}) }}

-- The unemployment rates tremplin publishes equal INSEE's own headline for the quarter
-- (seeds/insee_published_unemployment.csv), within the row's tolerance. Returns the rows
-- that differ, or that the warehouse lacks.
with

published as (
    select * from {{ ref('insee_published_unemployment') }}
),

ours as (
    select
        area_type,
        area_code,
        quarter_label,
        unemployment_rate_pct
    from {{ ref('fct_unemployment') }}
)

select
    published.quarter_label,
    published.area_type,
    published.area_code,
    published.published_rate_pct,
    ours.unemployment_rate_pct
from published
left join ours
    on
        published.area_type = ours.area_type
        and published.area_code = ours.area_code
        and published.quarter_label = ours.quarter_label
where
    ours.unemployment_rate_pct is null
    or abs(ours.unemployment_rate_pct - published.published_rate_pct) > published.tolerance_points
