{{ config(materialized="table") }}

-- Active hiring months of a ROME 4.0 fiche, at the national level (one département's
-- monthly counts are too small to show a season). Over the months the snapshots cover in
-- the last 12, a calendar month is active when its offers are clearly above the fiche's
-- monthly average: at least 1.5 x the average and at least 3 offers. Needs 6 covered
-- months and 12 offers, else the fiche has no row (unknown, not "no active month").
with

national as (
    select
        job_group_code,
        month_start_date,
        month_number,
        coverage_start_date,
        coverage_end_date,
        sum(offers_count) as offers_count
    from {{ ref('fct_offers_trend') }}
    where month_start_date > {{ dbt.dateadd('month', -12, 'coverage_end_date') }}
    group by job_group_code, month_start_date, month_number, coverage_start_date, coverage_end_date
),

averaged as (
    select
        *,
        avg(offers_count) over (partition by job_group_code) as monthly_average,
        sum(offers_count) over (partition by job_group_code) as window_offers_count,
        count(*) over (partition by job_group_code) as covered_months_count
    from national
)

select
    job_group_code,
    month_number,
    month_start_date,
    {{ dbt.cast('offers_count', dbt.type_bigint()) }} as offers_count,
    monthly_average,
    offers_count >= 1.5 * monthly_average and offers_count >= 3 as is_active
from averaged
where covered_months_count >= 6 and window_offers_count >= 12
