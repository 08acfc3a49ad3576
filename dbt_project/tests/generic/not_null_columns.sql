{#- None of `column_names` holds a NULL. One scan of the model for all of them, where one
    `not_null` test per column would read it (a view: recompute it) once per column and
    pay dbt's per-test overhead each time. Returns each failing column with its number of
    NULL rows. -#}
{% test not_null_columns(model, column_names) %}
    {%- set counts, per_column = [], [] %}
{%- for column in column_names %}
    {%- do counts.append('count(*) - count(' ~ column ~ ') as nulls_' ~ loop.index) %}
    {%- do per_column.append(
        "select '" ~ column ~ "' as column_name, nulls_" ~ loop.index
        ~ ' as null_rows from counted'
    ) %}
{%- endfor %}

    with counted as (
        select {{ counts | join(', ') }}
        from {{ model }}
    ),

    failing as (
        {{ per_column | join(' union all ') }}
    )

    select
        failing.column_name,
        failing.null_rows
    from failing
    where failing.null_rows > 0

{% endtest %}
