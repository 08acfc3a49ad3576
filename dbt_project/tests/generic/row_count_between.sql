{#- The model has between min_value and max_value rows (both included). A referential with
    a known size (101 départements, 18 régions) gets min = max, so that a lost or an extra
    row fails loudly. Returns one row with the actual count when it is out of range. -#}
{% test row_count_between(model, min_value, max_value) %}

    select counted.rows_count
    from (
        select count(*) as rows_count
        from {{ model }}
    ) as counted
    where counted.rows_count < {{ min_value }} or counted.rows_count > {{ max_value }}

{% endtest %}
