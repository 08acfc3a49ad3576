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
