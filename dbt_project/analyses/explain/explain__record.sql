-- The exported record of one key of one table ($export_table, $key).
select
    'local_diagnosis' as export_table,
    to_json(t) as payload
from {{ ref('diag_local_diagnosis') }} as t
where $export_table = 'local_diagnosis' and t.diagnosis_key = $key
union all
select
    'job_group_info' as export_table,
    to_json(t) as payload
from {{ ref('diag_job_group_info') }} as t
where $export_table = 'job_group_info' and t.job_group_code = $key
union all
select
    'best_jobs_in_area' as export_table,
    to_json(t) as payload
from {{ ref('diag_best_jobs_in_area') }} as t
where $export_table = 'best_jobs_in_area' and t.best_jobs_key = $key
union all
select
    'hiring_headlines' as export_table,
    to_json(t) as payload
from {{ ref('diag_hiring_headlines') }} as t
where
    $export_table = 'hiring_headlines'
    and concat(cast(t.survey_year as varchar), ':', t.scope, ':', t.area_code) = $key
union all
select
    'departements' as export_table,
    to_json(t) as payload
from {{ ref('diag_departements') }} as t
where $export_table = 'departements' and t.departement_code = $key
union all
select
    'regions' as export_table,
    to_json(t) as payload
from {{ ref('diag_regions') }} as t
where $export_table = 'regions' and t.region_code = $key
