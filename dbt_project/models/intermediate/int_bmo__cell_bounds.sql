{{ config(materialized="table") }}

-- One row per published BMO cell (survey year x bassin x métier) before the secrecy EM:
-- its key, the survey year's secrecy threshold, the total's estimate (T / 2 when masked)
-- and the bounds secrecy leaves on each count (macros/secrecy.sql). int_bmo__cells fits
-- the zero-inflated binomial on these rows. A table of its own, so that the EM's fifteen
-- steps, each of which reads the cells, read a table rather than the staging view and its
-- threshold aggregate again (a plan Spark could not finish).
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
)

select * from cells
