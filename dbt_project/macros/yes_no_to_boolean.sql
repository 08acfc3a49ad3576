{#- ROME tag fields are 'O' (oui), 'N' (non) or empty (not assessed): the empty case stays
    NULL rather than false, because "not assessed" is not "no". Other values also give NULL;
    the accepted_values tests on the sources catch them. -#}
{% macro yes_no_to_boolean(column_name) -%}
    case upper(trim({{ column_name }}))
        when 'O' then true
        when 'N' then false
    end
{%- endmacro %}
