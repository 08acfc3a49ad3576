-- The BMO headline figures per survey year and area (France, région, département), from
-- every published cell: masked counts enter with their estimates (int_bmo__cells), and each
-- figure carries the bounds secrecy leaves. Shares' bounds: the fewest difficult (seasonal)
-- projects over the most projects, and the most over the fewest (capped at 100).
with

cells as (
    select * from {{ ref('int_bmo__cells') }}
),

scoped as (
    select
        cells.*,
        'france' as scope,
        'FR' as area_code
    from cells
    union all
    select
        cells.*,
        'region' as scope,
        cells.region_code as area_code
    from cells
    union all
    select
        cells.*,
        'departement' as scope,
        cells.departement_code as area_code
    from cells
),

totals as (
    select
        survey_year,
        scope,
        area_code,
        count(*) as cells_count,
        sum(case when recruitment_projects_masked then 1 else 0 end)
            as masked_projects_cells_count,
        sum(case when difficult_projects_masked then 1 else 0 end)
            as masked_difficult_cells_count,
        sum(case when seasonal_projects_masked then 1 else 0 end)
            as masked_seasonal_cells_count,
        max(secrecy_threshold) as secrecy_threshold,
        sum(recruitment_projects) as recruitment_projects,
        sum(recruitment_projects_low) as recruitment_projects_low,
        sum(recruitment_projects_high) as recruitment_projects_high,
        sum(difficult_projects) as difficult_projects,
        sum(difficult_projects_low) as difficult_projects_low,
        sum(difficult_projects_high) as difficult_projects_high,
        sum(seasonal_projects) as seasonal_projects,
        sum(seasonal_projects_low) as seasonal_projects_low,
        sum(seasonal_projects_high) as seasonal_projects_high,
        min(_source_file) as source_file
    from scoped
    where area_code is not null
    group by survey_year, scope, area_code
)

select
    {{ dbt.cast('survey_year', dbt.type_int()) }} as survey_year,
    scope,
    area_code,
    recruitment_projects,
    {{ dbt.cast('recruitment_projects_low', 'double') }} as recruitment_projects_low,
    {{ dbt.cast('recruitment_projects_high', 'double') }} as recruitment_projects_high,
    100 * difficult_projects / nullif(recruitment_projects, 0) as difficult_pct,
    100 * difficult_projects_low / nullif(recruitment_projects_high, 0) as difficult_pct_low,
    least(
        100.0, coalesce(100 * difficult_projects_high / nullif(recruitment_projects_low, 0), 100.0)
    ) as difficult_pct_high,
    100 * seasonal_projects / nullif(recruitment_projects, 0) as seasonal_pct,
    100 * seasonal_projects_low / nullif(recruitment_projects_high, 0) as seasonal_pct_low,
    least(
        100.0, coalesce(100 * seasonal_projects_high / nullif(recruitment_projects_low, 0), 100.0)
    ) as seasonal_pct_high,
    {{ dbt.cast('cells_count', dbt.type_int()) }} as cells_count,
    {{ dbt.cast('masked_projects_cells_count', dbt.type_int()) }} as masked_projects_cells_count,
    {{ dbt.cast('masked_difficult_cells_count', dbt.type_int()) }} as masked_difficult_cells_count,
    {{ dbt.cast('masked_seasonal_cells_count', dbt.type_int()) }} as masked_seasonal_cells_count,
    {{ dbt.cast('secrecy_threshold', dbt.type_int()) }} as secrecy_threshold,
    source_file
from totals
