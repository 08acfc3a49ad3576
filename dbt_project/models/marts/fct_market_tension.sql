-- Market tension per ROME 4.0 fiche x département over the last four quarters published.
-- Grain: every fiche x each of the 101 départements (NULL where no source covers them).
-- offers per 10 job seekers = 10 x offers (sum of 4 quarters) / job seekers (mean of 4
-- quarters), raw and shrunk (gamma-Poisson toward the région then France, macro
-- gamma_poisson_estimates). Ranks: among the départements with a raw value, by the shrunk
-- value, 1 = most offers per job seeker = easiest market for a job seeker.
with

fiches as (
    select job_group_code from {{ ref('dim_job_group') }}
),

departements as (
    select
        departement_code,
        region_code
    from {{ ref('dim_departement') }}
),

api as (
    select * from {{ ref('int_market__api_cells') }}
),

api_codes as (
    select distinct job_group_code from api
),

cells as (
    select
        api_codes.job_group_code,
        departements.departement_code,
        departements.region_code,
        dep.job_seekers_avg,
        dep.offers_count,
        dep.hires_count,
        reg.job_seekers_avg as region_job_seekers_avg,
        reg.offers_count as region_offers_count,
        nat.job_seekers_avg as national_job_seekers_avg,
        nat.offers_count as national_offers_count,
        coalesce(dep.is_synthetic, reg.is_synthetic, nat.is_synthetic) as is_synthetic,
        coalesce(dep.last_quarter_start_date, nat.last_quarter_start_date)
            as last_quarter_start_date
    from api_codes
    cross join departements
    left join api as dep
        on
            api_codes.job_group_code = dep.job_group_code
            and dep.territory_type = 'DEP'
            and departements.departement_code = dep.territory_code
    left join api as reg
        on
            api_codes.job_group_code = reg.job_group_code
            and reg.territory_type = 'REG'
            and departements.region_code = reg.territory_code
    left join api as nat
        on
            api_codes.job_group_code = nat.job_group_code
            and nat.territory_type = 'NAT'
),

shrink_input as (
    select
        {{ dbt.concat(['job_group_code', "':'", 'departement_code']) }} as cell_id,
        job_group_code as group_id,
        region_code,
        offers_count as events,
        case when offers_count is not null then job_seekers_avg end as exposure,
        region_offers_count as region_events,
        region_job_seekers_avg as region_exposure,
        national_offers_count as national_events,
        national_job_seekers_avg as national_exposure
    from cells
),

estimates as (
    {{ gamma_poisson_estimates('shrink_input', region_key='region_code') }}
),

market as (
    select
        cells.*,
        estimates.effective_sample_size,
        estimates.confidence_level,
        estimates.prior_level,
        10 * estimates.raw_rate as offers_per_10_job_seekers,
        10 * estimates.shrunk_rate as offers_per_10_job_seekers_shrunk,
        10 * estimates.low_80 as interval_80_low,
        10 * estimates.high_80 as interval_80_high,
        10 * cells.region_offers_count / nullif(cells.region_job_seekers_avg, 0)
            as region_offers_per_10_job_seekers,
        10 * cells.national_offers_count / nullif(cells.national_job_seekers_avg, 0)
            as national_offers_per_10_job_seekers
    from cells
    left join estimates
        on
            {{ dbt.concat(['cells.job_group_code', "':'", 'cells.departement_code']) }}
            = estimates.cell_id
),

ranked as (
    select
        *,
        case
            when offers_per_10_job_seekers is not null
                then rank() over (
                    partition by
                        job_group_code,
                        case when offers_per_10_job_seekers is not null then 1 else 0 end
                    order by offers_per_10_job_seekers_shrunk desc nulls last
                )
        end as departement_rank,
        sum(case when offers_per_10_job_seekers is not null then 1 else 0 end)
            over (partition by job_group_code) as departements_ranked_count
    from market
),

