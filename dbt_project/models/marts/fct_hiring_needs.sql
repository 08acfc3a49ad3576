-- BMO recruitment projects per ROME 4.0 fiche x département x survey year, summed over
-- the bassins d'emploi and allocated from métiers BMO with the weights of
-- int_job_classification__bmo_to_rome (a métier's cell counts for weight x its value in
-- each fiche it leads to). Every cell counts: a masked count enters with its estimate from
-- int_bmo__cells (never 0, never dropped), and its bounds give the total's bounds. Shares
-- are estimated difficult (seasonal) projects over estimated projects, and shrunk
-- (beta-binomial toward the région then France).
with

departements as (
    select
        departement_code,
        region_code
    from {{ ref('dim_departement') }}
),

bmo as (
    select cells.*
    from {{ ref('int_bmo__cells') }} as cells
    inner join departements
        on cells.departement_code = departements.departement_code
),

allocated as (
    select
        bridge.job_group_code,
        bmo.departement_code,
        departements.region_code,
        bmo.survey_year,
        bmo.recruitment_projects_masked,
        bridge.allocation_weight * bmo.recruitment_projects as projects,
        bridge.allocation_weight * bmo.recruitment_projects_low as projects_low,
        bridge.allocation_weight * bmo.recruitment_projects_high as projects_high,
        bridge.allocation_weight * bmo.difficult_projects as difficult_events,
        bridge.allocation_weight * bmo.recruitment_projects as difficult_trials,
        bridge.allocation_weight * bmo.seasonal_projects as seasonal_events,
        bridge.allocation_weight * bmo.recruitment_projects as seasonal_trials
    from bmo
    inner join {{ ref('int_job_classification__bmo_to_rome') }} as bridge
        on
            bmo.job_nomenclature = bridge.job_nomenclature
            and bmo.bmo_job_code = bridge.bmo_job_code
    inner join departements
        on bmo.departement_code = departements.departement_code
),

cells as (
    select
        job_group_code,
        departement_code,
        region_code,
        survey_year,
        count(*) as contributing_cells_count,
        sum(case when recruitment_projects_masked then 1 else 0 end) as masked_cells_count,
        sum(projects) as projects,
        sum(projects_low) as published_projects,
        sum(projects_high) as projects_high,
        sum(difficult_events) as difficult_events,
        sum(difficult_trials) as difficult_trials,
        sum(seasonal_events) as seasonal_events,
        sum(seasonal_trials) as seasonal_trials
    from allocated
    group by job_group_code, departement_code, region_code, survey_year
),

regions as (
    select
        job_group_code,
        region_code,
        survey_year,
        sum(difficult_events) as difficult_events,
        sum(difficult_trials) as difficult_trials,
        sum(seasonal_events) as seasonal_events,
        sum(seasonal_trials) as seasonal_trials
    from cells
    group by job_group_code, region_code, survey_year
),

nation as (
    select
        job_group_code,
        survey_year,
        sum(projects) as projects,
        sum(published_projects) as published_projects,
        sum(masked_cells_count) as masked_cells_count,
        sum(difficult_events) as difficult_events,
        sum(difficult_trials) as difficult_trials,
        sum(seasonal_events) as seasonal_events,
        sum(seasonal_trials) as seasonal_trials
    from cells
    group by job_group_code, survey_year
),

joined as (
    select
        cells.*,
        {{ dbt.concat([
            'cells.job_group_code', "':'", 'cells.departement_code', "':'",
            dbt.cast('cells.survey_year', dbt.type_string())
        ]) }} as cell_id,
        regions.difficult_events as region_difficult_events,
        regions.difficult_trials as region_difficult_trials,
        regions.seasonal_events as region_seasonal_events,
        regions.seasonal_trials as region_seasonal_trials,
        nation.difficult_events as national_difficult_events,
        nation.difficult_trials as national_difficult_trials,
        nation.seasonal_events as national_seasonal_events,
        nation.seasonal_trials as national_seasonal_trials,
        nation.projects as national_projects,
        nation.published_projects as national_published_projects,
        nation.masked_cells_count as national_masked_cells_count
    from cells
    inner join regions
        on
            cells.job_group_code = regions.job_group_code
            and cells.region_code = regions.region_code
            and cells.survey_year = regions.survey_year
    inner join nation
        on
            cells.job_group_code = nation.job_group_code
            and cells.survey_year = nation.survey_year
),

