with

source as (
    select * from {{ source('francetravail_marche_travail', 'rome_fap') }}
),

renamed as (
    select
        upper({{ clean_text('rome_code') }}) as job_group_code,
        upper({{ clean_text('fap_code') }}) as fap_code,
        cast(synthetic as boolean) as is_synthetic,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank(['job_group_code', 'fap_code']) }} as duplicate_rank
    from renamed
)

select
    job_group_code,
    fap_code,
    is_synthetic,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
