{#- The raw Parquet files as dbt sources, per engine (the on-run-start hook of
    dbt_project.yml). DuckDB reads each source in place through its `external_location`
    (dbt-duckdb): nothing to do. Spark needs a metastore table over the same files: one
    database per source (the source's schema) and one `using parquet` table per raw table,
    re-created at every run so that a moved raw folder is followed. A location ending in a
    glob (`<table>/*.parquet`, one file per period) becomes its folder. Spark runs one
    statement per call, hence one run_query each. -#}
{% macro register_raw_sources() -%}
    {%- if execute -%}
        {%- for statement in adapter.dispatch('raw_source_statements', 'tremplin')() -%}
            {%- do run_query(statement) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{% macro default__raw_source_statements() -%}
    {{ return([]) }}
{%- endmacro %}

{% macro spark__raw_source_statements() -%}
    {%- set statements = [] -%}
    {%- set schemas = [] -%}
    {%- for node in graph.sources.values() | sort(attribute='unique_id') -%}
        {%- set location = node.meta.get('external_location') or node.source_meta.get(
            'external_location') -%}
        {%- if location -%}
            {%- set path = location.replace('{name}', node.name) -%}
            {%- if path.endswith('/*.parquet') -%}
                {%- set path = path[:-10] -%}
            {%- endif -%}
            {%- if node.schema not in schemas -%}
                {%- do schemas.append(node.schema) -%}
                {%- do statements.append('create database if not exists ' ~ node.schema) -%}
            {%- endif -%}
            {%- set table = node.schema ~ '.' ~ node.identifier -%}
            {%- do statements.append('drop table if exists ' ~ table) -%}
            {%- do statements.append(
                'create table ' ~ table ~ " using parquet location '" ~ path ~ "'") -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements) }}
{%- endmacro %}
