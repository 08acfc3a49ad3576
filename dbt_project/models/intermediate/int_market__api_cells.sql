{{ config(materialized="table") }}

-- "Marché du travail" API counts over the last four quarters published, per ROME code and
-- territory (DEP, REG, NAT): job seekers (DE_1, mean of the quarters), offers (OFF_1, sum),
-- hires (EMB_1, sum). A value needs its four quarters published: one masked quarter makes
-- it unknown (NULL), never a partial sum.
with

indicators as (
    select *
    from {{ ref('stg_francetravail_marche_travail__indicators') }}
    where
        activity_type = 'ROME'
        and period_type = 'TRIMESTRE'
        and characteristic_type is null
        and indicator_code in ('DE_1', 'OFF_1', 'EMB_1')
),

last_quarter as (
    select max(period_start_date) as last_quarter_start_date
    from indicators
),

windowed as (
    select
        indicators.*,
        last_quarter.last_quarter_start_date
    from indicators
    cross join last_quarter
    where
        indicators.period_start_date
        > {{ dbt.dateadd('month', -12, 'last_quarter.last_quarter_start_date') }}
)

select
    activity_code as job_group_code,
    territory_type,
    territory_code,
    min(period_start_date) as first_quarter_start_date,
    max(last_quarter_start_date) as last_quarter_start_date,
    case
        when
            sum(case when indicator_code = 'DE_1' and metric_value is not null then 1 else 0 end)
            = 4
            then avg(case when indicator_code = 'DE_1' then metric_value end)
    end as job_seekers_avg,
    case
        when
            sum(case when indicator_code = 'OFF_1' and metric_value is not null then 1 else 0 end)
            = 4
            then sum(case when indicator_code = 'OFF_1' then metric_value end)
    end as offers_count,
    case
        when
            sum(case when indicator_code = 'EMB_1' and metric_value is not null then 1 else 0 end)
            = 4
            then sum(case when indicator_code = 'EMB_1' then metric_value end)
    end as hires_count,
    max(case when is_synthetic then 1 else 0 end) = 1 as is_synthetic
from windowed
group by activity_code, territory_type, territory_code
