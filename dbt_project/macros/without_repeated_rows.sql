{#- The rows of the select in the call block without those that repeat an earlier row on
    `columns`: the first by `order_by` stays, as `duplicate_rank` keeps it.
    Ranking partitions every column of every row: nationally, tens of millions of API
    values, several times the cost of reading them. A clean publication repeats no row,
    so the build first asks whether some hash of `columns` occurs twice and ranks only
    then (a hash collision only sends it to the exact ranking). The question is asked
    when the model is built: a view built on a clean publication is a plain projection,
    and the next build asks again. Any other command (compile, docs generate) reads no
    data and gets the projection of a clean publication: the column lineage reads that
    SQL, and dropping repeated rows changes no column. -#}
{% macro without_repeated_rows(columns, order_by='_row_number') -%}
    {%- set rows = caller() -%}
    {%- set repeated = 0 -%}
    {%- if execute and flags.WHICH in ['run', 'build', 'retry'] -%}
        {%- set repeated = run_query(
            'select count(*) from (' ~ repeated_key_hashes('(' ~ rows ~ ')', columns)
            ~ ') as repeated_hashes'
        ).columns[0].values()[0] -%}
    {%- endif -%}
    {%- if repeated > 0 %}
        select * except (duplicate_rank)
        from (
            select
                model_rows.*,
                {{ duplicate_rank(columns, order_by) }} as duplicate_rank
            from ({{ rows }}) as model_rows
        ) as ranked_rows
        where duplicate_rank = 1
    {%- else %}
        {{ rows }}
    {%- endif %}
{%- endmacro %}

{#- A 64-bit hash of `columns`, NULLs included. -#}
{% macro row_key_hash(columns) -%}
    {{ return(adapter.dispatch('row_key_hash', 'tremplin')(columns)) }}
{%- endmacro %}

{% macro default__row_key_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{% macro spark__row_key_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}

{#- A predicate keeping the rows of `model` whose hash of `columns` occurs more than once:
    a cheap narrowing before an exact comparison of the columns (unique tests). -#}
{% macro repeated_hash_filter(model, columns) -%}
    {{ return(adapter.dispatch('repeated_hash_filter', 'tremplin')(model, columns)) }}
{%- endmacro %}

{% macro default__repeated_hash_filter(model, columns) -%}
    true
{%- endmacro %}

{% macro duckdb__repeated_hash_filter(model, columns) -%}
    {{ row_key_hash(columns) }} in ({{ repeated_key_hashes(model, columns) }})
{%- endmacro %}

{#- The hashes of `columns` that occur more than once in `relation` (a relation or a
    parenthesised select). -#}
{% macro repeated_key_hashes(relation, columns) -%}
    select key_hashes.key_hash
    from (
        select {{ row_key_hash(columns) }} as key_hash
        from {{ relation }} as keyed_rows
    ) as key_hashes
    group by key_hashes.key_hash
    having count(*) > 1
{%- endmacro %}
