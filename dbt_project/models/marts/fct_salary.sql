-- Monthly gross salaries (euros) of the "Marché du travail" API (SAL_3) per ROME 4.0 fiche
-- x territory (departement, region, france) x year: first quartile, median, third
-- quartile. A masked value stays NULL.
with

salaries as (
    select *
    from {{ ref('stg_francetravail_marche_travail__indicators') }}
    where indicator_code = 'SAL_3' and activity_type = 'ROME' and characteristic_type is null
)

select
    activity_code as job_group_code,
    case territory_type
        when 'DEP' then 'departement'
        when 'REG' then 'region'
        else 'france'
    end as territory_type,
    territory_code,
    {{ dbt.cast('extract(year from period_start_date)', dbt.type_int()) }} as reference_year,
    max(case when nomenclature_code = 'Q1' then metric_value end) as q1_monthly_gross_eur,
    max(case when nomenclature_code = 'MED' then metric_value end) as median_monthly_gross_eur,
    max(case when nomenclature_code = 'Q3' then metric_value end) as q3_monthly_gross_eur,
    max(case when is_synthetic then 1 else 0 end) = 1 as is_synthetic
from salaries
group by activity_code, territory_type, territory_code, period_start_date
