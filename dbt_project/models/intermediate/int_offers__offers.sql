{{ config(
    materialized=folding_materialization(),
    unique_key=["offer_id", "job_group_code", "departement_code"],
    incremental_strategy="delete+insert",
    on_schema_change="fail",
) }}

-- One row per offer (with its fiche and département) over every snapshot seen: the offer
-- facts count each offer once, in the month of its creation. Snapshots accumulate (a
-- daily partition each, millions of rows nationally), so this model is incremental: a
-- build reads only the snapshots from the newest one already folded in (that one again,
-- in case it was re-issued) and merges the offers they show with the rows already there.
-- A snapshot older than that (a backfill) needs a full rebuild, which `tremplin backfill`
-- asks for; `tremplin build --full-refresh` does it by hand.
{%- if is_incremental() -%}
    {%- set folded_since -%}
        (select coalesce(max(last_snapshot_date), date '1900-01-01') from {{ this }})
    {%- endset -%}
{%- else -%}
    {%- set folded_since = "date '1900-01-01'" -%}
{%- endif %}

with

snapshots as (
    select
        offer_id,
        job_group_code,
        departement_code,
        created_date,
        is_synthetic,
        snapshot_date
    from {{ ref('stg_francetravail_offres__offers') }}
    where
        job_group_code is not null
        and departement_code is not null
        and created_date is not null
        and snapshot_date >= {{ folded_since }}
),

folded as (
    select
        offer_id,
        job_group_code,
        departement_code,
        min(created_date) as created_date,
        bool_or(is_synthetic) as is_synthetic,
        min(snapshot_date) as first_snapshot_date,
        max(snapshot_date) as last_snapshot_date
    from snapshots
    group by offer_id, job_group_code, departement_code
),

-- The rows already built for the offers seen again (none on a full build).
previous_rows as (
    {% if is_incremental() -%}
        select
            built.offer_id,
            built.job_group_code,
            built.departement_code,
            built.created_date,
            built.is_synthetic,
            built.first_snapshot_date,
            built.last_snapshot_date
        from {{ this }} as built
        inner join folded
            on
                built.offer_id = folded.offer_id
                and built.job_group_code = folded.job_group_code
                and built.departement_code = folded.departement_code
    {%- else -%}
        select * from folded
        where false
    {%- endif %}
),

merged as (
    select * from folded
    union all
    select * from previous_rows
)

select
    offer_id,
    job_group_code,
    departement_code,
    min(created_date) as created_date,
    bool_or(is_synthetic) as is_synthetic,
    min(first_snapshot_date) as first_snapshot_date,
    max(last_snapshot_date) as last_snapshot_date
from merged
group by offer_id, job_group_code, departement_code
