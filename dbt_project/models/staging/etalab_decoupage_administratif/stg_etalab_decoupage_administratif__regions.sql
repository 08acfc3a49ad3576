-- Keeps the COM pseudo-régions (zone com); dim_region filters them out.
with

source as (
    select * from {{ source('etalab_decoupage_administratif', 'regions') }}
),

renamed as (
    select
        {{ clean_text('code') }} as region_code,
        {{ clean_text('nom') }} as name,
        upper({{ clean_text('chef_lieu') }}) as chef_lieu_code,
        try_cast({{ clean_text('type_liaison') }} as {{ dbt.type_int() }}) as name_article_type,
        lower({{ clean_text('zone') }}) as zone,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'region_code', 'name', 'chef_lieu_code', 'name_article_type', 'zone'
        ]) }} as duplicate_rank
    from renamed
)

select
    region_code,
    name,
    chef_lieu_code,
    name_article_type,
    zone,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
