-- Reads several models: Dagster shows it as a check of the one it vouches for.
{{ config(meta={'dagster': {'ref': {'name': 'int_job_classification__bmo_to_rome'}}}) }}

-- Every (métier, fiche) link of the BMO bridge is in DARES's crosswalk: the fiche descends
-- from a ROME v3 code that the crosswalk assigns to the métier (FAP341 family, or a FAP341
-- child of a FAP228 métier), or, for FAP-2009 métiers, that the FAP-2009 table lists.
-- Returns the links that no official table supports.
with

bridge as (
    select * from {{ ref('int_job_classification__bmo_to_rome') }}
),

fiches as (
    select
        job_group_code,
        rome_v3_code
    from {{ ref('stg_francetravail_rome__referentiel_code_rome') }}
),

fap2021 as (
    select distinct
        rome_v3_code,
        fap341_code
    from {{ ref('stg_dares_fap2021_rome__rome_qualif_fap341') }}
),

fap2009 as (
    select distinct
        rome_v3_code,
        fap2009_code
    from {{ ref('stg_dares_fap__fap2009_rome') }}
)

select
    bridge.job_nomenclature,
    bridge.bmo_job_code,
    bridge.job_group_code
from bridge
inner join fiches
    on bridge.job_group_code = fiches.job_group_code
where
    not exists (
        select 1
        from fap2021
        where
            bridge.job_nomenclature = 'fap2021'
            and fap2021.rome_v3_code = fiches.rome_v3_code
            and (
                fap2021.fap341_code = bridge.bmo_job_code
                or substr(fap2021.fap341_code, 1, 5) = bridge.bmo_job_code
            )
    )
    and not exists (
        select 1
        from fap2009
        where
            bridge.job_nomenclature = 'fap2009'
            and fap2009.rome_v3_code = fiches.rome_v3_code
            and fap2009.fap2009_code = bridge.bmo_job_code
    )
