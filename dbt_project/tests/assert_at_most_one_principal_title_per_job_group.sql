-- A ROME fiche has at most one PRINCIPALE appellation, else dim_job_group's
-- principal_job_title would pick one arbitrarily. (A fiche with none gets a NULL
-- principal_job_title, which the warn-level not_null test on dim_job_group reports.)
-- Returns the fiches with several.
select
    job_group_code,
    count(*) as principal_titles_count
from {{ ref('dim_job_title') }}
where is_principal
group by job_group_code
having count(*) > 1
