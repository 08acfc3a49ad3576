with

regions as (
    select * from {{ ref('stg_etalab_decoupage_administratif__regions') }}
    -- The 18 régions only: COM pseudo-régions (zone com) stay in staging.
    where zone in ('metro', 'drom')
),

departements_per_region as (
    select
        region_code,
        count(*) as departements_count
    from {{ ref('dim_departement') }}
    group by region_code
)

select
    regions.region_code,
    regions.name,
    regions.chef_lieu_code,
    regions.zone,
    regions.zone = 'drom' as is_overseas,
    {{ dbt.cast('coalesce(departements_per_region.departements_count, 0)', dbt.type_int()) }}
        as departements_count
from regions
left join departements_per_region
    on regions.region_code = departements_per_region.region_code
