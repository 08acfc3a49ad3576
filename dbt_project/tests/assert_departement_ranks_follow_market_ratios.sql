-- Ranks are consistent with ratios: within a job group, a département ranked better
-- (smaller rank) never has a lower shrunk offers-per-10-job-seekers value, ranks start at
-- 1, and only départements with a raw value are ranked. Returns the inconsistent pairs.
with

ranked as (
    select
        job_group_code,
        departement_code,
        departement_rank,
        offers_per_10_job_seekers,
        offers_per_10_job_seekers_shrunk
    from {{ ref('fct_market_tension') }}
    where departement_rank is not null
)

select
    better.job_group_code,
    better.departement_code as better_departement_code,
    worse.departement_code as worse_departement_code
from ranked as better
inner join ranked as worse
    on
        better.job_group_code = worse.job_group_code
        and better.departement_rank < worse.departement_rank
where better.offers_per_10_job_seekers_shrunk < worse.offers_per_10_job_seekers_shrunk
union all
select
    job_group_code,
    departement_code as better_departement_code,
    cast(null as {{ dbt.type_string() }}) as worse_departement_code
from {{ ref('fct_market_tension') }}
where
    (departement_rank is not null and offers_per_10_job_seekers is null)
    or departement_rank < 1
