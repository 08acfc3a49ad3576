-- Market block of a fiche x département ($job_group_code, $departement_code, $region_code):
-- int_market__job_group_departement <- int_market__api_cells (DEP, REG, NAT cells of the
-- code whose cell gave the values) <- the API's quarterly DE_1 / OFF_1 / EMB_1 rows.
with

market as (
    select *
    from {{ ref('int_market__job_group_departement') }}
    where job_group_code = $job_group_code and departement_code = $departement_code
),

code as (
    select coalesce(max(source_job_group_code), $job_group_code) as activity_code
    from market
),

api_cells as (
    select api.*
    from {{ ref('int_market__api_cells') }} as api
    inner join code on api.job_group_code = code.activity_code
    where
        (api.territory_type = 'DEP' and api.territory_code = $departement_code)
        or (api.territory_type = 'REG' and api.territory_code = $region_code)
        or api.territory_type = 'NAT'
),

window_start as (
    select min(first_quarter_start_date) as first_quarter_start_date
    from api_cells
    where territory_type = 'DEP'
)

select
    'step' as kind,
    'int_market__job_group_departement' as relation,
    to_json(market) as payload
from market
union all
select
    'step' as kind,
    'int_market__api_cells' as relation,
    to_json(api_cells) as payload
from api_cells
union all
select
    'cell' as kind,
    'francetravail_marche_travail.indicators' as relation,
    json_object(
        'file', i._source_file, 'row', i._row_number, 'columns', ['value', 'value_masked'],
        'label', concat_ws(' ', i.indicator_code, i.activity_code, i.territory_type,
            i.territory_code, i.period_code)
    ) as payload
from {{ ref('stg_francetravail_marche_travail__indicators') }} as i
inner join code on i.activity_code = code.activity_code
cross join window_start
where
    i.activity_type = 'ROME'
    and i.period_type = 'TRIMESTRE'
    and i.characteristic_type is null
    and i.indicator_code in ('DE_1', 'OFF_1', 'EMB_1')
    and i.territory_type = 'DEP'
    and i.territory_code = $departement_code
    and i.period_start_date >= window_start.first_quarter_start_date
