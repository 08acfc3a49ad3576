-- A few valid keys of one table ($export_table), for the error message of an unknown key.
select key from (
    select diagnosis_key as key from {{ ref('diag_local_diagnosis') }}
    where $export_table = 'local_diagnosis' order by key limit 3
)
union all
select key from (
    select job_group_code as key from {{ ref('diag_job_group_info') }}
    where $export_table = 'job_group_info' order by key limit 3
)
union all
select key from (
    select best_jobs_key as key from {{ ref('diag_best_jobs_in_area') }}
    where $export_table = 'best_jobs_in_area' order by key limit 3
)
union all
select key from (
    select concat(cast(survey_year as varchar), ':', scope, ':', area_code) as key
    from {{ ref('diag_hiring_headlines') }}
    where $export_table = 'hiring_headlines' order by key limit 3
)
union all
select key from (
    select departement_code as key from {{ ref('diag_departements') }}
    where $export_table = 'departements' order by key limit 3
)
union all
select key from (
    select region_code as key from {{ ref('diag_regions') }}
    where $export_table = 'regions' order by key limit 3
)
