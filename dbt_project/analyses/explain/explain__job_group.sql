-- The fiche ($job_group_code): dim_job_group <- ROME referential.
select
    'step' as kind,
    'dim_job_group' as relation,
    to_json(j) as payload
from {{ ref('dim_job_group') }} as j
where j.job_group_code = $job_group_code
union all
select
    'cell' as kind,
    'francetravail_rome.referentiel_code_rome' as relation,
    json_object(
        'file', r._source_file, 'row', r._row_number,
        'columns', ['code_rome', 'libelle_rome', 'code_rome_parent', 'rome_version'],
        'label', r.job_group_code
    ) as payload
from {{ ref('stg_francetravail_rome__referentiel_code_rome') }} as r
where r.job_group_code = $job_group_code
