-- Offers trend block of a fiche x département ($job_group_code, $departement_code):
-- fct_offers_trend (one row per month) <- int_offers__offers <- the offers snapshots' rows
-- (first 50); active months <- int_offers__active_months (national).
select
    'step' as kind,
    'fct_offers_trend' as relation,
    to_json(t) as payload
from {{ ref('fct_offers_trend') }} as t
where t.job_group_code = $job_group_code and t.departement_code = $departement_code
union all
select
    'step' as kind,
    'int_offers__active_months' as relation,
    to_json(a) as payload
from {{ ref('int_offers__active_months') }} as a
where a.job_group_code = $job_group_code
union all
select * from (
    select
        'cell' as kind,
        'francetravail_offres.offers' as relation,
        json_object(
            'file', o._source_file, 'row', o._row_number,
            'columns', ['offer_id', 'created_at', 'rome_code', 'commune_code'],
            'label', concat_ws(' ', o.offer_id, cast(o.snapshot_date as varchar))
        ) as payload
    from {{ ref('stg_francetravail_offres__offers') }} as o
    where o.job_group_code = $job_group_code and o.departement_code = $departement_code
    order by o.created_at, o.offer_id
    limit 50
)
