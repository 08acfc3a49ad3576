{#- True when the whole of `expression` matches the regular expression `pattern`.
    Dispatch seam: the function differs by engine. Patterns are written with ^ and $ so
    that engines whose operator searches (Spark rlike) behave like a full match. -#}
{% macro regex_full_match(expression, pattern) -%}
    {{ return(adapter.dispatch('regex_full_match', 'tremplin')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regex_full_match(expression, pattern) -%}
    regexp_like({{ expression }}, '{{ pattern }}')
{%- endmacro %}

{% macro duckdb__regex_full_match(expression, pattern) -%}
    regexp_full_match({{ expression }}, '{{ pattern }}')
{%- endmacro %}

{% macro spark__regex_full_match(expression, pattern) -%}
    {{ expression }} rlike '{{ pattern }}'
{%- endmacro %}
