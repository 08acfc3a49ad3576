{#- Post-hook of a materialised staging table: deletes the rows that repeat another row on
    `columns`, keeping the first by `order_by`, as `duplicate_rank` does in a view.
    Why not a window in the model: nationally the table holds tens of millions of rows and
    a window partitions every column of every row (about 3 x the cost of writing the
    table). Here only the rows whose key hash occurs twice are ranked, which is none in a
    clean publication; hash collisions only add candidates, the ranking itself compares
    the columns. -#}
{% macro delete_repeated_rows(columns, order_by='_row_number') -%}
    {{ return(adapter.dispatch('delete_repeated_rows', 'tremplin')(columns, order_by)) }}
{%- endmacro %}

{% macro default__delete_repeated_rows(columns, order_by) -%}
    {{ exceptions.raise_compiler_error(
        "delete_repeated_rows needs a row identifier (DuckDB's rowid); use duplicate_rank "
        ~ "in the model on " ~ adapter.type()) }}
{%- endmacro %}

{#- Spark's Parquet tables have no DELETE, and a table cannot be overwritten from itself:
    the kept rows are written to a new table, which replaces the model's (same columns,
    same order). That rewrite ranks every row (a shuffle of the whole table: tens of GB
    nationally), so it runs only when some 64-bit hash of `columns` occurs twice, which
    is never in a clean publication. Statements run one by one from here; the hook itself
    is then a no-op. -#}
{% macro spark__delete_repeated_rows(columns, order_by) -%}
    {%- if execute -%}
        {%- set key_hash = 'xxhash64(' ~ columns | join(', ') ~ ')' -%}
        {%- set repeated = run_query(
            'select count(*) from (select ' ~ key_hash ~ ' as key_hash from ' ~ this
            ~ ' group by ' ~ key_hash ~ ' having count(*) > 1) as repeated_hashes'
        ).columns[0].values()[0] -%}
    {%- endif -%}
    {%- if execute and repeated > 0 -%}
        {%- set kept = this.incorporate(path={'identifier': this.identifier ~ '__kept'}) -%}
        {%- do run_query('drop table if exists ' ~ kept) -%}
        {%- do run_query(
            'create table ' ~ kept ~ ' using parquet as select * except (duplicate_rank) '
            ~ 'from (select *, ' ~ duplicate_rank(columns, order_by) ~ ' as duplicate_rank '
            ~ 'from ' ~ this ~ ') as ranked where duplicate_rank = 1') -%}
        {%- do run_query('drop table ' ~ this) -%}
        {%- do run_query('alter table ' ~ kept ~ ' rename to ' ~ this) -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{% macro duckdb__delete_repeated_rows(columns, order_by) -%}
    delete from {{ this }}
    where rowid in (
        select ranked.row_id
        from (
            select
                rowid as row_id,
                {{ duplicate_rank(columns, order_by) }} as duplicate_rank
            from {{ this }}
            where {{ repeated_hash_filter(this, columns) }}
        ) as ranked
        where ranked.duplicate_rank > 1
    )
{%- endmacro %}

{#- A predicate keeping the rows of `model` whose hash of `columns` occurs more than once:
    a cheap narrowing before an exact comparison of the columns. -#}
{% macro repeated_hash_filter(model, columns) -%}
    {{ return(adapter.dispatch('repeated_hash_filter', 'tremplin')(model, columns)) }}
{%- endmacro %}

{% macro default__repeated_hash_filter(model, columns) -%}
    true
{%- endmacro %}

{% macro duckdb__repeated_hash_filter(model, columns) -%}
    hash({{ columns | join(', ') }}) in (
        select key_hashes.key_hash
        from (
            select hash({{ columns | join(', ') }}) as key_hash
            from {{ model }}
        ) as key_hashes
        group by key_hashes.key_hash
        having count(*) > 1
    )
{%- endmacro %}
