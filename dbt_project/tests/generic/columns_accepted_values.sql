{#- Every non-null value of each column is one of its accepted values. `accepted` is a list
    of [column, values, quote]: with quote false the values are written as they are (numbers,
    booleans), else as text literals, as dbt's `accepted_values` does. One test for all the
    columns of a model instead of one `accepted_values` test per column; each column's
    values are counted first. Returns the column, each other value (as text) and its rows. -#}
{% test columns_accepted_values(model, accepted) %}
    {%- set per_column = [] %}
{%- for column, values, quote in accepted %}
    {%- set literals = [] %}
    {%- for value in values %}
        {%- do literals.append(
            "'" ~ (value | string).replace("'", "''") ~ "'" if quote else value | string
        ) %}
    {%- endfor %}
    {%- do per_column.append(
        "select '" ~ column ~ "' as column_name, cast(counted.value_field as string)"
        ~ ' as failing_value, counted.rows_count from (select ' ~ column
        ~ ' as value_field, count(*) as rows_count from ' ~ model ~ ' group by ' ~ column
        ~ ') as counted where counted.value_field not in (' ~ literals | join(', ') ~ ')'
    ) %}
{%- endfor %}

    with failing as (
        {{ per_column | join(' union all ') }}
    )

    select
        failing.column_name,
        failing.failing_value,
        failing.rows_count
    from failing

{% endtest %}
