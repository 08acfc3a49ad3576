{#- List and struct constructs differ by engine: DuckDB has list(... order by ...) and
    struct_pack; Spark has collect_list / named_struct and no ordered aggregate. The
    diagnostic tables call these seams only. -#}

{#- Ordered list aggregate of `expression`, sorted by `order_by`: comma-separated keys (no
    comma inside a key), each optionally followed by asc / desc and nulls first / nulls
    last; NULLs sort last unless told (DuckDB's default, in both directions). Give a total
    order (end with a key that is unique in the group): with ties the engines return the
    tied items in whatever order they collected them. -#}
{% macro ordered_list(expression, order_by) -%}
    {{ return(adapter.dispatch('ordered_list', 'tremplin')(expression, order_by)) }}
{%- endmacro %}

{#- [(expression, descending, nulls_first)] from an order_by text. -#}
{% macro _order_keys(order_by) -%}
    {%- set keys = [] -%}
    {%- for part in order_by.split(',') -%}
        {%- set words = part.strip().split() -%}
        {%- set nulls_first = false -%}
        {%- if words | length > 2 and words[-2] | lower == 'nulls' -%}
            {%- set nulls_first = words[-1] | lower == 'first' -%}
            {%- set words = words[:-2] -%}
        {%- endif -%}
        {%- set descending = false -%}
        {%- if words | length > 1 and words[-1] | lower in ('asc', 'desc') -%}
            {%- set descending = words[-1] | lower == 'desc' -%}
            {%- set words = words[:-1] -%}
        {%- endif -%}
        {%- do keys.append((words | join(' '), descending, nulls_first)) -%}
    {%- endfor -%}
    {{ return(keys) }}
{%- endmacro %}

{#- Spark has no ordered aggregate: collect (keys, item) structs and sort them with a
    comparator written from the keys (array_sort's own order of structs is ascending with
    NULLs first, and `key desc` inside struct() would only name a field "desc"). -#}
{% macro default__ordered_list(expression, order_by) -%}
    {%- set keys = _order_keys(order_by) -%}
    {%- set fields = [] -%}
    {%- for key, descending, nulls_first in keys -%}
        {%- do fields.append(('k' ~ loop.index, key)) -%}
    {%- endfor -%}
    {%- do fields.append(('item', expression)) -%}
    transform(
        array_sort(
            collect_list({{ default__make_struct(fields) }}),
            (left_entry, right_entry) -> {{ _order_comparison(keys) }}
        ),
        entry -> entry.item
    )
{%- endmacro %}

{#- -1, 0 or 1: how left_entry compares with right_entry on the keys k1, k2, ... -#}
{% macro _order_comparison(keys) -%}
    case
    {%- for key, descending, nulls_first in keys %}
        {%- set l = 'left_entry.k' ~ loop.index -%}
        {%- set r = 'right_entry.k' ~ loop.index %}
        when {{ l }} is null and {{ r }} is not null then {{ -1 if nulls_first else 1 }}
        when {{ l }} is not null and {{ r }} is null then {{ 1 if nulls_first else -1 }}
        when {{ l }} < {{ r }} then {{ 1 if descending else -1 }}
        when {{ l }} > {{ r }} then {{ -1 if descending else 1 }}
    {%- endfor %}
        else 0
    end
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
