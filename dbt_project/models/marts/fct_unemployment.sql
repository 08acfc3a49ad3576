-- INSEE unemployment rates (%, seasonally adjusted) per area x quarter: départements,
-- régions and France (localised rates) and zones d'emploi 2020. year_change_points =
-- rate - rate four quarters earlier (percentage points); is_latest marks the area's last
-- quarter with a published rate.
with

localised as (
    select
        area_type,
        area_code,
        area_label,
        quarter_start_date,
        {{ dbt.cast('unemployment_rate_pct', 'double') }} as unemployment_rate_pct,
        vintage
    from {{ ref('stg_insee_chomage_localise__rates') }}
),

zones as (
    select
        'zone_emploi' as area_type,
        zone_code as area_code,
        zone_label as area_label,
        quarter_start_date,
        unemployment_rate_pct,
        cast(null as {{ dbt.type_string() }}) as vintage
    from {{ ref('stg_insee_chomage_zone_emploi__txcho_ze') }}
),

rates as (
    select * from localised
    union all
    select * from zones
),

compared as (
    select
        rates.*,
        lag(rates.unemployment_rate_pct, 4) over (
            partition by rates.area_type, rates.area_code order by rates.quarter_start_date
        ) as rate_year_before,
        lag(rates.quarter_start_date, 4) over (
            partition by rates.area_type, rates.area_code order by rates.quarter_start_date
        ) as quarter_year_before,
        max(case when rates.unemployment_rate_pct is not null then rates.quarter_start_date end)
            over (
                partition by rates.area_type, rates.area_code
            ) as latest_quarter_start_date
    from rates
)

select
    area_type,
    area_code,
    area_label,
    quarter_start_date,
    {{ dbt.concat([
        dbt.cast('extract(year from quarter_start_date)', dbt.type_string()), "'-Q'",
        dbt.cast('extract(quarter from quarter_start_date)', dbt.type_string())
    ]) }} as quarter_label,
    unemployment_rate_pct,
    case
        when quarter_year_before = {{ dbt.dateadd('month', -12, 'quarter_start_date') }}
            then unemployment_rate_pct - rate_year_before
    end as year_change_points,
    quarter_start_date = latest_quarter_start_date as is_latest,
    vintage
from compared
