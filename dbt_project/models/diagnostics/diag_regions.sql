with

unemployment as (
    select
        area_code,
        unemployment_rate_pct,
        quarter_label,
        year_change_points
    from {{ ref('fct_unemployment') }}
    where area_type = 'region' and is_latest
)

select
    regions.region_code,
    regions.name,
    regions.is_overseas,
    regions.departements_count,
    unemployment.unemployment_rate_pct as unemployment__rate_pct,
    unemployment.quarter_label as unemployment__quarter,
    unemployment.year_change_points as unemployment__year_change_points,
    false as synthetic,
    case when unemployment.unemployment_rate_pct is not null then 'region' end
        as unemployment__level
from {{ ref('dim_region') }} as regions
left join unemployment
    on regions.region_code = unemployment.area_code
