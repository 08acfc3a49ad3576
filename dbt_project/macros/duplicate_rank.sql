{#- Staging drops rows that repeat another row of the same file field for field (rank > 1),
    keeping the first one published. Rows that share a key but differ elsewhere are not
    exact duplicates: they stay, and the unique tests on the staging keys fail the build. -#}
{% macro duplicate_rank(columns, order_by='_row_number') -%}
    row_number() over (
        partition by {{ columns | join(', ') }}
        order by {{ order_by }} asc nulls last
    )
{%- endmacro %}
