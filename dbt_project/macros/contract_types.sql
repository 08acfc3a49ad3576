{#- Enforced contracts name their column types in DuckDB's spelling (varchar, integer,
    struct(name varchar, ...)[], integer[]). dbt checks a contract by casting NULL to each
    declared type on the engine and comparing with the model's columns; Spark spells the
    same types string, int, array<struct<name: string, ...>>. This override of dbt's
    `get_empty_schema_sql` on Spark translates the declared type first, so one yml serves
    both engines. -#}
{% macro spark__get_empty_schema_sql(columns) -%}
    {%- set translated = {} -%}
    {%- for name, column in columns.items() -%}
        {%- set copy = dict(column) -%}
        {%- if column.get('data_type') -%}
            {%- do copy.update({'data_type': spark_data_type(column['data_type'])}) -%}
        {%- endif -%}
        {%- do translated.update({name: copy}) -%}
    {%- endfor -%}
    {{ return(dbt.default__get_empty_schema_sql(translated)) }}
{%- endmacro %}

{#- A DuckDB type name in Spark's spelling (one level of struct, lists of a type). -#}
{% macro spark_data_type(data_type) -%}
    {%- set re = modules.re -%}
    {%- set spelled = re.sub('\\s+', ' ', data_type.replace('"', '').strip().lower()) -%}
    {%- set spelled = re.sub('\\bvarchar\\b', 'string', spelled) -%}
    {%- set spelled = re.sub('\\binteger\\b', 'int', spelled) -%}
    {%- set found = re.search('struct\\(([^()]*)\\)', spelled) -%}
    {%- if found -%}
        {%- set fields = [] -%}
        {%- for field in found.group(1).split(',') -%}
            {%- set parts = field.strip().split(' ', 1) -%}
            {%- do fields.append(parts[0] ~ ': ' ~ parts[1].strip()) -%}
        {%- endfor -%}
        {%- set spelled = spelled[:found.start()] ~ 'struct<' ~ fields | join(', ') ~ '>'
            ~ spelled[found.end():] -%}
    {%- endif -%}
    {%- set spelled = re.sub('^(.*)\\[\\]$', 'array<\\1>', spelled) -%}
    {{ return(spelled) }}
{%- endmacro %}
