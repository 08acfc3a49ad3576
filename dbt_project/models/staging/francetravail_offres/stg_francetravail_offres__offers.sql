-- One row per offer and snapshot; a snapshot published twice (re-run, or a mirror
-- holding several snapshots) keeps its latest fetch.
with

source as (
    select * from {{ source('francetravail_offres', 'offers') }}
),

renamed as (
    select
        upper({{ clean_text('offer_id') }}) as offer_id,
        upper({{ clean_text('rome_code') }}) as job_group_code,
        upper({{ clean_text('commune_code') }}) as commune_code,
        case
            when length({{ clean_text('departement_code') }}) = 1
                then lpad({{ clean_text('departement_code') }}, 2, '0')
            else upper({{ clean_text('departement_code') }})
        end as departement_code,
        {{ clean_text('departement_source') }} as departement_source,
        upper({{ clean_text('contract_type') }}) as contract_type,
        try_cast(
            replace(replace({{ clean_text('created_at') }}, 'T', ' '), 'Z', '') as timestamp
        ) as created_at,
        {{ clean_text('salary_text') }} as salary_text,
        try_cast({{ clean_text('snapshot_date') }} as date) as snapshot_date,
        cast(synthetic as boolean) as is_synthetic,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank(
            ['offer_id', 'snapshot_date'], order_by='_fetched_at desc, _row_number'
        ) }} as duplicate_rank
    from renamed
)

select
    offer_id,
    job_group_code,
    commune_code,
    departement_code,
    departement_source,
    contract_type,
    created_at,
    {{ dbt.cast('created_at', 'date') }} as created_date,
    salary_text,
    snapshot_date,
    is_synthetic,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
