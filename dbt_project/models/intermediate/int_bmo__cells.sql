{{ config(materialized="table") }}

-- One row per published BMO cell (survey year x bassin x métier) with, for each of its
-- three counts, the published value or an estimate when masked, and the bounds that
-- secrecy leaves: the rules are in macros/secrecy.sql. Published counts are never changed;
-- a masked count is never 0 by default.
with

cells as (
    select * from {{ ref('int_bmo__cell_bounds') }}
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
