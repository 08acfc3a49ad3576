-- Hiring block (BMO) of a fiche x département ($job_group_code, $departement_code), latest
-- survey year: fct_hiring_needs <- int_job_classification__bmo_to_rome (métier -> fiche
-- weights) x int_bmo__cells (masked counts estimated) <- the BMO workbook's rows.
with

latest as (
    select max(survey_year) as survey_year from {{ ref('fct_hiring_needs') }}
),

bridge as (
    select *
    from {{ ref('int_job_classification__bmo_to_rome') }}
    where job_group_code = $job_group_code
),

cells as (
    select c.*
    from {{ ref('int_bmo__cells') }} as c
    inner join bridge
        on c.job_nomenclature = bridge.job_nomenclature and c.bmo_job_code = bridge.bmo_job_code
    inner join latest on c.survey_year = latest.survey_year
    where c.departement_code = $departement_code
)

select
    'step' as kind,
    'fct_hiring_needs' as relation,
    to_json(h) as payload
from {{ ref('fct_hiring_needs') }} as h
inner join latest on h.survey_year = latest.survey_year
where h.job_group_code = $job_group_code and h.departement_code = $departement_code
union all
select
    'step' as kind,
    'int_job_classification__bmo_to_rome' as relation,
    to_json(bridge) as payload
from bridge
union all
select
    'step' as kind,
    'int_bmo__cells' as relation,
    to_json(cells) as payload
from cells
union all
select
    'cell' as kind,
    'francetravail_bmo.projects' as relation,
    json_object(
        'file', p._source_file, 'row', p._row_number,
        'columns', ['met', 'met_masked', 'xmet', 'xmet_masked', 'smet', 'smet_masked'],
        'label', concat_ws(' ', p.survey_year, p.bmo_job_code, 'bassin', p.bassin_code)
    ) as payload
from {{ ref('stg_francetravail_bmo__projects') }} as p
inner join cells
    on
        p.survey_year = cells.survey_year
        and p.bmo_job_code = cells.bmo_job_code
        and p.bassin_code = cells.bassin_code
        and p._source_file = cells._source_file
where p.departement_code = $departement_code
