with

source as (
    select * from {{ source('francetravail_rome', 'rubrique_mobilite') }}
),

renamed as (
    select
        {{ clean_text('code_rome') }} as from_job_group_code,
        {{ clean_text('code_rome_cible') }} as to_job_group_code,
        try_cast({{ clean_text('numero_ordre') }} as {{ dbt.type_int() }}) as order_number,
        {{ clean_text('rome_version') }} as rome_version,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'from_job_group_code', 'to_job_group_code', 'order_number', 'rome_version'
        ]) }} as duplicate_rank
    from renamed
)

select
    from_job_group_code,
    to_job_group_code,
    order_number,
    rome_version,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
