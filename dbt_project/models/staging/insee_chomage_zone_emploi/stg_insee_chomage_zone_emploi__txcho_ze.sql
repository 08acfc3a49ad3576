-- One row per zone d'emploi and quarter. DOM zones have no rate before 2014 (NULL).
with

source as (
    select * from {{ source('insee_chomage_zone_emploi', 'txcho_ze') }}
),

renamed as (
    select
        {{ clean_text('ze') }} as zone_code,
        {{ clean_text('libze') }} as zone_label,
        {{ clean_text('reg') }} as region_code,
        {{ clean_text('libreg') }} as region_label,
        {{ clean_text('zonage') }} as zoning,
        {{ clean_text('trimestre') }} as quarter_label,
        try_cast(substr(trimestre, 1, 4) as {{ dbt.type_int() }}) as year_number,
        try_cast(substr(trimestre, 7, 1) as {{ dbt.type_int() }}) as quarter_number,
        try_cast({{ clean_text('taux_chomage') }} as double) as unemployment_rate_pct,
        coalesce(taux_chomage_masked, false) as is_masked,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

dated as (
    select
        *,
        make_date(year_number, (quarter_number - 1) * 3 + 1, 1) as quarter_start_date
    from renamed
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'zone_code', 'zone_label', 'region_code', 'region_label', 'zoning',
            'quarter_label', 'unemployment_rate_pct', 'is_masked'
        ]) }} as duplicate_rank
    from dated
)

select
    zone_code,
    zone_label,
    region_code,
    region_label,
    zoning,
    quarter_start_date,
    quarter_label,
    unemployment_rate_pct,
    is_masked,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
