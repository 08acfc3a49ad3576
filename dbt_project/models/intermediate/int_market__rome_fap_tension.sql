{{ config(materialized="table") }}

-- DARES tension (FAP-2009) carried to ROME 4.0 fiches through the ROME -> FAP bridge:
-- one row per fiche x territory (national, région, département) x year. A fiche spread
-- over several families gets the employment-weighted mean of their indices (weights: each
-- family's average employment in that territory, `Emploi moyen` of the DARES file), over
-- the families with a published index; the class is the rounded employment-weighted mean
-- of the same families' classes, and NULL when one of them has no published class (never
-- an average over another set of families than the index's).
with

bridge as (
    select *
    from {{ ref('int_job_classification__rome_to_fap') }}
    where fap2009_code is not null
),

tensions as (
    select *
    from {{ ref('stg_dares_tensions__tensions') }}
    where fap_level = 'fap225' and tension_index is not null
),

weighted as (
    select
        bridge.job_group_code,
        tensions.territory_type,
        tensions.territory_code,
        tensions.reference_year,
        bridge.fap2009_code,
        tensions.tension_index,
        tensions.tension_class,
        coalesce(tensions.average_employment, 0) as employment
    from bridge
    inner join tensions
        on bridge.fap2009_code = tensions.fap_code
)

select
    job_group_code,
    territory_type,
    territory_code,
    reference_year,
    coalesce(
        sum(employment * tension_index) / nullif(sum(employment), 0),
        avg(tension_index)
    ) as tension_index,
    case
        when count(tension_class) = count(*)
            then round(coalesce(
                sum(employment * tension_class) / nullif(sum(employment), 0),
                avg(tension_class)
            ))
    end as tension_class,
    sum(employment) as families_employment,
    count(distinct fap2009_code) as fap2009_families_count
from weighted
group by job_group_code, territory_type, territory_code, reference_year
