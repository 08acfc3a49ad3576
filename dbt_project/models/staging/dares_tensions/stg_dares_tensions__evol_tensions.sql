-- National tension index per FAP-2009 family and year (2011-2019 in the 2019 edition).
with

source as (
    select * from {{ source('dares_tensions', 'evol_tensions') }}
),

renamed as (
    select
        upper({{ clean_text('fap') }}) as fap_code,
        try_cast({{ clean_text('annee') }} as {{ dbt.type_int() }}) as reference_year,
        try_cast({{ clean_text('tension') }} as double) as tension_index,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank(['fap_code', 'reference_year', 'tension_index']) }} as duplicate_rank
    from renamed
)

select
    fap_code,
    reference_year,
    tension_index,
    _source_file,
    _fetched_at,
    _row_number,
    case when length(fap_code) = 5 then 'fap225' else 'fap87' end as fap_level
from ranked
where duplicate_rank = 1
