-- The région ($region_code): dim_region <- Etalab régions (and its départements).
select
    'step' as kind,
    'dim_region' as relation,
    to_json(r) as payload
from {{ ref('dim_region') }} as r
where r.region_code = $region_code
union all
select
    'cell' as kind,
    'etalab_decoupage_administratif.regions' as relation,
    json_object(
        'file', s._source_file, 'row', s._row_number,
        'columns', ['code', 'nom', 'zone'], 'label', s.region_code
    ) as payload
from {{ ref('stg_etalab_decoupage_administratif__regions') }} as s
where s.region_code = $region_code
union all
select
    'cell' as kind,
    'etalab_decoupage_administratif.departements' as relation,
    json_object(
        'file', s._source_file, 'row', s._row_number,
        'columns', ['code', 'region', 'zone'], 'label', s.departement_code
    ) as payload
from {{ ref('stg_etalab_decoupage_administratif__departements') }} as s
where s.region_code = $region_code and s.zone in ('metro', 'drom')
