with

moves as (
    select * from {{ ref('stg_francetravail_rome__rubrique_mobilite') }}
),

job_groups as (
    select * from {{ ref('stg_francetravail_rome__referentiel_code_rome') }}
)

select
    moves.from_job_group_code,
    moves.to_job_group_code,
    moves.order_number,
    job_groups.label as to_label,
    moves.rome_version
from moves
left join job_groups
    on moves.to_job_group_code = job_groups.job_group_code
