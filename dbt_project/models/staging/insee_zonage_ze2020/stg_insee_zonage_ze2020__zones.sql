with

source as (
    select * from {{ source('insee_zonage_ze2020', 'zones') }}
),

renamed as (
    select
        {{ clean_text('ze') }} as zone_code,
        {{ clean_text('libze') }} as zone_label,
        try_cast({{ clean_text('nb_com') }} as {{ dbt.type_int() }}) as communes_count,
        {{ clean_text('zonage') }} as zoning,
        try_cast({{ clean_text('geographie_au') }} as date) as geography_date,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'zone_code', 'zone_label', 'communes_count', 'zoning', 'geography_date'
        ]) }} as duplicate_rank
    from renamed
)

select
    zone_code,
    zone_label,
    communes_count,
    zoning,
    geography_date,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
