{#- No two rows share the same values for `columns` (a composite key). Returns each
    duplicated combination with its number of rows. -#}
{% test unique_combination(model, columns) %}

    select
        {{ columns | join(', ') }},
        count(*) as rows_count
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1

{% endtest %}
