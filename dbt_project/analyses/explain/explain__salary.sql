-- Salary block of a fiche x département ($job_group_code, $departement_code, $region_code):
-- fct_salary (département, région, France rows) <- the API's SAL_3 rows.
select
    'step' as kind,
    'fct_salary' as relation,
    to_json(s) as payload
from {{ ref('fct_salary') }} as s
where
    s.job_group_code = $job_group_code
    and (
        (s.territory_type = 'departement' and s.territory_code = $departement_code)
        or (s.territory_type = 'region' and s.territory_code = $region_code)
        or s.territory_type = 'france'
    )
union all
select
    'cell' as kind,
    'francetravail_marche_travail.indicators' as relation,
    json_object(
        'file', i._source_file, 'row', i._row_number, 'columns', ['value_name', 'value'],
        'label', concat_ws(' ', i.indicator_code, i.activity_code, i.territory_type,
            i.territory_code, i.period_code, i.value_name)
    ) as payload
from {{ ref('stg_francetravail_marche_travail__indicators') }} as i
where
    i.indicator_code = 'SAL_3'
    and i.activity_type = 'ROME'
    and i.activity_code = $job_group_code
    and i.characteristic_type is null
    and (
        (i.territory_type = 'DEP' and i.territory_code = $departement_code)
        or (i.territory_type = 'REG' and i.territory_code = $region_code)
        or i.territory_type = 'NAT'
    )
