{#- List and struct constructs differ by engine: DuckDB has list(... order by ...) and
    struct_pack; Spark has collect_list / named_struct and no ordered aggregate. The
    diagnostic tables call these seams only. -#}

{#- Ordered list aggregate of `expression`. -#}
{% macro ordered_list(expression, order_by) -%}
    {{ return(adapter.dispatch('ordered_list', 'tremplin')(expression, order_by)) }}
{%- endmacro %}

{% macro default__ordered_list(expression, order_by) -%}
    transform(
        array_sort(collect_list(struct({{ order_by }} as sort_key, {{ expression }} as item))),
        entry -> entry.item
    )
{%- endmacro %}

{% macro duckdb__ordered_list(expression, order_by) -%}
    list({{ expression }} order by {{ order_by }})
{%- endmacro %}

{#- A struct from a list of (field name, expression) pairs. -#}
{% macro make_struct(fields) -%}
    {{ return(adapter.dispatch('make_struct', 'tremplin')(fields)) }}
{%- endmacro %}

{% macro default__make_struct(fields) -%}
    named_struct(
    {%- for name, expression in fields %}
        '{{ name }}', {{ expression }}{{ ',' if not loop.last }}
    {%- endfor %}
    )
{%- endmacro %}

{% macro duckdb__make_struct(fields) -%}
    struct_pack(
    {%- for name, expression in fields %}
        {{ name }} := {{ expression }}{{ ',' if not loop.last }}
    {%- endfor %}
    )
{%- endmacro %}

{#- First day of the month of a date. -#}
{% macro month_start(expression) -%}
    {{ return(adapter.dispatch('month_start', 'tremplin')(expression)) }}
{%- endmacro %}

{% macro default__month_start(expression) -%}
    {{ dbt.cast("date_trunc('month', " ~ expression ~ ")", 'date') }}
{%- endmacro %}

{#- An empty list of integers (a known "none", unlike NULL). -#}
{% macro empty_int_list() -%}
    {{ return(adapter.dispatch('empty_int_list', 'tremplin')()) }}
{%- endmacro %}

{% macro default__empty_int_list() -%}
    cast(array() as array<int>)
{%- endmacro %}

{% macro duckdb__empty_int_list() -%}
    cast([] as integer[])
{%- endmacro %}
