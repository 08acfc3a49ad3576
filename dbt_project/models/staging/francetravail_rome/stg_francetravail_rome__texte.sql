with

source as (
    select * from {{ source('francetravail_rome', 'texte') }}
),

renamed as (
    select
        {{ clean_text('code_rome') }} as job_group_code,
        {{ clean_text('code_compo_bloc') }} as block_code,
        {{ clean_text('libelle_type_texte') }} as text_type,
        try_cast({{ clean_text('position_phrase') }} as {{ dbt.type_int() }}) as sentence_position,
        {{ clean_text('libelle_texte') }} as sentence,
        {{ clean_text('rome_version') }} as rome_version,
        _source_file,
        _fetched_at,
        _row_number
    from source
),

ranked as (
    select
        *,
        {{ duplicate_rank([
            'job_group_code', 'block_code', 'text_type', 'sentence_position', 'sentence',
            'rome_version'
        ]) }} as duplicate_rank
    from renamed
)

select
    job_group_code,
    block_code,
    text_type,
    sentence_position,
    sentence,
    rome_version,
    _source_file,
    _fetched_at,
    _row_number
from ranked
where duplicate_rank = 1