tighter as (
    -- Job seekers of the job (ranked départements) in a market with fewer offers per job
    -- seeker than this one.
    select
        this.job_group_code,
        this.departement_code,
        100.0 * sum(
            case
                when other.offers_per_10_job_seekers_shrunk < this.offers_per_10_job_seekers_shrunk
                    then other.job_seekers_avg
                else 0
            end
        ) / nullif(sum(other.job_seekers_avg), 0) as job_seekers_in_tighter_market_pct
    from ranked as this
    inner join ranked as other
        on
            this.job_group_code = other.job_group_code
            and other.departement_rank is not null
    where this.departement_rank is not null
    group by this.job_group_code, this.departement_code
),

perspectives as (
    select
        activity_code as job_group_code,
        territory_code as departement_code,
        period_start_date,
        metric_value as difficult_hiring_pct,
        row_number() over (
            partition by activity_code, territory_code
            order by period_start_date desc nulls last
        ) as recency
    from {{ ref('stg_francetravail_marche_travail__indicators') }}
    where
        indicator_code = 'PERSP_2'
        and activity_type = 'ROME'
        and territory_type = 'DEP'
        and characteristic_type is null
        and metric_value is not null
),

dares as (
    select *
    from {{ ref('int_market__rome_fap_tension') }}
    where territory_type = 'departement'
),

dares_region as (
    -- DARES publishes no département value for some départements (all of Île-de-France):
    -- there the région's value stands, and says so (dares_tension_level = 'region').
    select *
    from {{ ref('int_market__rome_fap_tension') }}
    where territory_type = 'region'
)

select
    fiches.job_group_code,
    departements.departement_code,
    departements.region_code,
    ranked.last_quarter_start_date,
    ranked.job_seekers_avg,
    {{ dbt.cast('ranked.offers_count', dbt.type_bigint()) }} as offers_count,
    {{ dbt.cast('ranked.hires_count', dbt.type_bigint()) }} as hires_count,
    ranked.offers_per_10_job_seekers,
    ranked.offers_per_10_job_seekers_shrunk,
    ranked.interval_80_low,
    ranked.interval_80_high,
    ranked.effective_sample_size,
    ranked.confidence_level,
    ranked.prior_level,
    ranked.region_offers_per_10_job_seekers,
    ranked.national_offers_per_10_job_seekers,
    {{ dbt.cast('ranked.departement_rank', dbt.type_int()) }} as departement_rank,
    {{ dbt.cast(
        'case when ranked.departement_rank is not null then ranked.departements_ranked_count end',
        dbt.type_int()
    ) }} as departements_ranked_count,
    {{ dbt.cast('ranked.departement_rank - 1', dbt.type_int()) }} as easier_departements_count,
    tighter.job_seekers_in_tighter_market_pct,
    perspectives.difficult_hiring_pct,
    {{ dbt.cast('extract(year from perspectives.period_start_date)', dbt.type_int()) }}
        as difficult_hiring_year,
    coalesce(dares.tension_index, dares_region.tension_index) as dares_tension_index,
    {{ dbt.cast(
        'case when dares.tension_index is not null then dares.tension_class '
        ~ 'else dares_region.tension_class end',
        dbt.type_int()
    ) }} as dares_tension_class,
    coalesce(dares.reference_year, dares_region.reference_year) as dares_tension_year,
    case
        when dares.tension_index is not null then 'departement'
        when dares_region.tension_index is not null then 'region'
    end as dares_tension_level,
    coalesce(ranked.is_synthetic, perspectives.job_group_code is not null) as is_synthetic
from fiches
cross join departements
left join ranked
    on
        fiches.job_group_code = ranked.job_group_code
        and departements.departement_code = ranked.departement_code
left join tighter
    on
        fiches.job_group_code = tighter.job_group_code
        and departements.departement_code = tighter.departement_code
left join perspectives
    on
        fiches.job_group_code = perspectives.job_group_code
        and departements.departement_code = perspectives.departement_code
        and perspectives.recency = 1
left join dares
    on
        fiches.job_group_code = dares.job_group_code
        and departements.departement_code = dares.territory_code
left join dares_region
    on
        fiches.job_group_code = dares_region.job_group_code
        and departements.region_code = dares_region.territory_code
        and dares.tension_index is null
