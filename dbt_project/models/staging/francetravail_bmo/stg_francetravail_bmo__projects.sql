-- Counts are integers; a secret count is NULL with its *_masked flag, never 0.
-- Keeps the collectivité d'outre-mer 978 (Saint-Martin, in the Guadeloupe bassin "Iles du
-- Nord") with is_collectivite_outre_mer = true; marts that join dim_departement drop it.
with

source as (
    select * from {{ source('francetravail_bmo', 'projects') }}
),

renamed as (
    select
        try_cast({{ clean_text('survey_year') }} as {{ dbt.type_int() }}) as survey_year,
        lower({{ clean_text('nomenclature') }}) as job_nomenclature,
        upper({{ clean_text('code_metier_bmo') }}) as bmo_job_code,
        {{ clean_text('nom_metier_bmo') }} as bmo_job_label,
        upper({{ clean_text('famille_met') }}) as job_family_code,
        {{ clean_text('lbl_fam_met') }} as job_family_label,
        upper({{ clean_text('reg') }}) as published_region_code,
        {{ clean_text('nom_reg') }} as region_name,
        upper({{ clean_text('dept') }}) as published_departement_code,
        {{ clean_text('nom_dept') }} as departement_name,
        {{ clean_text('bassin_code') }} as bassin_code,
        {{ clean_text('bassin_name') }} as bassin_name,
        try_cast({{ clean_text('bassin_year') }} as {{ dbt.type_int() }}) as bassin_year,
        try_cast({{ clean_text('met') }} as {{ dbt.type_bigint() }}) as recruitment_projects_count,
        try_cast({{ clean_text('xmet') }} as {{ dbt.type_bigint() }}) as difficult_projects_count,
        try_cast({{ clean_text('smet') }} as {{ dbt.type_bigint() }}) as seasonal_projects_count,
        coalesce(met_masked, false) as recruitment_projects_masked,
        coalesce(xmet_masked, false) as difficult_projects_masked,
        coalesce(smet_masked, false) as seasonal_projects_masked,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

conformed as (
    select
        renamed.*,
        case
            when {{ regex_full_match('renamed.published_departement_code', '^[0-9]$') }}
                then lpad(renamed.published_departement_code, 2, '0')
            else renamed.published_departement_code
        end as departement_code,
        case
            when {{ regex_full_match('renamed.published_region_code', '^[0-9]$') }}
                then lpad(renamed.published_region_code, 2, '0')
            else renamed.published_region_code
        end as region_code
    from renamed
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'survey_year', 'job_nomenclature', 'bmo_job_code', 'bmo_job_label',
            'job_family_code', 'job_family_label', 'region_code', 'region_name',
            'departement_code', 'departement_name', 'bassin_code', 'bassin_name',
            'bassin_year', 'recruitment_projects_count', 'difficult_projects_count',
            'seasonal_projects_count', 'recruitment_projects_masked',
            'difficult_projects_masked', 'seasonal_projects_masked'
        ]) }} as duplicate_rank
    from conformed
),

flagged as (
    select
        *,
        {{ regex_full_match('departement_code', '^(?:97[578]|98[4-9])$') }}
            as is_collectivite_outre_mer
    from ranked
    where duplicate_rank = 1
)

select
    survey_year,
    job_nomenclature,
    bmo_job_code,
    bmo_job_label,
    job_family_code,
    job_family_label,
    region_code,
    region_name,
    departement_code,
    departement_name,
    is_collectivite_outre_mer,
    bassin_code,
    bassin_name,
    bassin_year,
    recruitment_projects_count,
    recruitment_projects_masked,
    difficult_projects_count,
    difficult_projects_masked,
    seasonal_projects_count,
    seasonal_projects_masked,
    _source_file,
    _fetched_at,
    _row_number
from flagged
