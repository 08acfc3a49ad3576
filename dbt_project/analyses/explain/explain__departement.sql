-- The département ($departement_code): dim_departement <- Etalab départements and régions.
select
    'step' as kind,
    'dim_departement' as relation,
    to_json(d) as payload
from {{ ref('dim_departement') }} as d
where d.departement_code = $departement_code
union all
select
    'cell' as kind,
    'etalab_decoupage_administratif.departements' as relation,
    json_object(
        'file', s._source_file, 'row', s._row_number,
        'columns', ['code', 'nom', 'region', 'zone'], 'label', s.departement_code
    ) as payload
from {{ ref('stg_etalab_decoupage_administratif__departements') }} as s
where s.departement_code = $departement_code
union all
select
    'cell' as kind,
    'etalab_decoupage_administratif.regions' as relation,
    json_object(
        'file', s._source_file, 'row', s._row_number,
        'columns', ['code', 'nom'], 'label', s.region_code
    ) as payload
from {{ ref('stg_etalab_decoupage_administratif__regions') }} as s
where s.region_code = $region_code
