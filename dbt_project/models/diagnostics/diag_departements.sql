with

unemployment as (
    select
        area_code,
        unemployment_rate_pct,
        quarter_label,
        year_change_points
    from {{ ref('fct_unemployment') }}
    where area_type = 'departement' and is_latest
)

select
    departements.departement_code,
    departements.name,
    departements.region_code,
    departements.region_name,
    departements.is_overseas,
    unemployment.unemployment_rate_pct as unemployment__rate_pct,
    unemployment.quarter_label as unemployment__quarter,
    unemployment.year_change_points as unemployment__year_change_points,
    false as synthetic,
    case when unemployment.unemployment_rate_pct is not null then 'departement' end
        as unemployment__level
from {{ ref('dim_departement') }} as departements
left join unemployment
    on departements.departement_code = unemployment.area_code
