-- DARES FAP-2021 <-> ROME v3 crosswalk: one row per (ROME v3 code, qualification), one
-- FAP341 family each. The qualification (France Travail code, 0-9) alone decides which
-- family a ROME code with several families goes to; there are no employment weights.
with

source as (
    select * from {{ source('dares_fap2021_rome', 'rome_qualif_fap341') }}
),

renamed as (
    select
        upper({{ clean_text('rome_code') }}) as rome_v3_code,
        {{ clean_text('rome_label') }} as rome_v3_label,
        {{ clean_text('qualification_code') }} as qualification_code,
        {{ clean_text('fap341_code') }} as fap341_code,
        {{ clean_text('fap341_label') }} as fap341_label,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'rome_v3_code', 'rome_v3_label', 'qualification_code', 'fap341_code',
            'fap341_label'
        ]) }} as duplicate_rank
    from renamed
)

select
    rome_v3_code,
    rome_v3_label,
    qualification_code,
    fap341_code,
    fap341_label,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
