with

source as (
    select * from {{ source('francetravail_rome', 'type_referentiel') }}
),

renamed as (
    select
        {{ clean_text('code_type_referentiel') }} as reference_type_code,
        {{ clean_text('libelle_type_referentiel') }} as label,
        {{ clean_text('rome_version') }} as rome_version,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank(['reference_type_code', 'label', 'rome_version']) }} as duplicate_rank
    from renamed
)

select
    reference_type_code,
    label,
    rome_version,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
