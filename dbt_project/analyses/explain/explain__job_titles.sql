-- Job titles and related fiches of a fiche ($job_group_code): dim_job_title and
-- fct_job_group_mobility <- the ROME referential's appellations and mobility links.
select
    'step' as kind,
    'dim_job_title' as relation,
    to_json(t) as payload
from {{ ref('dim_job_title') }} as t
where t.job_group_code = $job_group_code
union all
select
    'step' as kind,
    'fct_job_group_mobility' as relation,
    to_json(m) as payload
from {{ ref('fct_job_group_mobility') }} as m
where m.from_job_group_code = $job_group_code
union all
select
    'cell' as kind,
    'francetravail_rome.referentiel_appellation' as relation,
    json_object(
        'file', a._source_file, 'row', a._row_number,
        'columns', ['code_ogr', 'libelle_appellation_long', 'classification', 'peu_usite'],
        'label', a.job_title_code
    ) as payload
from {{ ref('stg_francetravail_rome__referentiel_appellation') }} as a
where a.job_group_code = $job_group_code
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
