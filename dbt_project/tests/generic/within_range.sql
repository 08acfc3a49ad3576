{#- Every non-null value of the column lies in [min_value, max_value] (percentages 0-100,
    classes 1-5). Returns the offending values with their number of rows. -#}
{% test within_range(model, column_name, min_value, max_value) %}

    select
        {{ column_name }} as failing_value,
        count(*) as rows_count
    from {{ model }}
    where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
    group by {{ column_name }}

{% endtest %}
