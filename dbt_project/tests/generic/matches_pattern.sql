{#- Every non-null value of the column matches `pattern` (a regular expression anchored
    with ^ and $). Returns the offending values with their number of rows.
    Values are counted first and the pattern is tried once per distinct value: codes
    repeat millions of times in the large tables, the regular expression is the cost. -#}
{% test matches_pattern(model, column_name, pattern) %}

    select
        counted.failing_value,
        counted.rows_count
    from (
        select
            {{ column_name }} as failing_value,
            count(*) as rows_count
        from {{ model }}
        where {{ column_name }} is not null
        group by {{ column_name }}
    ) as counted
    where not ({{ regex_full_match('counted.failing_value', pattern) }})

{% endtest %}
