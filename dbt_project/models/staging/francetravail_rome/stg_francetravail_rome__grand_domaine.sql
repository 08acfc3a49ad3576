with

source as (
    select * from {{ source('francetravail_rome', 'grand_domaine') }}
),

renamed as (
    select
        {{ clean_text('code_grand_domaine') }} as grand_domain_code,
        {{ clean_text('libelle_grand_domaine') }} as label,
        {{ clean_text('rome_version') }} as rome_version,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank(['grand_domain_code', 'label', 'rome_version']) }} as duplicate_rank
    from renamed
)

select
    grand_domain_code,
    label,
    rome_version,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