difficult_input as (
    select
        cell_id,
        {{ dbt.concat(['job_group_code', "':'", dbt.cast('survey_year', dbt.type_string())]) }}
            as group_id,
        region_code,
        difficult_events as events,
        difficult_trials as exposure,
        region_difficult_events as region_events,
        region_difficult_trials as region_exposure,
        national_difficult_events as national_events,
        national_difficult_trials as national_exposure
    from joined
),

seasonal_input as (
    select
        cell_id,
        {{ dbt.concat(['job_group_code', "':'", dbt.cast('survey_year', dbt.type_string())]) }}
            as group_id,
        region_code,
        seasonal_events as events,
        seasonal_trials as exposure,
        region_seasonal_events as region_events,
        region_seasonal_trials as region_exposure,
        national_seasonal_events as national_events,
        national_seasonal_trials as national_exposure
    from joined
),

difficult as (
    {{ beta_binomial_estimates('difficult_input', region_key='region_code') }}
),

seasonal as (
    {{ beta_binomial_estimates('seasonal_input', region_key='region_code') }}
)

select
    joined.job_group_code,
    joined.departement_code,
    joined.region_code,
    {{ dbt.cast('joined.survey_year', dbt.type_int()) }} as survey_year,
    joined.projects as recruitment_projects,
    joined.published_projects as published_recruitment_projects,
    joined.projects_high as recruitment_projects_high,
    {{ dbt.cast('joined.contributing_cells_count', dbt.type_int()) }} as contributing_cells_count,
    {{ dbt.cast('joined.masked_cells_count', dbt.type_int()) }} as masked_cells_count,
    100 * difficult.raw_rate as difficult_pct,
    100 * difficult.shrunk_rate as difficult_pct_shrunk,
    100 * difficult.low_80 as difficult_interval_80_low_pct,
    100 * difficult.high_80 as difficult_interval_80_high_pct,
    difficult.effective_sample_size as difficult_effective_sample_size,
    difficult.confidence_level as difficult_confidence_level,
    -- Less than one allocated project behind the share (to 1e-9, macros/shrinkage.sql):
    -- the value is the prior.
    case
        when
            difficult.has_data and {{ count_reaches('difficult.effective_sample_size', 1) }}
            then 'departement'
        when difficult.cell_id is not null then 'prior'
    end as difficult_estimate_level,
    difficult.prior_level as difficult_prior_level,
    100 * seasonal.raw_rate as seasonal_pct,
    100 * seasonal.shrunk_rate as seasonal_pct_shrunk,
    100 * seasonal.low_80 as seasonal_interval_80_low_pct,
    100 * seasonal.high_80 as seasonal_interval_80_high_pct,
    seasonal.effective_sample_size as seasonal_effective_sample_size,
    seasonal.confidence_level as seasonal_confidence_level,
    -- Less than one allocated project behind the share (to 1e-9, macros/shrinkage.sql):
    -- the value is the prior.
    case
        when
            seasonal.has_data and {{ count_reaches('seasonal.effective_sample_size', 1) }}
            then 'departement'
        when seasonal.cell_id is not null then 'prior'
    end as seasonal_estimate_level,
    seasonal.prior_level as seasonal_prior_level,
    {{ cap_at_100(
        "100 * joined.region_difficult_events / nullif(joined.region_difficult_trials, 0)"
    ) }}
        as region_difficult_pct,
    least(
        100.0, 100 * joined.national_difficult_events / nullif(joined.national_difficult_trials, 0)
    )
        as national_difficult_pct,
    {{ cap_at_100(
        "100 * joined.region_seasonal_events / nullif(joined.region_seasonal_trials, 0)"
    ) }}
        as region_seasonal_pct,
    {{ cap_at_100(
        "100 * joined.national_seasonal_events / nullif(joined.national_seasonal_trials, 0)"
    ) }}
        as national_seasonal_pct,
    joined.national_projects as national_recruitment_projects,
    joined.national_published_projects as national_published_recruitment_projects
from joined
left join difficult
    on joined.cell_id = difficult.cell_id
left join seasonal
    on joined.cell_id = seasonal.cell_id
