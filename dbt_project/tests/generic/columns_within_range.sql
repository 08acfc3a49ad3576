{#- Every non-null value of each column lies in its [min, max] (both included). `ranges` is
    a list of [column, min, max]; min and max may be numbers or expressions over the row.
    One scan of the model for all of them instead of one `within_range` test per column.
    Returns each failing column with its number of rows out of range. -#}
{% test columns_within_range(model, ranges) %}
    {%- set counts, per_column = [], [] %}
{%- for column, min_value, max_value in ranges %}
    {%- do counts.append(
        'sum(case when ' ~ column ~ ' < ' ~ min_value ~ ' or ' ~ column ~ ' > ' ~ max_value
        ~ ' then 1 else 0 end) as outside_' ~ loop.index
    ) %}
    {%- do per_column.append(
        "select '" ~ column ~ "' as column_name, outside_" ~ loop.index
        ~ ' as rows_out_of_range from counted'
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
        failing.rows_out_of_range
    from failing
    where failing.rows_out_of_range > 0

{% endtest %}
