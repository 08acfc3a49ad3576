-- Keeps the collectivités d'outre-mer (zone com); dim_departement filters them out.
with

source as (
    select * from {{ source('etalab_decoupage_administratif', 'departements') }}
),

renamed as (
    select
        upper({{ clean_text('code') }}) as departement_code,
        {{ clean_text('nom') }} as name,
        upper({{ clean_text('region') }}) as region_code,
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
            'departement_code', 'name', 'region_code', 'chef_lieu_code', 'name_article_type',
            'zone'
        ]) }} as duplicate_rank
    from renamed
)

select
    departement_code,
    name,
    region_code,
    chef_lieu_code,
    name_article_type,
    zone,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
