-- BMO headline of a survey year x area ($survey_year, $scope, $area_code): the sums of
-- int_bmo__cells over the area (totals, then the first 50 cells) <- the BMO workbook's rows.
with

cells as (
    select *
    from {{ ref('int_bmo__cells') }}
    where
        survey_year = cast($survey_year as integer)
        and (
            $scope = 'france'
            or ($scope = 'region' and region_code = $area_code)
            or ($scope = 'departement' and departement_code = $area_code)
        )
),

shown as (
    select *
    from cells
    order by bassin_code, bmo_job_code
    limit 50
)

select
    'step' as kind,
    'int_bmo__cells' as relation,
    json_object(
        'cells', count(*),
        'recruitment_projects', sum(recruitment_projects),
        'recruitment_projects_low', sum(recruitment_projects_low),
        'recruitment_projects_high', sum(recruitment_projects_high),
        'difficult_projects', sum(difficult_projects),
        'seasonal_projects', sum(seasonal_projects),
        'secrecy_threshold', max(secrecy_threshold)
    ) as payload
from cells
union all
select
    'step' as kind,
    'int_bmo__cells' as relation,
    to_json(shown) as payload
from shown
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
inner join shown
    on
        p.survey_year = shown.survey_year
        and p.bmo_job_code = shown.bmo_job_code
        and p.bassin_code = shown.bassin_code
        and p._source_file = shown._source_file
