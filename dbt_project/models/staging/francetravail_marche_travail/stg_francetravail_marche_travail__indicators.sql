{{ config(materialized=large_staging_materialization()) }}

-- Tens of millions of rows nationally: a view on DuckDB, whose readers filter the raw
-- Parquet as they scan it, a table on Spark (macros/materializations.sql). Exact repeats
-- are ranked away only when some key hash repeats, which a clean publication never does
-- (macros/without_repeated_rows.sql). No CTE: Spark writes every CTE out as a shuffle
-- (profiles.yml).
-- Long form: the total row of a cell has no characteristic; its breakdown rows do.
-- Département codes are conformed (1 -> 01); secret values stay NULL with is_masked.
{% call without_repeated_rows([
    'indicator_code', 'activity_type', 'activity_code', 'territory_type', 'territory_code',
    'period_type', 'period_code', 'nomenclature_code', 'characteristic_type',
    'characteristic_code', 'metric_value', 'is_masked', 'value_pct', 'secondary_count'
], order_by='_fetched_at desc, _row_number') %}
    select
        upper({{ clean_text('indicator_code') }}) as indicator_code,
        upper({{ clean_text('activity_type') }}) as activity_type,
        upper({{ clean_text('activity_code') }}) as activity_code,
        {{ clean_text('activity_label') }} as activity_label,
        upper({{ clean_text('territory_type') }}) as territory_type,
        case
            when
                upper({{ clean_text('territory_type') }}) in ('DEP', 'REG')
                and length({{ clean_text('territory_code') }}) = 1
                then lpad({{ clean_text('territory_code') }}, 2, '0')
            else upper({{ clean_text('territory_code') }})
        end as territory_code,
        {{ clean_text('territory_label') }} as territory_label,
        upper({{ clean_text('period_type') }}) as period_type,
        upper({{ clean_text('period_code') }}) as period_code,
        try_cast({{ clean_text('period_start') }} as date) as period_start_date,
        {{ clean_text('nomenclature_code') }} as nomenclature_code,
        {{ clean_text('nomenclature_label') }} as nomenclature_label,
        {{ clean_text('characteristic_type') }} as characteristic_type,
        {{ clean_text('characteristic_code') }} as characteristic_code,
        {{ clean_text('characteristic_label') }} as characteristic_label,
        {{ clean_text('value_name') }} as value_name,
        {{ clean_text('value_kind') }} as value_kind,
        try_cast({{ clean_text('value') }} as double) as metric_value,
        cast(value_masked as boolean) as is_masked,
        try_cast({{ clean_text('value_pct') }} as double) as value_pct,
        try_cast({{ clean_text('secondary_count') }} as {{ dbt.type_int() }}) as secondary_count,
        cast(synthetic as boolean) as is_synthetic,
        _source_file,
        _fetched_at,
        _row_number
    from {{ source('francetravail_marche_travail', 'indicators') }}
{% endcall %}
