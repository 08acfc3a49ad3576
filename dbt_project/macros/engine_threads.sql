{#- Builds run on TREMPLIN_DBT_THREADS DuckDB threads, one by default (profiles.yml):
    parallel aggregation adds doubles in a varying order, and one thread keeps the
    warehouse identical for identical inputs. A model that only projects rows (no
    aggregation, no join) gets the same table row for row on several threads, since DuckDB
    keeps the insertion order: such a model may open with `set_ordered_threads()` and must
    close with `reset_engine_threads()`. -#}
{#- The thread count is one setting of the whole DuckDB database: while other dbt nodes
    run at once (TREMPLIN_DBT_CONCURRENCY above 1), they would aggregate on these threads
    too, so the ordered model then keeps the build's threads. -#}
{% macro set_ordered_threads() -%}
    {%- set threads = env_var('TREMPLIN_DBT_ORDERED_THREADS', '1') | int -%}
    {%- if target.threads > 1 -%}
        {%- set threads = build_engine_threads() -%}
    {%- endif -%}
    {{ return(adapter.dispatch('set_engine_threads', 'tremplin')(threads)) }}
{%- endmacro %}

{% macro reset_engine_threads() -%}
    {{ return(adapter.dispatch('set_engine_threads', 'tremplin')(build_engine_threads())) }}
{%- endmacro %}

{#- The engine threads of the build's other models: TREMPLIN_DBT_THREADS, one by default. -#}
{% macro build_engine_threads() -%}
    {{ return(adapter.dispatch('build_engine_threads', 'tremplin')()) }}
{%- endmacro %}

{% macro default__build_engine_threads() -%}
    {{ return(env_var('TREMPLIN_DBT_THREADS', '1') | int) }}
{%- endmacro %}

{% macro default__set_engine_threads(threads) -%}
    select 1
{%- endmacro %}

{% macro duckdb__set_engine_threads(threads) -%}
    set threads = {{ threads }}
{%- endmacro %}

{#- The engine threads now in effect (what the build runs the next model with). -#}
{% macro current_engine_threads() -%}
    {{ return(adapter.dispatch('current_engine_threads', 'tremplin')()) }}
{%- endmacro %}

{% macro default__current_engine_threads() -%}
    1
{%- endmacro %}

{% macro duckdb__current_engine_threads() -%}
    current_setting('threads')
{%- endmacro %}
