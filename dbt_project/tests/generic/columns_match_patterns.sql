{#- Every non-null value of each column matches its regular expression (anchored with ^ and
    $). `patterns` is a list of [column, pattern]. One test for all the columns of a model
    instead of one `matches_pattern` test per column; as in `matches_pattern`, values are
    counted first and each pattern is tried once per distinct value. Returns the column,
    each offending value (as text) and its number of rows. -#}
{% test columns_match_patterns(model, patterns) %}
    {%- set per_column = [] %}
{%- for column, pattern in patterns %}
    {%- do per_column.append(
        "select '" ~ column ~ "' as column_name, cast(counted.failing_value as string)"
        ~ ' as failing_value, counted.rows_count from (select ' ~ column
        ~ ' as failing_value, count(*) as rows_count from ' ~ model ~ ' where ' ~ column
        ~ ' is not null group by ' ~ column ~ ') as counted where not ('
        ~ regex_full_match('counted.failing_value', pattern) ~ ')'
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
