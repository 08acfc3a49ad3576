-- FAP-2009 (225 families) <-> ROME v3. A family without any ROME code keeps one row with
-- rome_v3_code NULL (published as NA): it exists, it is just not reachable from ROME.
with

source as (
    select * from {{ source('dares_fap', 'fap2009_rome') }}
),

renamed as (
    select
        upper({{ clean_text('fap') }}) as fap2009_code,
        upper({{ clean_text('rome') }}) as rome_v3_code,
        {{ clean_text('intitule_rome') }} as rome_v3_label,
        {{ clean_text('nomenclature') }} as nomenclature,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank(['fap2009_code', 'rome_v3_code', 'rome_v3_label', 'nomenclature']) }}
            as duplicate_rank
    from renamed
)

select
    fap2009_code,
    rome_v3_code,
    rome_v3_label,
    nomenclature,
    _source_file,
    _fetched_at,
    _row_number,
    substr(fap2009_code, 1, 3) as fap2009_87_code,
    substr(fap2009_code, 1, 1) as domain_code
from ranked
where duplicate_rank = 1
