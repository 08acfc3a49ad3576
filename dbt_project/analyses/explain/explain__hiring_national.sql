-- National BMO values of a fiche ($job_group_code), latest survey year: fct_hiring_needs
-- (national columns) <- int_job_classification__bmo_to_rome x int_bmo__cells (all of
-- France: only their national totals are listed) <- the BMO workbook's rows (first 50).
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
)

select
    'step' as kind,
    'fct_hiring_needs' as relation,
    json_object(
        'survey_year', max(h.survey_year),
        'national_recruitment_projects', max(h.national_recruitment_projects),
        'national_published_recruitment_projects', max(h.national_published_recruitment_projects),
        'national_difficult_pct', max(h.national_difficult_pct),
        'national_seasonal_pct', max(h.national_seasonal_pct)
    ) as payload
from {{ ref('fct_hiring_needs') }} as h
inner join latest on h.survey_year = latest.survey_year
where h.job_group_code = $job_group_code
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
    json_object(
        'bmo_job_code', bmo_job_code, 'cells', count(*),
        'recruitment_projects', sum(recruitment_projects),
        'difficult_projects', sum(difficult_projects),
        'seasonal_projects', sum(seasonal_projects)
    ) as payload
from cells
group by bmo_job_code
union all
select * from (
    select
        'cell' as kind,
        'francetravail_bmo.projects' as relation,
        json_object(
            'file', p._source_file, 'row', p._row_number,
            'columns', ['met', 'met_masked', 'xmet', 'xmet_masked', 'smet', 'smet_masked'],
            'label', concat_ws(' ', p.survey_year, p.bmo_job_code, 'bassin', p.bassin_code)
        ) as payload
    from {{ ref('stg_francetravail_bmo__projects') }} as p
    inner join latest on p.survey_year = latest.survey_year
    inner join (select distinct job_nomenclature, bmo_job_code from bridge) as codes
        on p.job_nomenclature = codes.job_nomenclature and p.bmo_job_code = codes.bmo_job_code
    order by p._row_number
    limit 50
)
