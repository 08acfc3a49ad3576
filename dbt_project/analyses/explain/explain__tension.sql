-- Tension block of a fiche x département ($job_group_code, $departement_code, $region_code):
-- fct_market_tension <- int_market__rome_fap_tension <- int_job_classification__rome_to_fap
-- and DARES's tension rows; the difficult-hiring share <- the API's PERSP_2 rows.
with

families as (
    select *
    from {{ ref('int_job_classification__rome_to_fap') }}
    where job_group_code = $job_group_code
)

select
    'step' as kind,
    'fct_market_tension' as relation,
    to_json(t) as payload
from {{ ref('fct_market_tension') }} as t
where t.job_group_code = $job_group_code and t.departement_code = $departement_code
union all
select
    'step' as kind,
    'int_market__rome_fap_tension' as relation,
    to_json(f) as payload
from {{ ref('int_market__rome_fap_tension') }} as f
where
    f.job_group_code = $job_group_code
    and (
        (f.territory_type = 'departement' and f.territory_code = $departement_code)
        or (f.territory_type = 'region' and f.territory_code = $region_code)
    )
union all
select
    'step' as kind,
    'int_job_classification__rome_to_fap' as relation,
    to_json(families) as payload
from families
union all
select
    'cell' as kind,
    'dares_tensions.tensions' as relation,
    json_object(
        'file', d._source_file, 'row', d._row_number,
        'columns', ['fap', 'emploi_moyen', 'tension', 'categorie_tension'],
        'label', concat_ws(' ', d.fap_code, d.territory_type, d.territory_code)
    ) as payload
from {{ ref('stg_dares_tensions__tensions') }} as d
inner join families on d.fap_code = families.fap2009_code
where
    d.fap_level = 'fap225'
    and (
        (d.territory_type = 'departement' and d.territory_code = $departement_code)
        or (d.territory_type = 'region' and d.territory_code = $region_code)
    )
union all
select
    'cell' as kind,
    'francetravail_marche_travail.indicators' as relation,
    json_object(
        'file', i._source_file, 'row', i._row_number, 'columns', ['value'],
        'label', concat_ws(' ', i.indicator_code, i.activity_code, i.territory_type,
            i.territory_code, i.period_code)
    ) as payload
from {{ ref('stg_francetravail_marche_travail__indicators') }} as i
where
    i.indicator_code = 'PERSP_2'
    and i.activity_type = 'ROME'
    and i.activity_code = $job_group_code
    and i.territory_type = 'DEP'
    and i.territory_code = $departement_code
    and i.characteristic_type is null
