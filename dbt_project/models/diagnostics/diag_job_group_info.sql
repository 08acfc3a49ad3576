-- One record per ROME 4.0 fiche: labels, ROME v3 parent, domain, principal job titles,
-- national market values, the départements ranked (easiest first), related fiches
-- (ROME mobility links) and the national BMO values.
with

fiches as (
    select * from {{ ref('dim_job_group') }}
),

titles as (
    select
        job_group_code,
        {{ ordered_list('label', 'is_principal desc, label, job_title_code') }} as job_titles
    from {{ ref('dim_job_title') }}
    where not coalesce(is_rarely_used, false)
    group by job_group_code
),

market as (
    select * from {{ ref('int_market__job_group_departement') }}
),

national as (
    select
        job_group_code,
        max(national_offers_per_10_job_seekers) as national_offers_per_10_job_seekers,
        max(market_level) as market_level,
        max(case when is_synthetic then 1 else 0 end) = 1 as is_synthetic
    from market
    group by job_group_code
),

ranked as (
    select
        job_group_code,
        {{ ordered_list(make_struct([
            ('departement_code', 'departement_code'),
            ('rank', 'departement_rank'),
            ('offers_per_10_job_seekers_shrunk', 'offers_per_10_job_seekers_shrunk'),
            ('confidence_level', 'confidence_level')
        ]), 'departement_rank, departement_code') }} as departements
    from market
    where departement_rank is not null
    group by job_group_code
),

related as (
    select
        from_job_group_code as job_group_code,
        {{ ordered_list(make_struct([
            ('job_group_code', 'to_job_group_code'),
            ('label', 'to_label'),
            ('order_number', 'order_number')
        ]), 'order_number') }} as related_job_groups
    from {{ ref('fct_job_group_mobility') }}
    group by from_job_group_code
),

bmo as (
    select
        needs.job_group_code,
        max(survey_year) as survey_year,
        max(needs.national_recruitment_projects) as recruitment_projects,
        max(needs.national_published_recruitment_projects) as published_recruitment_projects,
        max(needs.national_difficult_pct) as difficult_pct,
        max(needs.national_seasonal_pct) as seasonal_pct
    from {{ ref('fct_hiring_needs') }} as needs
    where
        needs.survey_year
        = (select max(latest.survey_year) from {{ ref('fct_hiring_needs') }} as latest)
    group by needs.job_group_code
)

select
    fiches.job_group_code,
    fiches.label,
    fiches.rome_v3_code,
    fiches.domain_code,
    fiches.domain_label,
    fiches.grand_domain_code,
    fiches.grand_domain_label,
    fiches.principal_job_title,
    titles.job_titles,
    national.national_offers_per_10_job_seekers as market__national_offers_per_10_job_seekers,
    ranked.departements as market__departements_ranked,
    related.related_job_groups,
    bmo.survey_year as hiring__survey_year,
    bmo.recruitment_projects as hiring__national_recruitment_projects,
    bmo.published_recruitment_projects as hiring__national_published_recruitment_projects,
    bmo.difficult_pct as hiring__national_difficult_pct,
    bmo.seasonal_pct as hiring__national_seasonal_pct,
    case when national.job_group_code is not null then 'france' end as market__level,
    case when bmo.job_group_code is not null then 'france' end as hiring__level,
    coalesce(national.is_synthetic, false) as synthetic
from fiches
left join titles
    on fiches.job_group_code = titles.job_group_code
left join national
    on fiches.job_group_code = national.job_group_code
left join ranked
    on fiches.job_group_code = ranked.job_group_code
left join related
    on fiches.job_group_code = related.job_group_code
left join bmo
    on fiches.job_group_code = bmo.job_group_code
