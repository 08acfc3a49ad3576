{#- Raw keeps every published field as text; blank and whitespace-only fields become NULL
    here so that not_null tests mean "the publisher gave a value". -#}
{% macro clean_text(column_name) -%}
    nullif(trim({{ column_name }}), '')
{%- endmacro %}
