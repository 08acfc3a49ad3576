{{ config(materialized="table") }}

-- One row per published BMO cell (survey year x bassin x métier) with, for each of its
-- three counts, the published value or an estimate when masked, and the bounds that
-- secrecy leaves: the rules are in macros/secrecy.sql. Published counts are never changed;
-- a masked count is never 0 by default.
with

projects as (
    select * from {{ ref('stg_francetravail_bmo__projects') }}
),

thresholds as (
    -- The secrecy threshold: the smallest count the survey year publishes.
    select
        survey_year,
        min(least(
            coalesce(recruitment_projects_count, 1000000000),
            coalesce(difficult_projects_count, 1000000000),
            coalesce(seasonal_projects_count, 1000000000)
        )) as secrecy_threshold
    from projects
    group by survey_year
),

cells as (
    select
        {{ dbt.concat([
            dbt.cast('projects.survey_year', dbt.type_string()), "':'",
            'projects.bassin_code', "':'", 'projects.bmo_job_code', "':'",
            dbt.cast('projects._row_number', dbt.type_string())
        ]) }} as cell_key,
        {{ dbt.concat([
            dbt.cast('projects.survey_year', dbt.type_string()), "':'", 'projects.bmo_job_code'
        ]) }} as group_key,
        projects.survey_year,
        projects.job_nomenclature,
        projects.bmo_job_code,
        projects.bmo_job_label,
        projects.region_code,
        projects.departement_code,
        projects.is_collectivite_outre_mer,
        projects.bassin_code,
        projects._source_file,
        thresholds.secrecy_threshold,
        projects.recruitment_projects_masked,
        projects.difficult_projects_masked,
        projects.seasonal_projects_masked,
        projects.recruitment_projects_count,
        projects.difficult_projects_count,
        projects.seasonal_projects_count,
        coalesce(
            {{ dbt.cast('projects.recruitment_projects_count', 'double') }},
            thresholds.secrecy_threshold / 2.0
        ) as recruitment_projects,
        coalesce(projects.recruitment_projects_count, 0) as recruitment_projects_low,
        coalesce(projects.recruitment_projects_count, thresholds.secrecy_threshold - 1)
            as recruitment_projects_high,
        coalesce(projects.difficult_projects_count, 0) as difficult_projects_low,
        coalesce(
            projects.difficult_projects_count,
            least(
                thresholds.secrecy_threshold - 1,
                coalesce(projects.recruitment_projects_count, thresholds.secrecy_threshold - 1)
            )
        ) as difficult_projects_high,
        coalesce(projects.seasonal_projects_count, 0) as seasonal_projects_low,
        coalesce(
            projects.seasonal_projects_count,
            least(
                thresholds.secrecy_threshold - 1,
                coalesce(projects.recruitment_projects_count, thresholds.secrecy_threshold - 1)
            )
        ) as seasonal_projects_high
    from projects
    inner join thresholds
        on projects.survey_year = thresholds.survey_year
),

difficult_cells as (
    select
        cell_key,
        group_key,
        recruitment_projects as trials,
        recruitment_projects_masked as trials_masked,
        {{ dbt.cast('difficult_projects_count', 'double') }} as observed,
        difficult_projects_count is not null as count_published,
        secrecy_threshold as threshold
    from cells
),

seasonal_cells as (
    select
        cell_key,
        group_key,
        recruitment_projects as trials,
        recruitment_projects_masked as trials_masked,
        {{ dbt.cast('seasonal_projects_count', 'double') }} as observed,
        seasonal_projects_count is not null as count_published,
        secrecy_threshold as threshold
    from cells
),

{{ zero_inflated_binomial_fill('difficult_cells', 'difficult') }},

{{ zero_inflated_binomial_fill('seasonal_cells', 'seasonal') }}

select
    cells.survey_year,
    cells.job_nomenclature,
    cells.bmo_job_code,
    cells.bmo_job_label,
    cells.region_code,
    cells.departement_code,
    cells.is_collectivite_outre_mer,
    cells.bassin_code,
    cells.secrecy_threshold,
    cells.recruitment_projects,
    cells.recruitment_projects_low,
    cells.recruitment_projects_high,
    cells.recruitment_projects_masked,
    difficult_filled.estimate as difficult_projects,
    cells.difficult_projects_low,
    cells.difficult_projects_high,
    cells.difficult_projects_masked,
    seasonal_filled.estimate as seasonal_projects,
    cells.seasonal_projects_low,
    cells.seasonal_projects_high,
    cells.seasonal_projects_masked,
    cells._source_file
from cells
inner join difficult_filled
    on cells.cell_key = difficult_filled.cell_key
inner join seasonal_filled
    on cells.cell_key = seasonal_filled.cell_key
