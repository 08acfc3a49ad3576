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

{#- The exact Gamma and Beta quantiles on Spark: the same scipy functions as on DuckDB,
    registered under the same names (macros/shrinkage.sql keeps their seams). -#}
{% macro spark__gamma_quantile(shape, rate, p) -%}
    tremplin_gamma_quantile({{ shape }}, {{ rate }}, {{ p }})
{%- endmacro %}

{% macro spark__beta_quantile(a, b, p) -%}
    tremplin_beta_quantile({{ a }}, {{ b }}, {{ p }})
{%- endmacro %}
