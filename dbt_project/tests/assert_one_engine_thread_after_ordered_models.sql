-- depends_on: {{ ref('stg_francetravail_marche_travail__indicators') }}
-- The staging table runs on several threads (macros/engine_threads.sql); the models built
-- after it must be back on the build's own engine threads (TREMPLIN_DBT_THREADS, one by
-- default), or their sums of doubles could vary from build to build.
select {{ current_engine_threads() }} as engine_threads
where {{ current_engine_threads() }} <> {{ build_engine_threads() }}
