-- Reads several models: Dagster shows it as a check of the one it vouches for.
{{ config(meta={'dagster': {'ref': {'name': 'fct_hiring_needs'}}}) }}

-- Bridging métiers to fiches neither creates nor loses projects: per survey year, the
-- projects of fct_hiring_needs add up to those of the BMO cells it reads (cells of the
-- départements of dim_departement; the collectivité 978 is left out of both). Returns the
-- years that differ by more than a millionth.
with

cells as (
    select
        cells.survey_year,
        sum(cells.recruitment_projects) as projects
    from {{ ref('int_bmo__cells') }} as cells
    inner join {{ ref('dim_departement') }} as departements
        on cells.departement_code = departements.departement_code
    where
        cells.bmo_job_code in (
            select bridge.bmo_job_code
            from {{ ref('int_job_classification__bmo_to_rome') }} as bridge
        )
    group by cells.survey_year
),

fiches as (
    select
        survey_year,
        sum(recruitment_projects) as projects
    from {{ ref('fct_hiring_needs') }}
    group by survey_year
)

select
    cells.survey_year,
    cells.projects as cells_projects,
    fiches.projects as fiches_projects
from cells
left join fiches
    on cells.survey_year = fiches.survey_year
where fiches.projects is null or abs(fiches.projects - cells.projects) > 1e-6 * cells.projects
