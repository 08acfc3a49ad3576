-- Less-stressful suggestions of a fiche x département ($job_group_code, $departement_code):
-- fct_less_stressful_job_groups <- fct_job_group_mobility (ROME mobility links) and the
-- market of each target in the département (int_market__job_group_departement).
with

moves as (
    select *
    from {{ ref('fct_job_group_mobility') }}
    where from_job_group_code = $job_group_code
)

select
    'step' as kind,
    'fct_less_stressful_job_groups' as relation,
    to_json(s) as payload
from {{ ref('fct_less_stressful_job_groups') }} as s
where s.job_group_code = $job_group_code and s.departement_code = $departement_code
union all
select
    'step' as kind,
    'fct_job_group_mobility' as relation,
    to_json(moves) as payload
from moves
union all
select
    'step' as kind,
    'int_market__job_group_departement' as relation,
    to_json(m) as payload
from {{ ref('int_market__job_group_departement') }} as m
where
    m.departement_code = $departement_code
    and (
        m.job_group_code = $job_group_code
        or m.job_group_code in (select to_job_group_code from moves)
    )
union all
select
    'cell' as kind,
    'francetravail_rome.rubrique_mobilite' as relation,
    json_object(
        'file', r._source_file, 'row', r._row_number,
        'columns', ['code_rome', 'code_rome_cible', 'numero_ordre'],
        'label', concat_ws(' -> ', r.from_job_group_code, r.to_job_group_code)
    ) as payload
from {{ ref('stg_francetravail_rome__rubrique_mobilite') }} as r
where r.from_job_group_code = $job_group_code
