with

source as (
    select * from {{ source('dares_fap', 'fap2021') }}
),

renamed as (
    select
        {{ clean_text('code_fap341') }} as fap341_code,
        {{ clean_text('intitule_fap341') }} as fap341_label,
        {{ clean_text('code_fap228') }} as fap228_code,
        {{ clean_text('intitule_fap228') }} as fap228_label,
        {{ clean_text('code_fap86') }} as fap86_code,
        {{ clean_text('intitule_fap86') }} as fap86_label,
        upper({{ clean_text('code_fap22') }}) as domain_code,
        {{ clean_text('intitule_fap22') }} as domain_label,
        {{ clean_text('nomenclature') }} as nomenclature,
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
            'fap86_label', 'domain_code', 'domain_label', 'nomenclature'
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
    domain_code,
    domain_label,
    nomenclature,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
