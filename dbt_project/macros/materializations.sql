{#- How a model that folds new periods into what it already holds is materialised.
    DuckDB: incremental (delete+insert on the model's key). Spark without Delta or Iceberg
    (no jar offline) can only append or overwrite partitions, neither of which merges
    offers seen again; there the model is rebuilt whole, which gives the same rows. A
    cluster with Delta or Iceberg would use `merge` (docs/DESIGN.md, "Engines"). -#}
{% macro folding_materialization() -%}
    {{ return(adapter.dispatch('folding_materialization', 'tremplin')()) }}
{%- endmacro %}

{% macro default__folding_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{% macro spark__folding_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{#- How a staging model of tens of millions of rows is kept. On DuckDB a view: a table
    would be written once at the cost of several reads of the raw Parquet, which every
    model and test reads with its filters pushed down instead. On Spark a table: a view
    would re-plan the raw scan in every consumer's shuffle stages. -#}
{% macro large_staging_materialization() -%}
    {{ return(adapter.dispatch('large_staging_materialization', 'tremplin')()) }}
{%- endmacro %}

{% macro default__large_staging_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{% macro duckdb__large_staging_materialization() -%}
    {{ return('view') }}
{%- endmacro %}
