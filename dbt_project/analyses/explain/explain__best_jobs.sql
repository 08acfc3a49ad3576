-- Best jobs of a département x scope ($departement_code, $scope): the eligible fiches of
-- int_market__job_group_departement (own data, >= 20 job seekers, medium/high confidence)
-- in the scope, best first (first 10) <- the API's DEP rows of those fiches.
with

eligible as (
    select
        market.*,
        fiches.grand_domain_code
    from {{ ref('int_market__job_group_departement') }} as market
    inner join {{ ref('dim_job_group') }} as fiches
        on market.job_group_code = fiches.job_group_code
    where
        market.departement_code = $departement_code
        and market.market_level in ('departement', 'rome_v3')
        and market.job_seekers_avg >= 20
        and market.confidence_level in ('high', 'medium')
        and ($scope = 'all' or fiches.grand_domain_code = $scope)
    order by market.offers_per_10_job_seekers_shrunk desc, market.job_group_code asc
    limit 10
),

window_start as (
    select min(api.first_quarter_start_date) as first_quarter
    from {{ ref('int_market__api_cells') }} as api
    where api.territory_type = 'DEP' and api.territory_code = $departement_code
)

select
    'step' as kind,
    'int_market__job_group_departement' as relation,
    to_json(eligible) as payload
from eligible
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
cross join window_start
where
    i.activity_code in (select source_job_group_code from eligible)
    and i.activity_type = 'ROME'
    and i.period_type = 'TRIMESTRE'
    and i.characteristic_type is null
    and i.indicator_code in ('DE_1', 'OFF_1')
    and i.territory_type = 'DEP'
    and i.territory_code = $departement_code
    and i.period_start_date >= window_start.first_quarter
