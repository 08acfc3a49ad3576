with

source as (
    select * from {{ source('francetravail_rome', 'domaine_professionnel') }}
),

renamed as (
    select
        {{ clean_text('code_domaine_professionnel') }} as domain_code,
        {{ clean_text('libelle_domaine_professionnel') }} as label,
        {{ clean_text('rome_version') }} as rome_version,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank(['domain_code', 'label', 'rome_version']) }} as duplicate_rank
    from renamed
)

select
    domain_code,
    label,
    rome_version,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
