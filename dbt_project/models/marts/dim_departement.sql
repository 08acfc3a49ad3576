with

departements as (
    select * from {{ ref('stg_etalab_decoupage_administratif__departements') }}
),

regions as (
    select * from {{ ref('stg_etalab_decoupage_administratif__regions') }}
)

select
    departements.departement_code,
    departements.name,
    departements.region_code,
    regions.name as region_name,
    departements.chef_lieu_code,
    departements.zone,
    departements.zone = 'drom' as is_overseas
from departements
left join regions
    on departements.region_code = regions.region_code
-- The 101 départements only: collectivités d'outre-mer (zone com) stay in staging.
where departements.zone in ('metro', 'drom')
