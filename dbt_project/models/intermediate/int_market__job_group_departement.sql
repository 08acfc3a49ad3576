{{ config(materialized="table") }}

-- The market of every ROME 4.0 fiche in every département, inherited when the fiche has
-- no value of its own: its own API cell (level departement), else its ROME v3 parent's
-- (level rome_v3); a cell with no local data keeps the shrunk estimate, which is then the
-- prior alone (level prior; prior_level says whether the région's or France's).
with

fiches as (
    select
        job_group_code,
        rome_v3_code
    from {{ ref('dim_job_group') }}
),

market as (
    select * from {{ ref('fct_market_tension') }}
    where offers_per_10_job_seekers_shrunk is not null
),

candidates as (
    select
        fiches.job_group_code,
        market.departement_code,
        market.job_group_code as source_job_group_code,
        market.offers_per_10_job_seekers,
        market.offers_per_10_job_seekers_shrunk,
        market.interval_80_low,
        market.interval_80_high,
        market.confidence_level,
        market.effective_sample_size,
        market.prior_level,
        market.job_seekers_avg,
        market.offers_count,
        market.hires_count,
        market.departement_rank,
        market.departements_ranked_count,
        market.easier_departements_count,
        market.job_seekers_in_tighter_market_pct,
        market.region_offers_per_10_job_seekers,
        market.national_offers_per_10_job_seekers,
        market.last_quarter_start_date,
        market.is_synthetic,
        case when market.job_group_code = fiches.job_group_code then 1 else 2 end as preference
    from fiches
    inner join market
        on market.job_group_code in (fiches.job_group_code, fiches.rome_v3_code)
),

chosen as (
    select
        *,
        row_number() over (
            partition by job_group_code, departement_code order by preference
        ) as choice
    from candidates
)

select
    job_group_code,
    departement_code,
    source_job_group_code,
    offers_per_10_job_seekers,
    offers_per_10_job_seekers_shrunk,
    interval_80_low,
    interval_80_high,
    confidence_level,
    effective_sample_size,
    job_seekers_avg,
    offers_count,
    hires_count,
    departement_rank,
    departements_ranked_count,
    easier_departements_count,
    job_seekers_in_tighter_market_pct,
    region_offers_per_10_job_seekers,
    national_offers_per_10_job_seekers,
    last_quarter_start_date,
    is_synthetic,
    prior_level,
    case
        when offers_per_10_job_seekers is null then 'prior'
        when preference = 1 then 'departement'
        else 'rome_v3'
    end as market_level
from chosen
where choice = 1
