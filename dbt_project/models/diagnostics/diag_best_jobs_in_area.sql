-- Per département, the fiches with the easiest markets (highest shrunk offers per 10 job
-- seekers), overall (scope all) and per grand domaine (scope = its letter), up to 10 each.
-- Eligible: the fiche's own data in the département (market level departement or
-- rome_v3), at least 20 job seekers on average and a confidence of medium or high.
with

eligible as (
    select
        market.departement_code,
        market.job_group_code,
        fiches.label,
        fiches.grand_domain_code,
        market.offers_per_10_job_seekers_shrunk,
        market.confidence_level,
        market.market_level,
        market.is_synthetic
    from {{ ref('int_market__job_group_departement') }} as market
    inner join {{ ref('dim_job_group') }} as fiches
        on market.job_group_code = fiches.job_group_code
    where
        market.market_level in ('departement', 'rome_v3')
        and market.job_seekers_avg >= 20
        and market.confidence_level in ('high', 'medium')
),

scoped as (
    select
        'all' as scope,
        eligible.*
    from eligible
    union all
    select
        grand_domain_code as scope,
        eligible.*
    from eligible
),

ranked as (
    select
        *,
        row_number() over (
            partition by departement_code, scope
            order by offers_per_10_job_seekers_shrunk desc, job_group_code asc
        ) as place
    from scoped
)

select
    {{ dbt.concat(['departement_code', "':'", 'scope']) }} as best_jobs_key,
    departement_code,
    scope,
    {{ ordered_list(make_struct([
        ('job_group_code', 'job_group_code'),
        ('label', 'label'),
        ('offers_per_10_job_seekers_shrunk', 'offers_per_10_job_seekers_shrunk'),
        ('confidence_level', 'confidence_level'),
        ('market_level', 'market_level')
    ]), 'place') }} as job_groups,
    {{ dbt.cast('count(*)', dbt.type_int()) }} as job_groups_count,
    max(case when is_synthetic then 1 else 0 end) = 1 as synthetic
from ranked
where place <= 10
group by departement_code, scope
