-- Offers created per ROME 4.0 fiche x département x month, from the offers snapshots
-- (each offer counted once, in the month of its creation, whichever snapshots saw it).
-- Grain: fiche x département x month, every month from the first month any snapshot
-- covers to the last one, for the pairs with at least one offer (0 = none created).
-- Windows: the last 12 months up to the last month covered, and the 12 before; a window
-- not fully covered by the snapshots has no count (NULL), so neither has the change.
with

offers as (
    select
        offer_id,
        job_group_code,
        departement_code,
        created_date,
        is_synthetic
    from {{ ref('int_offers__offers') }}
),

dated as (
    select
        offers.*,
        {{ month_start('offers.created_date') }} as month_start_date
    from offers
    inner join {{ ref('dim_departement') }} as departements
        on offers.departement_code = departements.departement_code
),

coverage as (
    select
        min(month_start_date) as first_month_start_date,
        max(month_start_date) as last_month_start_date
    from dated
),

pairs as (
    select
        job_group_code,
        departement_code,
        max(case when is_synthetic then 1 else 0 end) = 1 as is_synthetic
    from dated
    group by job_group_code, departement_code
),

monthly as (
    select
        job_group_code,
        departement_code,
        month_start_date,
        count(*) as offers_count
    from dated
    group by job_group_code, departement_code, month_start_date
),

digits as (
    select 0 as digit
    union all
    select 1
    union all
    select 2
    union all
    select 3
    union all
    select 4
    union all
    select 5
    union all
    select 6
    union all
    select 7
    union all
    select 8
    union all
    select 9
),

steps as (
    -- 0-99: a coverage of up to 100 months (older months than that are not spined).
    select tens.digit * 10 + units.digit as step
    from digits as tens
    cross join digits as units
),

-- Every covered month, also the months without any offer at all (calendar spine).
calendar as (
    select
        {{ dbt.cast(
            dbt.dateadd('month', 'steps.step', 'coverage.first_month_start_date'), 'date'
        ) }} as month_start_date
    from coverage
    cross join steps
    where
        {{ dbt.dateadd('month', 'steps.step', 'coverage.first_month_start_date') }}
        <= coverage.last_month_start_date
),

grid as (
    select
        pairs.job_group_code,
        pairs.departement_code,
        pairs.is_synthetic,
        calendar_months.month_start_date,
        coalesce(monthly.offers_count, 0) as offers_count
    from pairs
    cross join calendar as calendar_months
    left join monthly
        on
            pairs.job_group_code = monthly.job_group_code
            and pairs.departement_code = monthly.departement_code
            and calendar_months.month_start_date = monthly.month_start_date
),

windows as (
    select
        grid.job_group_code,
        grid.departement_code,
        sum(
            case
                when
                    grid.month_start_date
                    > {{ dbt.dateadd('month', -12, 'coverage.last_month_start_date') }}
                    then grid.offers_count
                else 0
            end
        ) as last_12_months_count,
        sum(
            case
                when
                    grid.month_start_date
                    <= {{ dbt.dateadd('month', -12, 'coverage.last_month_start_date') }}
                    and grid.month_start_date
                    > {{ dbt.dateadd('month', -24, 'coverage.last_month_start_date') }}
                    then grid.offers_count
                else 0
            end
        ) as previous_12_months_count,
        max(
            case
                when
                    coverage.first_month_start_date
                    <= {{ dbt.dateadd('month', -11, 'coverage.last_month_start_date') }}
                    then 1
                else 0
            end
        ) as last_window_covered,
        max(
            case
                when
                    coverage.first_month_start_date
                    <= {{ dbt.dateadd('month', -23, 'coverage.last_month_start_date') }}
                    then 1
                else 0
            end
        ) as previous_window_covered
    from grid
    cross join coverage
    group by grid.job_group_code, grid.departement_code
)

select
    grid.job_group_code,
    grid.departement_code,
    grid.month_start_date,
    {{ dbt.cast('extract(month from grid.month_start_date)', dbt.type_int()) }} as month_number,
    {{ dbt.cast('grid.offers_count', dbt.type_bigint()) }} as offers_count,
    coverage.first_month_start_date as coverage_start_date,
    coverage.last_month_start_date as coverage_end_date,
    {{ dbt.cast(
        'case when windows.last_window_covered = 1 then windows.last_12_months_count end',
        dbt.type_bigint()
    ) }} as last_12_months_count,
    {{ dbt.cast(
        'case when windows.previous_window_covered = 1 then windows.previous_12_months_count end',
        dbt.type_bigint()
    ) }} as previous_12_months_count,
    case
        when windows.last_window_covered = 1 and windows.previous_window_covered = 1
            then
                100.0 * cast(
                    windows.last_12_months_count - windows.previous_12_months_count as double
                )
                / nullif(windows.previous_12_months_count, 0)
    end as change_percent,
    {{ dbt.cast(
        'sum(case when grid.month_start_date > ' ~ dbt.dateadd('month', -12, 'coverage.last_month_start_date')
        ~ ' then grid.offers_count else 0 end) over (partition by grid.job_group_code, grid.departement_code)',
        dbt.type_bigint()
    ) }} as observed_last_12_months_count,
    grid.is_synthetic
from grid
cross join coverage
inner join windows
    on
        grid.job_group_code = windows.job_group_code
        and grid.departement_code = windows.departement_code
