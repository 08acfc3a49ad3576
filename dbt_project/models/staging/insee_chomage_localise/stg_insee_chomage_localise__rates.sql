-- Long form, one row per area and quarter; quarters also as their first day.
-- A NULL rate means INSEE published none (overseas areas before 2014), never 0.
-- Raw keeps every quarterly release (each one the whole series, revised): the newest
-- release that has a quarter gives its rate.
with

source as (
    select * from {{ source('insee_chomage_localise', 'rates') }}
),

renamed as (
    select
        lower({{ clean_text('area_type') }}) as area_type,
        upper({{ clean_text('area_code') }}) as published_area_code,
        {{ clean_text('published_code') }} as published_code,
        {{ clean_text('area_label') }} as area_label,
        upper({{ clean_text('quarter') }}) as quarter_label,
        try_cast({{ clean_text('rate') }} as decimal(5, 2)) as unemployment_rate_pct,
        upper({{ clean_text('vintage') }}) as vintage,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

conformed as (
    select
        area_type,
        case
            when area_type = 'france' then lower(published_area_code)
            when {{ regex_full_match('published_area_code', '^[0-9]$') }}
                then lpad(published_area_code, 2, '0')
            else published_area_code
        end as area_code,
        published_code,
        area_label,
        quarter_label,
        try_cast(substring(quarter_label, 1, 4) as {{ dbt.type_int() }}) as quarter_year,
        try_cast(substring(quarter_label, 7, 1) as {{ dbt.type_int() }}) as quarter_number,
        unemployment_rate_pct,
        vintage,
        _source_file,
        _fetched_at,
        _row_number
    from renamed
),

dated as (
    select
        *,
        make_date(quarter_year, quarter_number * 3 - 2, 1) as quarter_start_date
    from conformed
),

ranked as (
    select
        *,
        {{ duplicate_rank(
            ['area_type', 'area_code', 'published_code', 'quarter_label'],
            order_by='vintage desc, _fetched_at desc, _row_number'
        ) }} as duplicate_rank
    from dated
)

select
    area_type,
    area_code,
    published_code,
    area_label,
    quarter_label,
    quarter_year,
    quarter_number,
    quarter_start_date,
    unemployment_rate_pct,
    vintage,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
