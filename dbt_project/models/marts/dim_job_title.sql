select
    job_title_code,
    label,
    short_label,
    job_group_code,
    is_principal,
    is_rarely_used,
    is_executive,
    is_regulated,
    rome_version
from {{ ref('stg_francetravail_rome__referentiel_appellation') }}
