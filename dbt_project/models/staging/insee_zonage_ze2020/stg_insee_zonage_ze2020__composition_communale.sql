-- One row per commune. The published regional-part code `<zone>-<région>` (0059-84) is
-- also given in the unemployment files' convention RRXX (8459), so the two can be joined.
with

source as (
    select * from {{ source('insee_zonage_ze2020', 'composition_communale') }}
),

renamed as (
    select
        upper({{ clean_text('codgeo') }}) as commune_code,
        {{ clean_text('libgeo') }} as commune_label,
        {{ clean_text('ze') }} as zone_code,
        {{ clean_text('libze') }} as zone_label,
        {{ clean_text('ze_partie_reg') }} as zone_regional_part,
        upper({{ clean_text('dep') }}) as raw_departement_code,
        {{ clean_text('reg') }} as region_code,
        {{ clean_text('zonage') }} as zoning,
        try_cast({{ clean_text('geographie_au') }} as date) as geography_date,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

conformed as (
    select
        *,
        case
            when length(raw_departement_code) = 1 then concat('0', raw_departement_code)
            else raw_departement_code
        end as departement_code,
        case
            when zone_regional_part is not null
                then concat(substr(zone_regional_part, 6, 2), substr(zone_regional_part, 3, 2))
        end as zone_part_code
    from renamed
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'commune_code', 'commune_label', 'zone_code', 'zone_label', 'zone_part_code',
            'departement_code', 'region_code', 'zoning', 'geography_date'
        ]) }} as duplicate_rank
    from conformed
)

select
    commune_code,
    commune_label,
    zone_code,
    zone_label,
    zone_part_code,
    departement_code,
    region_code,
    zoning,
    geography_date,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
