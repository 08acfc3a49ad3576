-- The FAP-2021 tree: one row per 341-level family with its 228, 86 and 22-level parents
-- (codes nest by prefix).
with

source as (
    select * from {{ source('dares_fap2021_rome', 'fap2021_tree') }}
),

renamed as (
    select
        {{ clean_text('fap341_code') }} as fap341_code,
        {{ clean_text('fap341_label') }} as fap341_label,
        {{ clean_text('fap228_code') }} as fap228_code,
        {{ clean_text('fap228_label') }} as fap228_label,
        {{ clean_text('fap86_code') }} as fap86_code,
        {{ clean_text('fap86_label') }} as fap86_label,
        upper({{ clean_text('fap22_code') }}) as fap22_code,
        {{ clean_text('fap22_label') }} as fap22_label,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'fap341_code', 'fap341_label', 'fap228_code', 'fap228_label', 'fap86_code',
            'fap86_label', 'fap22_code', 'fap22_label'
        ]) }} as duplicate_rank
    from renamed
)

select
    fap341_code,
    fap341_label,
    fap228_code,
    fap228_label,
    fap86_code,
    fap86_label,
    fap22_code,
    fap22_label,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
