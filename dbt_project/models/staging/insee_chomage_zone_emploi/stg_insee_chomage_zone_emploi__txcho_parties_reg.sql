-- One row per regional part of an interregional zone d'emploi and quarter. A part code
-- RRXX is the share of zone 00XX lying in région RR (INSEE's convention).
with

source as (
    select * from {{ source('insee_chomage_zone_emploi', 'txcho_parties_reg') }}
),

renamed as (
    select
        {{ clean_text('zer') }} as zone_part_code,
        {{ clean_text('libzer') }} as zone_part_label,
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

derived as (
    select
        *,
        substr(zone_part_code, 1, 2) as region_code,
        concat('00', substr(zone_part_code, 3, 2)) as zone_code,
        make_date(year_number, (quarter_number - 1) * 3 + 1, 1) as quarter_start_date
    from renamed
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'zone_part_code', 'zone_part_label', 'zoning', 'quarter_label',
            'unemployment_rate_pct', 'is_masked'
        ]) }} as duplicate_rank
    from derived
)

select
    zone_part_code,
    zone_part_label,
    zone_code,
    region_code,
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
