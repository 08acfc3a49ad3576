-- One record per ROME 4.0 fiche x each of the 101 départements, key "<dep>:<rome>".
-- Blocks are flat column groups (<block>__<field>); a block inherited from a coarser
-- level says so in <block>__level. Unknown is NULL, never a sentinel.
with

fiches as (
    select
        job_group_code,
        label
    from {{ ref('dim_job_group') }}
),

departements as (
    select
        departement_code,
        name,
        region_code
    from {{ ref('dim_departement') }}
),

market as (
    select * from {{ ref('int_market__job_group_departement') }}
),

tension as (
    select * from {{ ref('fct_market_tension') }}
),

hiring as (
    select needs.*
    from {{ ref('fct_hiring_needs') }} as needs
    where
        needs.survey_year
        = (select max(latest.survey_year) from {{ ref('fct_hiring_needs') }} as latest)
),

trend as (
    select distinct
        job_group_code,
        departement_code,
        last_12_months_count,
        previous_12_months_count,
        change_percent,
        observed_last_12_months_count,
        coverage_end_date,
        is_synthetic
    from {{ ref('fct_offers_trend') }}
),

active_months as (
    select
        job_group_code,
        {{ ordered_list('month_number', 'month_number') }} as active_months
    from {{ ref('int_offers__active_months') }}
    where is_active
    group by job_group_code
),

seasonality_known as (
    select distinct job_group_code
    from {{ ref('int_offers__active_months') }}
),

salary_candidates as (
    select
        departements.departement_code,
        salaries.job_group_code,
        salaries.territory_type,
        salaries.reference_year,
        salaries.median_monthly_gross_eur,
        salaries.q1_monthly_gross_eur,
        salaries.q3_monthly_gross_eur,
        salaries.is_synthetic,
        row_number() over (
            partition by departements.departement_code, salaries.job_group_code
            order by
                case salaries.territory_type
                    when 'departement' then 1 when 'region' then 2 else 3
                end,
                salaries.reference_year desc
        ) as preference
    from departements
    inner join {{ ref('fct_salary') }} as salaries
        on
            (
                salaries.territory_type = 'departement'
                and departements.departement_code = salaries.territory_code
            )
            or (
                salaries.territory_type = 'region'
                and departements.region_code = salaries.territory_code
            )
            or salaries.territory_type = 'france'
    where salaries.median_monthly_gross_eur is not null
),

salary as (
    select * from salary_candidates
    where preference = 1
),

contracts as (
    select
        job_group_code,
        departement_code,
        max(case when contract_type = 'CDI' then share_pct end) as cdi_pct,
        max(case when contract_type = 'CDI' then share_pct_shrunk end) as cdi_pct_shrunk,
        max(case when contract_type = 'CDI' then interval_80_low_pct end) as cdi_low,
        max(case when contract_type = 'CDI' then interval_80_high_pct end) as cdi_high,
        max(case when contract_type = 'CDI' then confidence_level end) as cdi_confidence,
        max(case when contract_type = 'CDD' then share_pct end) as cdd_pct,
        max(case when contract_type = 'CDD' then share_pct_shrunk end) as cdd_pct_shrunk,
        max(case when contract_type = 'CDD' then interval_80_low_pct end) as cdd_low,
        max(case when contract_type = 'CDD' then interval_80_high_pct end) as cdd_high,
        max(case when contract_type = 'CDD' then confidence_level end) as cdd_confidence,
        max(case when contract_type = 'MIS' then share_pct end) as interim_pct,
        max(case when contract_type = 'MIS' then share_pct_shrunk end) as interim_pct_shrunk,
        max(case when contract_type = 'MIS' then interval_80_low_pct end) as interim_low,
        max(case when contract_type = 'MIS' then interval_80_high_pct end) as interim_high,
        max(case when contract_type = 'MIS' then confidence_level end) as interim_confidence,
        max(estimate_level) as estimate_level,
        max(prior_level) as prior_level,
        max(case when is_synthetic then 1 else 0 end) = 1 as is_synthetic
    from {{ ref('fct_contract_mix') }}
    group by job_group_code, departement_code
),

unemployment as (
    select
        area_code as departement_code,
        unemployment_rate_pct,
        quarter_label,
        year_change_points
    from {{ ref('fct_unemployment') }}
    where area_type = 'departement' and is_latest
),

