-- Unemployment of a departement ($departement_code): fct_unemployment (latest quarter and four
-- quarters earlier) <- INSEE's localised rates.
with

rates as (
    select *
    from {{ ref('fct_unemployment') }}
    where area_type = 'departement' and area_code = $departement_code
),

latest as (
    select max(quarter_start_date) as quarter_start_date
    from rates
    where is_latest
)

select
    'step' as kind,
    'fct_unemployment' as relation,
    to_json(rates) as payload
from rates
cross join latest
where
    rates.quarter_start_date = latest.quarter_start_date
    or rates.quarter_start_date = latest.quarter_start_date - interval 12 month
union all
select
    'cell' as kind,
    'insee_chomage_localise.rates' as relation,
    json_object(
        'file', s._source_file, 'row', s._row_number,
        'columns', ['area_code', 'quarter', 'rate'],
        'label', concat_ws(' ', s.area_type, s.area_code, s.quarter_label, s.vintage)
    ) as payload
from {{ ref('stg_insee_chomage_localise__rates') }} as s
cross join latest
where
    s.area_type = 'departement'
    and s.area_code = $departement_code
    and (
        s.quarter_start_date = latest.quarter_start_date
        or s.quarter_start_date = latest.quarter_start_date - interval 12 month
    )
