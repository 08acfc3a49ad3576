-- Contract mix block of a fiche x département ($job_group_code, $departement_code):
-- fct_contract_mix (one row per contract type) <- the API's OFF_1 rows by contract type
-- (TYPECTR) in the département.
with

mix as (
    select *
    from {{ ref('fct_contract_mix') }}
    where job_group_code = $job_group_code and departement_code = $departement_code
),

typed as (
    select *
    from {{ ref('stg_francetravail_marche_travail__indicators') }}
    where
        indicator_code = 'OFF_1'
        and activity_type = 'ROME'
        and activity_code = $job_group_code
        and characteristic_type = 'TYPECTR'
        and period_type = 'TRIMESTRE'
)

select
    'step' as kind,
    'fct_contract_mix' as relation,
    to_json(mix) as payload
from mix
union all
select
    'cell' as kind,
    'francetravail_marche_travail.indicators' as relation,
    json_object(
        'file', i._source_file, 'row', i._row_number,
        'columns', ['characteristic_code', 'value'],
        'label', concat_ws(' ', i.indicator_code, i.activity_code, i.territory_type,
            i.territory_code, i.period_code, i.characteristic_code)
    ) as payload
from typed as i
where
    i.territory_type = 'DEP'
    and i.territory_code = $departement_code
    -- the last four quarters published (the window of fct_contract_mix)
    and i.period_start_date > (select max(period_start_date) from typed) - interval 12 month
