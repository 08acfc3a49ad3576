{#- No two rows share the same values for `columns` (a composite key). Returns each
    duplicated combination with its number of rows.
    `hash_prefilter`: for large materialised tables. Grouping tens of millions of rows on
    ten text columns costs seconds; grouping one hash of them costs a third, and only the
    rows of a repeated hash (none when the test passes) are then grouped on the columns.
    On a view it would compute the view twice, so it stays off by default. -#}
{% test unique_combination(model, columns, hash_prefilter=false) %}

    select
        {{ columns | join(', ') }},
        count(*) as rows_count
    from {{ model }}
    where {{ repeated_hash_filter(model, columns) if hash_prefilter else 'true' }}
    group by {{ columns | join(', ') }}
    having count(*) > 1

{% endtest %}
