{{ config(materialized="table") }}

-- DARES tension (FAP-2009) carried to ROME 4.0 fiches through the ROME -> FAP bridge:
-- one row per fiche x territory (national, région, département) x year. A fiche spread
-- over several families gets the weight-averaged index and the rounded weight-averaged
-- class; weights are the bridge's allocation weights of the families published there.
with

bridge as (
    select *
    from {{ ref('int_job_classification__rome_to_fap') }}
    where fap2009_code is not null
),

tensions as (
    select *
    from {{ ref('stg_dares_tensions__tensions') }}
    where fap_level = 'fap225'
)

select
    bridge.job_group_code,
    tensions.territory_type,
    tensions.territory_code,
    tensions.reference_year,
    sum(bridge.allocation_weight * tensions.tension_index)
    / nullif(sum(case when tensions.tension_index is not null then bridge.allocation_weight end), 0)
        as tension_index,
    round(
        sum(bridge.allocation_weight * tensions.tension_class)
        / nullif(
            sum(case when tensions.tension_class is not null then bridge.allocation_weight end), 0
        )
    ) as tension_class,
    count(distinct bridge.fap2009_code) as fap2009_families_count
from bridge
inner join tensions
    on bridge.fap2009_code = tensions.fap_code
group by
    bridge.job_group_code, tensions.territory_type, tensions.territory_code,
    tensions.reference_year
