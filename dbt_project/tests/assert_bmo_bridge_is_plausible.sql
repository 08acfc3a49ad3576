-- Reads several models: Dagster shows it as a check of the one it vouches for.
{{ config(meta={'dagster': {'ref': {'name': 'int_job_classification__bmo_to_rome'}}}) }}

-- For métiers a reader can judge (seeds/bmo_expected_top_fiches.csv), the fiche that gets
-- the largest share of the métier's projects is the expected one. Returns the métiers where
-- it is not, with the fiche that came first instead.
with

ranked as (
    select
        bmo_job_code,
        job_group_code,
        row_number() over (
            partition by job_nomenclature, bmo_job_code
            order by allocation_weight desc, job_group_code asc
        ) as share_rank
    from {{ ref('int_job_classification__bmo_to_rome') }}
    where job_nomenclature = 'fap2021'
)

select
    expected.bmo_job_code,
    expected.expected_job_group_code,
    ranked.job_group_code as first_job_group_code
from {{ ref('bmo_expected_top_fiches') }} as expected
left join ranked
    on expected.bmo_job_code = ranked.bmo_job_code and ranked.share_rank = 1
where ranked.job_group_code is null or ranked.job_group_code != expected.expected_job_group_code