less_stressful as (
    select
        job_group_code,
        departement_code,
        {{ ordered_list(make_struct([
            ('job_group_code', 'target_job_group_code'),
            ('label', 'target_label'),
            ('mobility_type', 'mobility_type'),
            ('offers_per_10_job_seekers_shrunk', 'target_offers_per_10_job_seekers_shrunk'),
            ('confidence_level', 'target_confidence_level'),
            ('market_level', 'target_market_level')
        ]), 'suggestion_rank') }} as job_groups,
        count(*) as job_groups_count,
        max(case when is_synthetic then 1 else 0 end) = 1 as is_synthetic
    from {{ ref('fct_less_stressful_job_groups') }}
    group by job_group_code, departement_code
),

rome_version as (
    select max(rome_version) as rome_version from {{ ref('dim_job_group') }}
)

select
    {{ dbt.concat(['departements.departement_code', "':'", 'fiches.job_group_code']) }}
        as diagnosis_key,
    departements.departement_code,
    fiches.job_group_code,
    fiches.label as job_group_label,
    departements.name as departement_name,
    departements.region_code,

    market.market_level as market__level,
    market.prior_level as market__prior_level,
    market.source_job_group_code as market__source_job_group_code,
    market.offers_per_10_job_seekers as market__offers_per_10_job_seekers,
    market.offers_per_10_job_seekers_shrunk as market__offers_per_10_job_seekers_shrunk,
    market.interval_80_low as market__interval_80__low,
    market.interval_80_high as market__interval_80__high,
    market.confidence_level as market__confidence,
    market.effective_sample_size as market__effective_sample_size,
    market.job_seekers_avg as market__job_seekers_avg,
    market.offers_count as market__offers_count,
    market.hires_count as market__hires_count,
    market.departement_rank as market__departement_rank,
    market.departements_ranked_count as market__departements_ranked_count,
    market.easier_departements_count as market__easier_departements_count,
    market.job_seekers_in_tighter_market_pct as market__job_seekers_in_tighter_market_pct,
    market.region_offers_per_10_job_seekers as market__region_offers_per_10_job_seekers,
    market.national_offers_per_10_job_seekers as market__national_offers_per_10_job_seekers,
    market.last_quarter_start_date as market__last_quarter_start_date,

    tension.dares_tension_level as tension__level,
    tension.dares_tension_index as tension__dares_index,
    tension.dares_tension_class as tension__dares_class,
    tension.dares_tension_year as tension__dares_year,
    tension.difficult_hiring_pct as tension__difficult_hiring_pct,
    tension.difficult_hiring_year as tension__difficult_hiring_year,

    case when hiring.job_group_code is not null then 'departement' end as hiring__level,
    hiring.survey_year as hiring__survey_year,
    hiring.recruitment_projects as hiring__recruitment_projects,
    hiring.published_recruitment_projects as hiring__published_recruitment_projects,
    hiring.masked_cells_count as hiring__masked_cells_count,
    hiring.difficult_pct as hiring__difficult_pct,
    hiring.difficult_pct_shrunk as hiring__difficult_pct_shrunk,
    hiring.difficult_interval_80_low_pct as hiring__difficult_interval_80__low_pct,
    hiring.difficult_interval_80_high_pct as hiring__difficult_interval_80__high_pct,
    hiring.difficult_confidence_level as hiring__difficult_confidence,
    hiring.difficult_estimate_level as hiring__difficult_level,
    hiring.difficult_prior_level as hiring__difficult_prior_level,
    hiring.seasonal_pct as hiring__seasonal_pct,
    hiring.seasonal_pct_shrunk as hiring__seasonal_pct_shrunk,
    hiring.seasonal_interval_80_low_pct as hiring__seasonal_interval_80__low_pct,
    hiring.seasonal_interval_80_high_pct as hiring__seasonal_interval_80__high_pct,
    hiring.seasonal_confidence_level as hiring__seasonal_confidence,
    hiring.seasonal_estimate_level as hiring__seasonal_level,
    hiring.seasonal_prior_level as hiring__seasonal_prior_level,

    case when trend.job_group_code is not null then 'departement' end as offers_trend__level,
    trend.last_12_months_count as offers_trend__last_12_months_count,
    trend.previous_12_months_count as offers_trend__previous_12_months_count,
    trend.change_percent as offers_trend__change_percent,
    trend.observed_last_12_months_count as offers_trend__observed_last_12_months_count,
    trend.coverage_end_date as offers_trend__last_month_start_date,
    case
        when seasonality_known.job_group_code is not null
            then coalesce(active_months.active_months, {{ empty_int_list() }})
    end as offers_trend__active_months,
    case when seasonality_known.job_group_code is not null then 'france' else 'unknown' end
        as offers_trend__active_months_level,

    salary.territory_type as salary__level,
    salary.reference_year as salary__reference_year,
    salary.q1_monthly_gross_eur as salary__q1_monthly_gross_eur,
    salary.median_monthly_gross_eur as salary__median_monthly_gross_eur,
    salary.q3_monthly_gross_eur as salary__q3_monthly_gross_eur,

    contracts.estimate_level as contract_mix__level,
    contracts.prior_level as contract_mix__prior_level,
    contracts.cdi_pct as contract_mix__cdi_pct,
    contracts.cdi_pct_shrunk as contract_mix__cdi_pct_shrunk,
    contracts.cdi_low as contract_mix__cdi_interval_80__low_pct,
    contracts.cdi_high as contract_mix__cdi_interval_80__high_pct,
    contracts.cdi_confidence as contract_mix__cdi_confidence,
    contracts.cdd_pct as contract_mix__cdd_pct,
    contracts.cdd_pct_shrunk as contract_mix__cdd_pct_shrunk,
    contracts.cdd_low as contract_mix__cdd_interval_80__low_pct,
    contracts.cdd_high as contract_mix__cdd_interval_80__high_pct,
    contracts.cdd_confidence as contract_mix__cdd_confidence,
    contracts.interim_pct as contract_mix__interim_pct,
    contracts.interim_pct_shrunk as contract_mix__interim_pct_shrunk,
    contracts.interim_low as contract_mix__interim_interval_80__low_pct,
    contracts.interim_high as contract_mix__interim_interval_80__high_pct,
    contracts.interim_confidence as contract_mix__interim_confidence,

    case when unemployment.unemployment_rate_pct is not null then 'departement' end
        as unemployment__level,
    unemployment.unemployment_rate_pct as unemployment__rate_pct,
    unemployment.quarter_label as unemployment__quarter,
    unemployment.year_change_points as unemployment__year_change_points,

    market.market_level as less_stressful__level,
    less_stressful.job_groups as less_stressful__job_groups,
    {{ dbt.cast(
        'case when market.job_group_code is not null '
        ~ 'then coalesce(less_stressful.job_groups_count, 0) end',
        dbt.type_int()
    ) }} as less_stressful__count,

    rome_version.rome_version as sources__rome_version,
    hiring.survey_year as sources__bmo_survey_year,
    market.last_quarter_start_date as sources__market_last_quarter_start_date,
    tension.dares_tension_year as sources__dares_tension_year,
    trend.coverage_end_date as sources__offers_last_month_start_date,
    unemployment.quarter_label as sources__unemployment_quarter,

    coalesce(market.is_synthetic, false)
    or coalesce(trend.is_synthetic, false)
    or coalesce(salary.is_synthetic, false)
    or coalesce(contracts.is_synthetic, false)
    or coalesce(less_stressful.is_synthetic, false)
    or seasonality_known.job_group_code is not null
    or tension.difficult_hiring_pct is not null as synthetic
from fiches
cross join departements
cross join rome_version
left join market
    on
        fiches.job_group_code = market.job_group_code
        and departements.departement_code = market.departement_code
left join tension
    on
        fiches.job_group_code = tension.job_group_code
        and departements.departement_code = tension.departement_code
left join hiring
    on
        fiches.job_group_code = hiring.job_group_code
        and departements.departement_code = hiring.departement_code
left join trend
    on
        fiches.job_group_code = trend.job_group_code
        and departements.departement_code = trend.departement_code
left join active_months
    on fiches.job_group_code = active_months.job_group_code
left join seasonality_known
    on fiches.job_group_code = seasonality_known.job_group_code
left join salary
    on
        fiches.job_group_code = salary.job_group_code
        and departements.departement_code = salary.departement_code
left join contracts
    on
        fiches.job_group_code = contracts.job_group_code
        and departements.departement_code = contracts.departement_code
left join unemployment
    on departements.departement_code = unemployment.departement_code
left join less_stressful
    on
        fiches.job_group_code = less_stressful.job_group_code
        and departements.departement_code = less_stressful.departement_code
