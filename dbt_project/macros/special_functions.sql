{#- ln Gamma(x) for x > 0. Dispatch seam: DuckDB has lgamma; Spark has none, and gets
    scipy's gammaln as the function tremplin_lgamma, registered on dbt-spark's session by
    `tremplin-dbt` (assets/dbt_spark.py), with the exact quantiles. -#}
{% macro ln_gamma(x) -%}
    {{ return(adapter.dispatch('ln_gamma', 'tremplin')(x)) }}
{%- endmacro %}

{% macro default__ln_gamma(x) -%}
    lgamma({{ x }})
{%- endmacro %}

{% macro spark__ln_gamma(x) -%}
    tremplin_lgamma({{ x }})
{%- endmacro %}

{#- The shrinkage macros' own lgamma seam: on Spark, the same function. -#}
{% macro spark__shrinkage_lgamma(x) -%}
    {{ ln_gamma(x) }}
{%- endmacro %}
