-- Offers trend block of a fiche x département ($job_group_code, $departement_code):
-- fct_offers_trend (one row per month) <- int_offers__offers (the first 50 offers by
-- creation) <- their rows in the offers snapshots, read from the raw Parquet
-- ($raw__francetravail_offres__offers: the staging view would parse every snapshot; each
-- cell names its Parquet file, so its raw row is then read from that file alone);
-- active months <- int_offers__active_months (national).
with

offers as (
    select *
    from {{ ref('int_offers__offers') }}
    where job_group_code = $job_group_code and departement_code = $departement_code
    order by created_date, offer_id
    limit 50
)

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
select
    'step' as kind,
    'int_offers__offers' as relation,
    to_json(offers) as payload
from offers
union all
select
    'cell' as kind,
    'francetravail_offres.offers' as relation,
    json_object(
        'file', r._source_file, 'row', r._row_number,
        'columns', ['offer_id', 'created_at', 'rome_code', 'commune_code'],
        'label', concat_ws(' ', upper(trim(r.offer_id)), 'snapshot', r.snapshot_date),
        'parquet', r.filename
    ) as payload
from read_parquet($raw__francetravail_offres__offers, filename = true) as r
where
    upper(trim(r.rome_code)) = $job_group_code
    and upper(trim(r.offer_id)) in (select offer_id from offers)
