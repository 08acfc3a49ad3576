{#- Every non-null value of the column matches `pattern` (a regular expression anchored
    with ^ and $). Returns the offending values with their number of rows. -#}
{% test matches_pattern(model, column_name, pattern) %}

    select
        {{ column_name }} as failing_value,
        count(*) as rows_count
    from {{ model }}
    where
        {{ column_name }} is not null
        and not ({{ regex_full_match(column_name, pattern) }})
    group by {{ column_name }}

{% endtest %}
