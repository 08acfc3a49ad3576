{{ config(materialized="table") }}

-- Active hiring months of a ROME 4.0 fiche, at the national level (one département's
-- monthly counts are too small to show a season), from a year of offers snapshots.
-- The signal: offers created in each calendar month, each offer counted once, over the
-- 12 months up to the last snapshot. It says something about seasonality only when
-- snapshots were taken all year long (an offer filled before any snapshot saw it is
-- missed, and one snapshot only sees the offers still open, so recent months): the
-- model needs a snapshot in each of those 12 months, else it has no row at all and the
-- active months are unknown (NULL, level unknown), never "no active month".
-- A calendar month is active when its offers are clearly above the fiche's monthly
-- average: at least 1.5 x the average and at least 3 offers; a fiche needs 12 offers
-- over the year.
with

snapshot_months as (
    select distinct {{ month_start('snapshot_date') }} as snapshot_month_start_date
    from {{ ref('stg_francetravail_offres__offers') }}
    where snapshot_date is not null
),

history as (
    select
        max(snapshot_month_start_date) as last_month_start_date,
        {{ dbt.dateadd('month', -11, 'max(snapshot_month_start_date)') }}
            as first_month_start_date
    from snapshot_months
),

covered as (
    -- The year counts only when each of its 12 months had a snapshot.
    select history.*
    from history
    where
        (
            select count(*)
            from snapshot_months
            where
                snapshot_months.snapshot_month_start_date >= history.first_month_start_date
                and snapshot_months.snapshot_month_start_date <= history.last_month_start_date
        )
        = 12
),

steps as (
    select steps.step
    from (values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11)) as steps (step)
),

months as (
    select
        {{ dbt.cast(
            dbt.dateadd('month', 'steps.step', 'covered.first_month_start_date'), 'date'
        ) }} as month_start_date
    from covered
    cross join steps
),

monthly as (
    select
        offers.job_group_code,
        {{ month_start('offers.created_date') }} as month_start_date,
        count(*) as offers_count
    from {{ ref('int_offers__offers') }} as offers
    group by offers.job_group_code, {{ month_start('offers.created_date') }}
),

fiches as (
    select distinct monthly.job_group_code
    from monthly
    inner join months
        on monthly.month_start_date = months.month_start_date
),

national as (
    select
        fiches.job_group_code,
        months.month_start_date,
        coalesce(monthly.offers_count, 0) as offers_count
    from fiches
    cross join months
    left join monthly
        on
            fiches.job_group_code = monthly.job_group_code
            and months.month_start_date = monthly.month_start_date
),

averaged as (
    select
        *,
        avg(offers_count) over (partition by job_group_code) as monthly_average,
        sum(offers_count) over (partition by job_group_code) as window_offers_count
    from national
)

select
    job_group_code,
    {{ dbt.cast('extract(month from month_start_date)', dbt.type_int()) }} as month_number,
    month_start_date,
    {{ dbt.cast('offers_count', dbt.type_bigint()) }} as offers_count,
    monthly_average,
    offers_count >= 1.5 * monthly_average and offers_count >= 3 as is_active
from averaged
where window_offers_count >= 12
