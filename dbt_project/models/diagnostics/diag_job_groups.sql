select
    job_group_code,
    label,
    principal_job_title,
    rome_v3_code,
    domain_code,
    domain_label,
    grand_domain_code,
    grand_domain_label,
    is_executive,
    is_regulated,
    job_titles_count,
    rome_version,
    false as synthetic
from {{ ref('dim_job_group') }}
