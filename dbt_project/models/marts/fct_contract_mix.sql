-- Contract mix of the offers (API OFF_1 broken down by contract type TYPECTR: CDI, CDD,
-- MIS = temporary work) per ROME 4.0 fiche x département x contract type, over the last
-- four quarters published. share = offers of the type / offers of the three types; raw
-- and shrunk jointly (Dirichlet-multinomial toward the région's mix, else France's:
-- macros/dirichlet.sql), so the shrunk shares of a cell add up to 100. A département
-- whose four quarters are not all published has no share (NULL): its shrunk values are
-- the prior mix alone (level prior).
with

typed as (
    select *
    from {{ ref('stg_francetravail_marche_travail__indicators') }}
    where
        indicator_code = 'OFF_1'
        and activity_type = 'ROME'
        and period_type = 'TRIMESTRE'
        and characteristic_type = 'TYPECTR'
),

last_quarter as (
    select max(period_start_date) as last_quarter_start_date
    from typed
),

summed as (
    select
        typed.activity_code as job_group_code,
        typed.territory_type,
        typed.territory_code,
        typed.characteristic_code as contract_type,
        case
            when
                count(
                    distinct case
                        when typed.metric_value is not null then typed.period_start_date
                    end
                )
                = 4
                then sum(typed.metric_value)
        end as offers_count,
        max(case when typed.is_synthetic then 1 else 0 end) = 1 as is_synthetic
    from typed
    cross join last_quarter
    where
        typed.period_start_date
        > {{ dbt.dateadd('month', -12, 'last_quarter.last_quarter_start_date') }}
    group by
        typed.activity_code, typed.territory_type, typed.territory_code, typed.characteristic_code
),

totals as (
    select
        job_group_code,
        territory_type,
        territory_code,
        case when count(offers_count) = count(*) then sum(offers_count) end as typed_offers_count
    from summed
    group by job_group_code, territory_type, territory_code
),

shares as (
    select
        summed.*,
        totals.typed_offers_count
    from summed
    inner join totals
        on
            summed.job_group_code = totals.job_group_code
            and summed.territory_type = totals.territory_type
            and summed.territory_code = totals.territory_code
),

departements as (
    select
        departement_code,
        region_code
    from {{ ref('dim_departement') }}
),

kinds as (
    select distinct
        job_group_code,
        contract_type
    from shares
),

cells as (
    select
        kinds.job_group_code,
        kinds.contract_type,
        departements.departement_code,
        departements.region_code,
        {{ dbt.concat(['kinds.job_group_code', "':'", 'departements.departement_code']) }}
            as cell_id,
        kinds.job_group_code as group_id,
        kinds.contract_type as category,
        case when dep.typed_offers_count is not null then dep.offers_count end as events,
        case when dep.offers_count is not null then dep.typed_offers_count end as exposure,
        reg.offers_count as region_events,
        reg.typed_offers_count as region_exposure,
        nat.offers_count as national_events,
        nat.typed_offers_count as national_exposure,
        coalesce(dep.is_synthetic, reg.is_synthetic, nat.is_synthetic) as is_synthetic
    from kinds
    cross join departements
    left join shares as dep
        on
            kinds.job_group_code = dep.job_group_code
            and kinds.contract_type = dep.contract_type
            and dep.territory_type = 'DEP'
            and departements.departement_code = dep.territory_code
    left join shares as reg
        on
            kinds.job_group_code = reg.job_group_code
            and kinds.contract_type = reg.contract_type
            and reg.territory_type = 'REG'
            and departements.region_code = reg.territory_code
    left join shares as nat
        on
            kinds.job_group_code = nat.job_group_code
            and kinds.contract_type = nat.contract_type
            and nat.territory_type = 'NAT'
),

estimates as (
    {{ dirichlet_multinomial_estimates('cells') }}
)

select
    cells.job_group_code,
    cells.departement_code,
    cells.region_code,
    cells.contract_type,
    {{ dbt.cast('cells.events', dbt.type_bigint()) }} as offers_count,
    {{ dbt.cast('cells.exposure', dbt.type_bigint()) }} as typed_offers_count,
    estimates.effective_sample_size,
    estimates.confidence_level,
    cells.is_synthetic,
    100 * estimates.raw_rate as share_pct,
    100 * estimates.shrunk_rate as share_pct_shrunk,
    100 * estimates.low_80 as interval_80_low_pct,
    100 * estimates.high_80 as interval_80_high_pct,
    case when estimates.has_data then 'departement' else 'prior' end as estimate_level,
    estimates.prior_level,
    {{ cap_at_100(
        "100 * cells.region_events / nullif(cells.region_exposure, 0)"
    ) }} as region_share_pct,
    {{ cap_at_100("100 * cells.national_events / nullif(cells.national_exposure, 0)") }}
        as national_share_pct
from cells
inner join estimates
    on
        cells.cell_id = estimates.cell_id
        and cells.contract_type = estimates.category
